// Shared parts of the benchmarks: options, a scratch root that is always cleaned up (mounts, loop
// devices, files — also on failure and on SIGINT/SIGTERM), the machine-wide mount lock, the
// strata CLI, generated image content, and statistics. Root only.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const args = process.argv.slice(2);
export const flag = (name) => args.includes(name);
export const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
export const QUICK = flag('--quick');
export const repo = new URL('..', import.meta.url).pathname;
export const dist = (path) => join(repo, 'dist', path);
export const MOUNT_LOCK = '/tmp/strata-mounttests.lock';
export const PYTHON = '/usr/lib/python3.11';

const roots = [];

/** A scratch directory for one benchmark; everything under it goes at exit, mounts first. */
export function scratch(name) {
  const root = mkdtempSync(`/var/tmp/strata-bench-${name}-`);
  roots.push(root);
  return root;
}

/** Unmount everything under `root` (deepest first) and detach loop devices backed by files in it. */
export function releaseMounts(root) {
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((line) => line.split(' ')[4].replace(/\\040/g, ' '));
  for (const target of mounted.filter((path) => path === root || path.startsWith(`${root}/`)).sort((a, b) => b.length - a.length)) {
    spawnSync('umount', ['-l', target], { stdio: 'ignore' });
  }
  for (const name of readdirSync('/sys/block').filter((entry) => entry.startsWith('loop'))) {
    let backing = '';
    try {
      backing = readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim();
    } catch {
      continue;
    }
    if (backing.startsWith(`${root}/`)) spawnSync('losetup', ['-d', `/dev/${name}`], { stdio: 'ignore' });
  }
}

