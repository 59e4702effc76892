// The targets of issue 17, each as a ratio against its baseline measured in the same run, with
// met/missed:
//   - prolog (layers not mounted yet: cold; another job holds them: warm) and epilog through the
//     Slurm entry points slurmd runs (dist/prolog/slurm, dist/epilog/slurm), versus bench/floor.c
//     issuing the same mount/umount/loop system calls from strata's own plan, at 1, 5, 10, 40 layers;
//   - a job without a container: prolog + epilog versus /bin/true twice, both run by floor.c's
//     timer with Slurm's environment and no PATH, on an idle node and next to a running container job;
//   - 16 concurrent prologs (one image; 16 images) versus 16 concurrent floors.
// The container rows are measured both ways in the same runs: through the resident node agent
// (`strata node agent`, which the front-ends ask first) and with the front-ends starting Node
// (STRATA_AGENT=off); the agent's memory (its process group: agent, gate, mount executors) is
// sampled idle and during the 16 concurrent prologs.
// Both sides are started the same way (spawnSync, or floor's fork+execve timer), so start-up
// overheads of the harness cancel in the ratios.
//
//   node bench/targets.mjs [--quick] [--runs N] [--format squashfs|erofs]
//
// --format: the layer files' format: zstd squashfs through loop devices (the default here: the
// costlier path, with the loop calls in the floor too), or erofs as `strata import` writes it by
// default (import.compression: none), mounted on its file (the floor mounts the same files so).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { JOB_USER, QUICK, option, repo, dist, scratch, strataSite, makeContent, layerTars, importLayers, withMountLock, mountNodeRun, nodeRun, startAgent, stopAgent, warmAgent, AGENT_WARM_UP_JOBS, timed, stats, table, fmt } from './lib.mjs';

