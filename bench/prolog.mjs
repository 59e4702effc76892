// Job start and end on a node: strata's Slurm prolog + epilog, cold (layers not yet mounted) and
// warm (another job holds them), for images of 1, 5, 10 and 20 layers, versus unpacking the same
// layers with `tar -x` into a local directory (Docker's pull-and-unpack, without the network), in
// the same run. Prints medians, spread and ratios. Root; leaves the node as it found it.
//
//   node bench/prolog.mjs [--runs N] [--source DIR]

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const RUNS = Number(option('--runs', 7));
const SOURCE = option('--source', '/usr/lib/python3.11');
const LAYER_COUNTS = [1, 5, 10, 20];
const repo = new URL('..', import.meta.url).pathname;
const dist = (path) => join(repo, 'dist', path);

const root = mkdtempSync('/tmp/strata-bench-');
const config = join(root, 'strata.yaml');
writeFileSync(config, `store:\n  path: ${root}/store\nruntime_dir: ${root}/run\nlog:\n  file: ${root}/strata.log\n  level: warn\n`);
const env = { STRATA_CONFIG: config };
const strata = (argv) => execFileSync(process.execPath, [dist('bin/strata.js'), ...argv], { env: { ...process.env, ...env }, encoding: 'utf8' });

// Slurm runs the entry points with no PATH and only its own variables.
const slurmEnv = (job, image) => ({ ...env, SLURM_JOB_ID: job, SLURM_JOB_UID: '0', SLURM_JOB_GID: '0', SPANK_STRATA_IMAGE: image });
const timed = (argv, childEnv) => {
  const started = performance.now();
  const result = spawnSync(argv[0], argv.slice(1), { env: childEnv, stdio: 'ignore' });
  if (result.status !== 0) throw new Error(`${argv.join(' ')} failed (${result.status})`);
  return performance.now() - started;
};
const stats = (samples) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], max: sorted.at(-1) };
};
const dropCaches = () => writeFileSync('/proc/sys/vm/drop_caches', '3');

try {
  // The same content for every layer count: the source tree's files dealt round-robin into layers.
  const files = execFileSync('find', ['.', '-type', 'f'], { cwd: SOURCE, encoding: 'utf8' }).split('\n').filter(Boolean);
  const size = execFileSync('du', ['-sb', SOURCE], { encoding: 'utf8' }).split('\t')[0];
  console.log(`image content: ${SOURCE}, ${files.length} files, ${(Number(size) / 2 ** 20).toFixed(0)} MiB; ${RUNS} runs per cell\n`);
  const images = {};
  for (const count of LAYER_COUNTS) {
    const tars = [];
    for (let layer = 0; layer < count; layer++) {
      const list = join(root, `list-${count}-${layer}`);
      writeFileSync(list, files.filter((_, index) => index % count === layer).join('\n'));
      const tar = join(root, `layer-${count}-${layer}.tar`);
      execFileSync('tar', ['-C', SOURCE, '-cf', tar, '-T', list]);
      const base = layer ? ['--base', `bench${count}:${layer - 1}`] : [];
      strata(['import', `tar:${tar}`, '--tag', `bench${count}:${layer}`, ...base]);
      tars.push(tar);
    }
    images[count] = { ref: `bench${count}:${count - 1}`, tars };
  }

  const rows = [];
  let job = 1000;
  for (const count of LAYER_COUNTS) {
    const { ref, tars } = images[count];
    const cold = [], warm = [], epilogs = [], untar = [];
    for (let run = 0; run < RUNS; run++) {
      // Cold: no layer of this image mounted on the node (page cache warm: we measure set-up).
      const id = String(job++);
      cold.push(timed([dist('prolog/slurm.js')], slurmEnv(id, ref)));
      epilogs.push(timed([dist('epilog/slurm.js')], slurmEnv(id, ref)));
      // Warm: another job on the node already holds the layers.
      const holder = String(job++);
      const second = String(job++);
      timed([dist('prolog/slurm.js')], slurmEnv(holder, ref));
      warm.push(timed([dist('prolog/slurm.js')], slurmEnv(second, ref)));
      timed([dist('epilog/slurm.js')], slurmEnv(second, ref));
      timed([dist('epilog/slurm.js')], slurmEnv(holder, ref));
      // Baseline: unpack every layer into a fresh local directory, then remove it.
      const target = join(root, 'unpacked');
      const started = performance.now();
      mkdirSync(target);
      for (const tar of tars) execFileSync('tar', ['-C', target, '-xf', tar]);
      rmSync(target, { recursive: true, force: true });
      untar.push(performance.now() - started);
    }
    rows.push({ count, cold: stats(cold), warm: stats(warm), epilog: stats(epilogs), untar: stats(untar) });
  }

  // One cold-cache sample per layer count: page cache dropped before the prolog.
  const coldCache = {};
  for (const count of LAYER_COUNTS) {
    dropCaches();
    const id = String(job++);
    coldCache[count] = timed([dist('prolog/slurm.js')], slurmEnv(id, images[count].ref));
    timed([dist('epilog/slurm.js')], slurmEnv(id, images[count].ref));
  }

  const ms = (value) => value.toFixed(0).padStart(5);
  const cell = (s) => `${ms(s.median)} (${s.min.toFixed(0)}-${s.max.toFixed(0)})`.padEnd(16);
  console.log('layers | prolog cold       | prolog warm       | epilog            | prolog+epilog | tar -x + rm       | ratio tar/strata | prolog, caches dropped');
  for (const row of rows) {
    const strataTotal = row.cold.median + row.epilog.median;
    console.log(`${String(row.count).padStart(6)} | ${cell(row.cold)}  | ${cell(row.warm)}  | ${cell(row.epilog)}  | ${ms(strataTotal)}         | ${cell(row.untar)}  | ${(row.untar.median / strataTotal).toFixed(1).padStart(6)}x          | ${ms(coldCache[row.count])}`);
  }
  console.log('\nms, median (min-max); wall time of the compiled Slurm entry points including Node start-up.');
  console.log('targets (BRIEF): prolog <= 250 ms cold at 10 layers, <= 120 ms warm, epilog <= 100 ms.');
} finally {
  const mounted = execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).split('\n').some((target) => target.startsWith(root));
  if (mounted) console.error(`bench: mounts left under ${root}; not deleting it`);
  else rmSync(root, { recursive: true, force: true });
}