function cleanUp() {
  for (const root of roots.splice(0)) {
    releaseMounts(root);
    const left = readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${root}`);
    if (left) console.error(`bench: mounts left under ${root}; not deleting it`);
    else rmSync(root, { recursive: true, force: true });
  }
}
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    cleanUp();
    process.exit(130);
  });
}

/** Hold the machine-wide mount lock (other test runs use the loop devices too) while `work` runs. */
export async function withMountLock(work) {
  // `npm run bench -- --hold-lock` took it once for every benchmark.
  if (process.env.STRATA_BENCH_LOCK_HELD === '1') return work();
  const child = spawn('flock', [MOUNT_LOCK, '/bin/sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const started = performance.now();
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('exit', (code) => reject(new Error(`flock ${MOUNT_LOCK} exited ${code}`)));
  });
  child.removeAllListeners('exit');
  const waited = performance.now() - started;
  if (waited > 1000) console.error(`bench: waited ${(waited / 1000).toFixed(1)} s for ${MOUNT_LOCK}`);
  try {
    return await work();
  } finally {
    await new Promise((resolve) => {
      child.once('exit', resolve);
      child.stdin.end();
    });
  }
}

/** What slurm.conf names (install-slurm): the native front-end where built, else the .js entry point. */
export const slurmEntry = (phase) => (existsSync(dist(`${phase}/slurm`)) ? dist(`${phase}/slurm`) : dist(`${phase}/slurm.js`));

/**
 * A node's /run for a benchmark: `root`/node-run, a tmpfs once `mountNodeRun` mounted it (inside
 * `withMountLock`; released at exit with every mount under the scratch root). strata's runtime_dir
 * is node-local tmpfs on a cluster (/run/strata); this machine's /run is on its ext4 disk, where
 * each mkdir/rmdir costs ~0.1 ms instead of ~0.01. The floor and the FUSE peer use it too.
 */
export const nodeRun = (root) => join(root, 'node-run');
export function mountNodeRun(root) {
  const dir = nodeRun(root);
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2g,mode=0755', 'strata-bench-run', dir]);
  return dir;
}

/**
 * The benchmarks' job user: an ordinary account (nobody), as a cluster's jobs are, so that what
 * strata does for a non-root user (its name service entries, bind sources opened as the user) is
 * measured too. Root's jobs skip both.
 */
export const JOB_USER = { uid: 65534, gid: 65534 };

/** A strata configuration with its store under `root`, its runtime dir under `nodeRun(root)`. */
export function strataSite(root, { extra = '', logLevel = 'warn', compression = 'zstd' } = {}) {
  const config = join(root, 'strata.yaml');
  // zstd squashfs unless asked, not the default erofs: the job-start benchmarks (targets, setup,
  // concurrency, metadata) were written for the loop-device path, the costlier one, and compare it
  // with a C floor that makes the same loop and squashfs calls (and unsquashfs, loop counts).
  writeFileSync(config, `store:\n  path: ${root}/store\nruntime_dir: ${nodeRun(root)}/strata\nlog:\n  file: ${root}/strata.log\n  level: ${logLevel}\nimport:\n  compression: ${compression}\n${extra}`);
  const env = { STRATA_CONFIG: config };
  const cli = (argv) => execFileSync(process.execPath, [dist('bin/strata.js'), ...argv], { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  // Slurm runs the entry points with no PATH and only its own variables.
  const slurmEnv = (job, image) => ({ ...env, SLURM_JOB_ID: String(job), SLURM_JOB_UID: String(JOB_USER.uid), SLURM_JOB_GID: String(JOB_USER.gid), SPANK_STRATA_IMAGE: image });
  // `extra`: e.g. STRATA_AGENT=off, the front-ends then start Node instead of asking the agent.
  const prolog = (job, image, extra = {}) => timed([slurmEntry('prolog')], { ...slurmEnv(job, image), ...extra });
  const epilog = (job, image, extra = {}) => timed([slurmEntry('epilog')], { ...slurmEnv(job, image), ...extra });
  return { root, config, env, cli, slurmEnv, prolog, epilog, store: join(root, 'store'), runtime: join(nodeRun(root), 'strata') };
}

/**
 * Start the node agent (`strata node agent`, what a site runs as the strata-agent unit) for `site`;
 * resolves with its process once it listens. Stop it with `stopAgent`.
 */
export async function startAgent(site) {
  const child = spawn(process.execPath, [dist('bin/strata.js'), 'node', 'agent'], { env: { STRATA_CONFIG: site.config }, stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  const socket = join(site.runtime, 'agent/sock');
  for (let waited = 0; !existsSync(socket); waited += 20) {
    if (waited > 20_000 || child.exitCode !== null) throw new Error('the node agent did not start');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return child;
}

/**
 * Jobs of `ref` through a just-started agent, not measured: a node's agent is resident and has
 * compiled its code; the first jobs after a start pay V8's compilation, which no later job does
 * (with 20, the first row measured was still the slowest of its table).
 */
export const AGENT_WARM_UP_JOBS = 100;
export function warmAgent(site, ref) {
  for (let i = 0; i < AGENT_WARM_UP_JOBS; i++) {
    site.prolog(900000 + i, ref);
    site.epilog(900000 + i, ref);
  }
}

export async function stopAgent(child) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((resolve) => child.on('exit', resolve));
}

/** Wall time (ms) of one command; throws if it fails. */
export function timed(argv, env = process.env, options = {}) {
  const started = performance.now();
  const result = spawnSync(argv[0], argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'], ...options });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`${argv.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr?.toString().trim()}`);
  return ms;
}

export const sh = (script, options = {}) => execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8', ...options });
export const dropCaches = () => writeFileSync('/proc/sys/vm/drop_caches', '3');

export function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted.at(-1), n: sorted.length };
}

/** `fn` run `runs` times after `warmup` unmeasured runs; its samples (ms) as stats. */
export function measure(fn, { runs, warmup = 1 }) {
  for (let i = 0; i < warmup; i++) fn();
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(fn());
  return stats(samples);
}

/** ms as text: plain milliseconds below 1 s, seconds (with an s) above. */
export const fmt = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)}s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)}s` : `${ms.toFixed(0)}`);
export const cell = (s) => `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})`;

/** A Markdown-ish table: header and rows of strings, columns padded. */
export function table(header, rows) {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => String(row[column]).length)));
  const line = (row) => `| ${row.map((value, column) => String(value).padEnd(widths[column])).join(' | ')} |`;
  return [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

// A small deterministic generator: content differs per file (squashfs would fold duplicates).
function pseudoRandom(seed, size) {
  const buffer = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buffer.writeUInt32LE(x, i);
  }
  return buffer;
}