// 15 runs: the floor's median over 7 still moved by ±0.8 ms between runs (6.4-8.1 ms warm), enough to move a ratio by 0.15.
const RUNS = Number(option('--runs', QUICK ? 3 : 15));
const FORMAT = option('--format', 'squashfs');
if (!['squashfs', 'erofs'].includes(FORMAT)) throw new Error(`--format ${FORMAT}: squashfs or erofs`);
const LAYERS = [1, 5, 10, 40];
const CONCURRENT = 16;
// Layers of each of the 16 different images (--quick: fewer, to import 32 layers instead of 80).
const SPREAD_LAYERS = QUICK ? 2 : 5;
const TRUE_RUNS = QUICK ? 200 : 500;
// Bursts of 16 concurrent prologs per cell (medians).
const CONCURRENT_RUNS = QUICK ? 3 : 5;
const root = scratch('targets');
const site = strataSite(root, { compression: FORMAT === 'erofs' ? 'none' : 'zstd' });
const floorBin = join(root, 'floor');
execFileSync('cc', ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-o', floorBin, join(repo, 'bench/floor.c')], { stdio: 'inherit' });
if (!existsSync(dist('prolog/slurm'))) throw new Error('dist/prolog/slurm is not built: run npm run build (needs a C compiler)');

// ---- images ------------------------------------------------------------------------------------
const prepared = performance.now();
const content = join(root, 'content');
const files = makeContent(content, 40 * 2 ** 20, { smallFiles: 2000 });
const images = {};
for (const count of LAYERS) images[count] = importLayers(site, `t${count}`, layerTars(content, files, count, join(root, `tars-${count}`), { gzip: false }));
const spread = [];
for (let i = 0; i < CONCURRENT; i++) {
  spread.push(importLayers(site, `c${i}`, layerTars(content, files.filter((_, index) => index % CONCURRENT === i), SPREAD_LAYERS, join(root, `tars-c${i}`), { gzip: false })));
}
console.log(`images prepared in ${fmt(performance.now() - prepared)}`);

// ---- the floor's operations, from strata's plan --------------------------------------------------
const floorRuntime = join(nodeRun(root), 'floor');
// mount(8) turns nosuid,nodev into mount flags; mount(2) wants them as flags (floor.c sets them).
const overlayData = (options) => options.split(',').filter((option) => option !== 'nosuid' && option !== 'nodev').join(',');
const planOf = (ref) => JSON.parse(site.cli(['prolog', '--job', 'plan', '--uid', String(JOB_USER.uid), '--gid', String(JOB_USER.gid), '--image', ref, '--dry-run']));
/** Operation files for floor job `job` of image `ref`: prolog and epilog, with or without the layer mounts. */
function floorOps(ref, job, tag = '') {
  const text = JSON.stringify(planOf(ref)).replaceAll(`${site.runtime}/jobs/plan`, `${floorRuntime}/jobs/${job}`).replaceAll(`${site.runtime}/l`, `${floorRuntime}/l${tag}`);
  const plan = JSON.parse(text);
  const rootfs = plan.steps.find((step) => step.op === 'rootfs');
  const upper = plan.steps.find((step) => step.op === 'upper-tmpfs');
  const binds = plan.steps.filter((step) => step.op === 'bind' && (!step.optional || existsSync(step.source)));
  const target = (bind) => join(plan.rootfs, bind.target);
  const layers = rootfs.layers.map((layer) => (layer.erofs ? ['filefs', layer.file, layer.mountPoint, 'erofs'] : ['loop', layer.file, layer.mountPoint]));
  // The job's environment (environment.ts): its /tmp tmpfs, and the files strata writes (passwd,
  // group, hostname), created empty here, that the binds then put into the rootfs.
  const tmp = plan.steps.find((step) => step.op === 'tmp-tmpfs');
  const jobFiles = plan.steps.find((step) => step.op === 'job-files');
  const writtenFiles = binds.filter((bind) => jobFiles && bind.source.startsWith(`${jobFiles.dir}/`)).map((bind) => bind.source);
  const environment = [
    ...(jobFiles ? [['mkdir', jobFiles.dir], ...writtenFiles.map((file) => ['file', file])] : []),
    ...(tmp ? [['mkdir', dirname(tmp.target)], ['tmpfs', tmp.target, `size=${tmp.sizeBytes},mode=1777`]] : []),
  ];
  const environmentUndo = [
    ...(tmp ? [['umount', tmp.target], ['rmdir', tmp.target], ['rmdir', dirname(tmp.target)]] : []),
    ...(jobFiles ? [...writtenFiles.map((file) => ['unlink', file]), ['rmdir', jobFiles.dir]] : []),
  ];
  const prolog = [['mkdir', `${floorRuntime}/jobs`], ['mkdir', plan.jobDir], ['tmpfs', upper.target, `size=${upper.sizeBytes},mode=0700`], ['overlay', rootfs.target, rootfs.layerDir, overlayData(rootfs.options)], ...environment, ...binds.map((bind) => ['bind', bind.source, target(bind), bind.recursive ? 'rec' : 'one'])];
  const epilog = [...binds.reverse().map((bind) => [bind.recursive ? 'umountr' : 'umount', target(bind)]), ['umount', rootfs.target], ['umount', upper.target], ['rmdir', rootfs.target], ['rmdir', upper.target], ...environmentUndo, ['rmdir', plan.jobDir]];
  const release = [...rootfs.layers.map((layer) => ['umount', layer.mountPoint]), ...rootfs.layers.map((layer) => ['rmdir', layer.mountPoint])];
  const write = (name, ops) => {
    const path = join(root, `ops-${job}-${name}`);
    writeFileSync(path, `${ops.map((op) => op.join('\t')).join('\n')}\n`);
    return path;
  };
  mkdirSync(join(floorRuntime, `l${tag}`), { recursive: true });
  return {
    cold: write('cold', [...layers, ...prolog]),
    warm: write('warm', prolog),
    layers: write('layers', layers),
    epilogRelease: write('epilog-release', [...epilog, ...release]),
    epilog: write('epilog', epilog),
    release: write('release', release),
  };
}
const floor = (ops) => timed([floorBin, 'run', ops]);

// ---- the node agent ------------------------------------------------------------------------------
const MODES = ['agent', 'node'];
/** The entry points' environment in a mode: the agent answers unless told off. */
const modeEnv = (mode, env) => (mode === 'node' ? { ...env, STRATA_AGENT: 'off' } : env);
const runIn = (mode, phase, id, ref) => timed([dist(`${phase}/slurm`)], modeEnv(mode, site.slurmEnv(id, ref)));
/** Resident memory (KiB) of a process group: the agent, its gate and its mount executors. */
function groupRss(pgid) {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid) continue;
      total += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

// ---- prolog and epilog versus the floor ---------------------------------------------------------
let job = 1000;
function layerRow(count) {
  const ref = images[count];
  const a = floorOps(ref, 'a'), h = floorOps(ref, 'h'), w = floorOps(ref, 'w');
  const keys = ['cold', 'warm', 'epilog', 'epilogWarm'];
  const s = Object.fromEntries(MODES.map((mode) => [mode, Object.fromEntries(keys.map((key) => [key, []]))]));
  const f = Object.fromEntries(keys.map((key) => [key, []]));
  for (let run = 0; run <= RUNS; run++) {
    // strata, each mode: a job alone on the node (cold prolog, its epilog releases the layers),
    // then a job next to one that holds the layers (warm prolog, epilog that keeps them).
    const samples = {};
    for (const mode of MODES) {
      const id = job++, holder = job++, second = job++;
      const sample = { cold: runIn(mode, 'prolog', id, ref), epilog: runIn(mode, 'epilog', id, ref) };
      runIn(mode, 'prolog', holder, ref);
      sample.warm = runIn(mode, 'prolog', second, ref);
      sample.epilogWarm = runIn(mode, 'epilog', second, ref);
      runIn(mode, 'epilog', holder, ref);
      samples[mode] = sample;
    }
    // The floor, the same sequence.
    const floorSample = { cold: floor(a.cold), epilog: floor(a.epilogRelease) };
    floor(h.cold);
    floorSample.warm = floor(w.warm);
    floorSample.epilogWarm = floor(w.epilog);
    floor(h.epilogRelease);
    if (run === 0) continue; // warm-up
    for (const key of keys) {
      f[key].push(floorSample[key]);
      for (const mode of MODES) s[mode][key].push(samples[mode][key]);
    }
  }
  const medians = (byKey) => Object.fromEntries(Object.entries(byKey).map(([k, v]) => [k, stats(v).median]));
  return { count, strata: medians(s.node), agent: medians(s.agent), floor: medians(f) };
}

// ---- jobs without a container -------------------------------------------------------------------
// What slurmd passes (contracts.md 1.2), no PATH; STRATA_CONFIG stands in for /etc/strata/strata.yaml.
const slurmdEnv = (id) => ({ SLURM_JOB_ID: String(id), SLURM_JOBID: String(id), SLURM_JOB_UID: '1000', SLURM_UID: '1000', SLURM_JOB_GID: '1000', SLURM_JOB_USER: 'user', SLURMD_NODENAME: 'n1', SLURM_CLUSTER_NAME: 'cluster', SLURM_CONF: '/etc/slurm/slurm.conf', SLURM_JOB_WORK_DIR: '/home/user', SLURM_NODELIST: 'n1', STRATA_CONFIG: site.config });
const micros = (argv, env, runs) => {
  const out = execFileSync(floorBin, ['time', String(runs), ...argv], { env, encoding: 'utf8' });
  return stats(out.trim().split('\n').map((line) => Number(line) / 1000)).median;
};
function noContainer(state) {
  const env = slurmdEnv(900000);
  const truth = micros(['/bin/true'], env, TRUE_RUNS);
  const prolog = micros([dist('prolog/slurm')], { ...env, SLURM_SCRIPT_CONTEXT: 'prolog_slurmd' }, TRUE_RUNS);
  const epilog = micros([dist('epilog/slurm')], { ...env, SLURM_SCRIPT_CONTEXT: 'epilog_slurmd' }, TRUE_RUNS);
  const nodeRuns = QUICK ? 10 : 20;
  const nodeProlog = micros([dist('prolog/slurm.js')], env, nodeRuns);
  const nodeEpilog = micros([dist('epilog/slurm.js')], env, nodeRuns);
  return { state, truth, prolog, epilog, extra: prolog + epilog - 2 * truth, node: nodeProlog + nodeEpilog - 2 * truth };
}

// ---- 16 concurrent prologs ----------------------------------------------------------------------
const startAll = (argvs, envs) =>
  new Promise((resolve) => {
    const started = performance.now();
    let left = argvs.length, failed = 0;
    argvs.forEach((argv, i) => {
      const child = spawn(argv[0], argv.slice(1), { env: envs[i], stdio: 'ignore' });
      child.on('exit', (code) => {
        if (code !== 0) failed++;
        if (--left === 0) resolve({ ms: performance.now() - started, failed });
      });
    });
  });
/** What holds the layer files under `prefix`: loop devices (squashfs), or erofs mounts on the files themselves. */
const layerHolders = (prefix) =>
  readdirSync('/sys/block').filter((name) => {
    try {
      return readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').startsWith(prefix);
    } catch {
      return false;
    }
  }).length +
  readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((line) => / - erofs /.test(line) && line.split(' - ')[1].split(' ')[1].startsWith(prefix)).length;
async function concurrency(kind, agentPid) {
  const refs = Array.from({ length: CONCURRENT }, (_, i) => (kind === 'one image' ? images[5] : spread[i]));
  const layerFilesUsed = new Set(refs.flatMap((ref) => planOf(ref).steps.find((step) => step.op === 'rootfs').layers.map((layer) => layer.file))).size;
  // The floor: one image = its layers mounted once, then 16 jobs' own mounts at once;
  // 16 images = 16 cold floors at once, each with its own layers.
  const ops = refs.map((ref, i) => floorOps(ref, `c${i}`, kind === 'one image' ? '' : `-${i}`));
  const floorRound = async () => {
    let prolog, epilog;
    if (kind === 'one image') {
      const layersMs = floor(ops[0].layers);
      prolog = layersMs + (await startAll(ops.map((o) => [floorBin, 'run', o.warm]), ops.map(() => process.env))).ms;
    } else prolog = (await startAll(ops.map((o) => [floorBin, 'run', o.cold]), ops.map(() => process.env))).ms;
    epilog = (await startAll(ops.map((o) => [floorBin, 'run', kind === 'one image' ? o.epilog : o.epilogRelease]), ops.map(() => process.env))).ms;
    if (kind === 'one image') epilog += floor(ops[0].release);
    return { prolog, epilog };
  };
  const strataRound = async (mode) => {
    const ids = refs.map(() => job++);
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, groupRss(agentPid))), 10);
    const prologs = await startAll(refs.map(() => [dist('prolog/slurm')]), ids.map((id, i) => modeEnv(mode, site.slurmEnv(id, refs[i]))));
    clearInterval(sampler);
    const ready = ids.filter((id) => existsSync(join(site.runtime, 'jobs', String(id), 'entry.json'))).length;
    const loops = layerHolders(site.store);
    const epilogs = await startAll(refs.map(() => [dist('epilog/slurm')]), ids.map((id, i) => modeEnv(mode, site.slurmEnv(id, refs[i]))));
    return { prolog: prologs.ms, epilog: epilogs.ms, failed: prologs.failed + epilogs.failed, ready, loops, loopsLeft: layerHolders(site.store), peakRss };
  };
  // One burst is one sample, and a burst on 2 shared cores swings by half: the agent and the floor
  // take turns CONCURRENT_RUNS times (medians); the Node path, far off either way, runs once.
  const rounds = { agent: [], node: [], floor: [] };
  for (let run = 0; run < CONCURRENT_RUNS; run++) {
    rounds.agent.push(await strataRound('agent'));
    if (run === 0) rounds.node.push(await strataRound('node'));
    rounds.floor.push(await floorRound());
  }
  const median = (values) => stats(values).median;
  const summary = (samples) => ({
    prolog: median(samples.map((sample) => sample.prolog)),
    epilog: median(samples.map((sample) => sample.epilog)),
    failed: samples.reduce((sum, sample) => sum + sample.failed, 0),
    ready: Math.min(...samples.map((sample) => sample.ready)),
    loops: Math.max(...samples.map((sample) => sample.loops)),
    loopsLeft: Math.max(...samples.map((sample) => sample.loopsLeft)),
    peakRss: Math.max(...samples.map((sample) => sample.peakRss)),
  });
  return { kind, layerFilesUsed, runs: CONCURRENT_RUNS, agent: summary(rounds.agent), node: summary(rounds.node), floorProlog: median(rounds.floor.map((f) => f.prolog)), floorEpilog: median(rounds.floor.map((f) => f.epilog)) };
}

// ---- run and report ----------------------------------------------------------------------------
const verdict = (ratio, limit) => `${ratio.toFixed(2)}x ${ratio <= limit ? 'met' : 'MISSED'} (<= ${limit}x)`;
const results = await withMountLock(async () => {
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`targets bench: ${RUNS} runs per cell (+1 warm-up; the agent first runs ${AGENT_WARM_UP_JOBS} jobs unmeasured)${QUICK ? ', quick' : ''}; layers: ${FORMAT === 'erofs' ? 'uncompressed erofs on their files (the import default)' : 'zstd squashfs through loop devices'}; the node agent under Node ${process.version}; load average at start ${load}; ms\n`);
  mountNodeRun(root);
  const agent = await startAgent(site);
  const memory = { idleRss: groupRss(agent.pid) };
  warmAgent(site, images[1]);
  const layers = LAYERS.map((count) => {
    const row = layerRow(count);
    console.log(`  ${count} layers: agent cold ${fmt(row.agent.cold)} warm ${fmt(row.agent.warm)} epilog ${fmt(row.agent.epilog)} | Node cold ${fmt(row.strata.cold)} warm ${fmt(row.strata.warm)} epilog ${fmt(row.strata.epilog)} | floor ${fmt(row.floor.cold)} / ${fmt(row.floor.warm)} / ${fmt(row.floor.epilog)}`);
    return row;
  });
  memory.afterLayerRows = groupRss(agent.pid);
  const plain = [noContainer('idle node')];
  // Next to a running container job: the epilog front-end reads mountinfo and the layer dir.
  const busy = job++;
  site.prolog(busy, images[10]);
  plain.push(noContainer('a container job running'));
  site.epilog(busy, images[10]);
  const concurrent = [];
  for (const kind of ['one image', '16 images']) concurrent.push(await concurrency(kind, agent.pid));
  memory.after = groupRss(agent.pid);
  await stopAgent(agent);
  const loadEnd = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return { load, loadEnd, layers, plain, concurrent, memory };
});