/**
 * Image content of about `bytes`: the Python standard library (real small files), `smallFiles`
 * generated text files of 0.5-8 KiB, and large files (incompressible, 1-64 MiB) for the rest.
 * Returns the list of relative file paths.
 */
export function makeContent(dir, bytes, { smallFiles }) {
  mkdirSync(dir, { recursive: true });
  const files = [];
  sh(`cp -a ${PYTHON} ${dir}/python3.11`);
  for (const path of sh('find python3.11 -type f', { cwd: dir }).split('\n').filter(Boolean)) files.push(path);
  let total = Number(sh(`du -sb ${dir}`).split('\t')[0]);
  const words = 'layer overlay squashfs mount loop prolog epilog store journal node job image tensor kernel '.split(' ');
  for (let i = 0; i < smallFiles; i++) {
    const path = `small/d${i % 97}/f${i}.txt`;
    if (i < 97) mkdirSync(join(dir, `small/d${i}`), { recursive: true });
    const size = 512 + ((i * 7919) % 7680);
    let text = '';
    while (text.length < size) text += `${words[(i + text.length) % words.length]} ${i} `;
    writeFileSync(join(dir, path), text.slice(0, size));
    files.push(path);
    total += size;
  }
  mkdirSync(join(dir, 'large'), { recursive: true });
  const chunk = 1 << 20;
  for (let i = 0; total < bytes; i++) {
    const size = Math.min(64 * chunk, Math.max(chunk, bytes - total));
    const path = `large/blob${i}.bin`;
    const fd = join(dir, path);
    writeFileSync(fd, pseudoRandom(i + 1, chunk));
    for (let written = chunk; written < size; written += chunk) writeFileSync(fd, pseudoRandom((i + 1) * 1000 + written / chunk, chunk), { flag: 'a' });
    files.push(path);
    total += size;
  }
  return files;
}

/**
 * Deal `files` round-robin into `count` layer tars (plain, and gzip for the Docker baseline).
 * Returns the paths of the plain and gzip tars, bottom layer first.
 */
export function layerTars(content, files, count, out, { gzip = true } = {}) {
  mkdirSync(out, { recursive: true });
  const layers = [];
  for (let layer = 0; layer < count; layer++) {
    const list = join(out, `list-${layer}`);
    writeFileSync(list, files.filter((_, index) => index % count === layer).join('\n'));
    const tar = join(out, `layer-${layer}.tar`);
    execFileSync('tar', ['-C', content, '-cf', tar, '-T', list]);
    layers.push({ tar, gz: gzip ? `${tar}.gz` : undefined });
  }
  // gzip -1 two at a time: the baseline needs gzip tars, not the best compression.
  if (gzip) {
    for (let i = 0; i < layers.length; i += 2) {
      const pair = layers.slice(i, i + 2).map(({ tar }) => `gzip -1 -k ${tar}`).join(' & ');
      sh(`${pair}; wait`);
    }
  }
  return layers;
}

/** Import layer tars as one image `name` (tags name:0 .. name:N-1); returns the top tag. */
export function importLayers(site, name, layers) {
  for (const [index, layer] of layers.entries()) {
    const base = index ? ['--base', `${name}:${index - 1}`] : [];
    site.cli(['import', `tar:${layer.tar}`, '--tag', `${name}:${index}`, ...base]);
  }
  return `${name}:${layers.length - 1}`;
}

/** The store's layer files of an image, bottom first. */
export function layerFiles(site, ref) {
  const plan = JSON.parse(site.cli(['prolog', '--job', 'plan', '--uid', String(JOB_USER.uid), '--gid', String(JOB_USER.gid), '--image', ref, '--dry-run']));
  return plan.steps.find((step) => step.op === 'rootfs').layers.map((layer) => layer.file);
}

export const du = (path) => Number(sh(`du -sb ${path}`).split('\t')[0]);
export const sizeOf = (path) => statSync(path).size;