const two = (value) => value.toFixed(2);
for (const [mode, title] of [['agent', 'through the node agent'], ['strata', 'the front-ends starting Node (STRATA_AGENT=off)']]) {
  console.log(`\nprolog and epilog (Slurm entry points), ${title}, vs the C floor (same mount/umount/loop calls), median ms:`);
  console.log(table(
    ['layers', 'prolog cold', 'floor', 'ratio', 'prolog warm', 'floor', 'ratio', 'epilog', 'floor', 'ratio', 'epilog (layers kept)', 'floor'],
    results.layers.map(({ count, [mode]: s, floor: f }) => [count, two(s.cold), two(f.cold), verdict(s.cold / f.cold, 2), two(s.warm), two(f.warm), verdict(s.warm / f.warm, 1.5), two(s.epilog), two(f.epilog), verdict(s.epilog / f.epilog, 1.5), two(s.epilogWarm), two(f.epilogWarm)]),
  ));
}
console.log(`\njob without a container: prolog + epilog vs /bin/true twice (floor's fork+execve timer, ${TRUE_RUNS} runs each, medians, ms):`);
console.log(table(
  ['node state', '/bin/true', 'prolog', 'epilog', 'extra over 2x /bin/true', 'target', 'Node entry points: extra'],
  results.plain.map((row) => [row.state, two(row.truth), two(row.prolog), two(row.epilog), two(row.extra), `${row.extra <= 3 ? 'met' : 'MISSED'} (<= 3 ms)`, two(row.node)]),
));
console.log(`\n${CONCURRENT} concurrent prologs, then their epilogs (one 5-layer image; ${CONCURRENT} images of ${SPREAD_LAYERS} layers), wall ms, median of ${CONCURRENT_RUNS} bursts (the Node path: one):`);
console.log(table(
  ['images', 'path', 'ready', 'failed', 'prologs', 'floors', 'ratio', 'epilogs', 'floors', 'ratio', FORMAT === 'erofs' ? 'erofs mounts / layer files' : 'loop devices / layer files', 'left'],
  results.concurrent.flatMap((row) => MODES.map((mode) => {
    const m = row[mode];
    return [row.kind, mode, `${m.ready}/${CONCURRENT}`, m.failed, fmt(m.prolog), fmt(row.floorProlog), verdict(m.prolog / row.floorProlog, 2), fmt(m.epilog), fmt(row.floorEpilog), `${two(m.epilog / row.floorEpilog)}x`, `${m.loops} / ${row.layerFilesUsed} ${m.loops === row.layerFilesUsed ? 'met' : 'MISSED'}`, m.loopsLeft];
  })),
));
const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
console.log(`\nnode agent memory (RSS of agent + gate + mount executors): idle ${mib(results.memory.idleRss)}, after the layer rows ${mib(results.memory.afterLayerRows)}, peak during 16 concurrent prologs ${mib(Math.max(...results.concurrent.map((row) => row.agent.peakRss)))}, at the end ${mib(results.memory.after)}`);
console.log(`load average: ${results.load} at start, ${results.loadEnd} at the end`);
mkdirSync(join(repo, 'bench/results'), { recursive: true });
writeFileSync(join(repo, `bench/results/targets${FORMAT === 'erofs' ? '-erofs' : ''}${QUICK ? '-quick' : ''}.json`), `${JSON.stringify(results, null, 2)}\n`);
