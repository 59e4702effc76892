// Drives the one-machine Slurm test cluster (test/cluster/*.sh) from jest: start it when it is not
// up, run commands on its hosts, build and import test images, submit jobs as an unprivileged user,
// wait for them, and check that every node is clean afterwards.

import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';

export const REPO = resolve(new URL('../..', import.meta.url).pathname);
export const CLUSTER = join(REPO, 'test/cluster');
/** The script that starts the cluster: test/cluster24/up.sh for the Slurm 24.11 one (see slurm24.test.ts). */
const UP = process.env.STRATA_CLUSTER_UP ?? join(CLUSTER, 'up.sh');
export const DIR = process.env.STRATA_CLUSTER_DIR ?? '/tmp/strata-cluster';
export const NODES = ['n1', 'n2', 'n3'];
export const CONFIG = join(DIR, 'etc/strata.yaml');
export const STORE = join(DIR, 'store');
/** Jobs run as nobody: an unprivileged user, as on a real cluster. */
export const USER = { name: 'nobody', uid: 65534, gid: 65534 };

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolvePromise) => {
    execFile(file, args, { env: options.env ?? process.env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolvePromise({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Run a command on a cluster host (head, n1, n2, n3), as root or as the test user. */
export function on(host: string, args: string[], options: { user?: boolean; cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  const user = options.user ? ['setpriv', `--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--'] : [];
  const cwd = options.cwd ? ['/usr/bin/env', '-C', options.cwd] : [];
  return run(join(CLUSTER, 'on.sh'), [host, ...cwd, ...user, ...args], { timeoutMs: options.timeoutMs });
}

/** The strata CLI on this machine, against the cluster's store (an admin's `strata import` etc.). */
export function strata(args: string[]): Promise<Run> {
  return run(join(REPO, 'dist/bin/strata.js'), args, { env: { ...process.env, STRATA_CONFIG: CONFIG } });
}

const clusterAnswers = () => spawnSync(join(CLUSTER, 'on.sh'), ['head', 'sinfo', '-h'], { timeout: 10_000 }).status === 0;

/**
 * Start the cluster unless one built from this checkout is already up. Returns whether it was
 * started here (and so should be stopped by the caller).
 */
export async function ensureCluster(): Promise<boolean> {
  const prolog = join(DIR, 'bin/prolog');
  const ours = existsSync(prolog) && readFileSync(prolog, 'utf8').includes(join(REPO, 'dist/prolog/slurm'));
  // A cluster in this directory started with another STRATA_CLUSTER_JOB_CONTAINER is restarted.
  const sameJobContainer = existsSync(join(DIR, 'etc/job_container.conf')) === Boolean(process.env.STRATA_CLUSTER_JOB_CONTAINER);
  if (ours && sameJobContainer && clusterAnswers()) {
    execFileSync('make', ['-s', '-C', join(REPO, 'spank')]);
    return false;
  }
  const up = await run(UP, [], { timeoutMs: 600_000 });
  if (up.code !== 0) throw new Error(`cluster did not start:\n${up.stderr}`);
  return true;
}

/** For a test file's beforeAll: root, the cluster up (see ensureCluster) and every node idle. */
export async function clusterForTests(): Promise<boolean> {
  if (process.getuid?.() !== 0) throw new Error('the end-to-end tests need root (namespaces, slurmd, loop devices)');
  const startedHere = await ensureCluster();
  await waitForQuietCluster();
  return startedHere;
}

/**
 * The hooks of an end-to-end test file: the cluster up (started here if needed, stopped again at
 * the end) and `prepare` run once; after every test, every node idle (never drained) and clean,
 * and this machine's mounts and loop devices as before the test. `setupTimeoutMs` bounds starting the
 * cluster and `prepare`. The result says whether this file started the cluster (a test that
 * restarts it sets it, so that afterAll stops it).
 */
export function useCleanCluster(prepare: () => Promise<unknown> = async () => undefined, setupTimeoutMs = 240_000): { startedHere: boolean } {
  const cluster = { startedHere: false };
  let before: NodeState;
  beforeAll(async () => {
    cluster.startedHere = await clusterForTests();
    await prepare();
  }, setupTimeoutMs);
  afterAll(async () => {
    if (cluster.startedHere) await stopCluster();
  }, 120_000);
  beforeEach(() => {
    before = nodeState();
  });
  afterEach(async () => {
    const states = await waitForQuietCluster();
    expect(states).toEqual(Object.fromEntries(NODES.map((node) => [node, 'idle'])));
    for (const node of NODES) expect({ node, left: await nodeLeftovers(node) }).toEqual({ node, left: [] });
    expectNodeStateUnchanged(before);
  }, 90_000);
  return cluster;
}

export async function stopCluster(): Promise<void> {
  const down = await run(join(CLUSTER, 'down.sh'), []);
  if (down.code !== 0) throw new Error(`cluster did not stop cleanly:\n${down.stderr}`);
}

// ---- images ------------------------------------------------------------------------------------

/**
 * Build a busybox root filesystem (every applet, /etc/passwd, /tmp) with `files` added, plus
 * /bin/euid: a static program printing its effective uid, installed setuid root. Import it as `tag`.
 * `hostFiles` are copied from this machine into the tree at the same paths.
 */
export async function importImage(tag: string, files: Record<string, string> = {}, hostFiles: string[] = []): Promise<string> {
  const tree = join(DIR, 'image-trees', tag.replace(/[^\w.-]/g, '_'));
  rmSync(tree, { recursive: true, force: true });
  for (const dir of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev']) mkdirSync(join(tree, dir), { recursive: true });
  chmodSync(join(tree, 'tmp'), 0o1777);
  execFileSync('cp', ['/bin/busybox', join(tree, 'bin/busybox')]);
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const applet of applets) execFileSync('ln', ['-sf', 'busybox', join(tree, 'bin', applet)]);
  writeFileSync(join(tree, 'etc/passwd'), `root:x:0:0:root:/root:/bin/sh\n${USER.name}:x:${USER.uid}:${USER.gid}:${USER.name}:/nonexistent:/bin/sh\n`);
  writeFileSync(join(tree, 'etc/group'), `root:x:0:\nnogroup:x:${USER.gid}:\n`);
  writeFileSync(join(tree, 'etc/os-release'), 'NAME="strata test image"\nID=stratatest\n');
  const euid = join(DIR, 'image-trees', 'euid');
  if (!existsSync(euid)) {
    writeFileSync(`${euid}.c`, '#include <stdio.h>\n#include <unistd.h>\nint main(void){printf("euid=%u\\n",(unsigned)geteuid());return 0;}\n');
    execFileSync('cc', ['-static', '-O2', '-o', euid, `${euid}.c`]);
  }
  execFileSync('install', ['-m', '4755', '-o', 'root', '-g', 'root', euid, join(tree, 'bin/euid')]);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(tree, path, '..'), { recursive: true });
    writeFileSync(join(tree, path), content);
  }
  // Host programs and libraries copied in at the same paths (a glibc getent, say), links followed.
  for (const path of hostFiles) {
    mkdirSync(join(tree, path, '..'), { recursive: true });
    execFileSync('cp', ['-L', path, join(tree, path)]);
  }
  const result = await strata(['import', `dir:${tree}`, '--tag', tag]);
  if (result.code !== 0) throw new Error(`strata import ${tag} failed: ${result.stderr}`);
  return result.stdout.trim().split('\n').pop()!;
}

/**
 * The MPI image (Debian 12: python3, numpy, Open MPI with mpicc, mpi4py), built once per machine
 * from Debian packages by test/images/mpi-rootfs.sh (cached under /var/cache/strata/rootfs; the
 * first build takes a few minutes) and imported as `tag`, as the demo does.
 */
export async function importMpiImage(tag: string): Promise<void> {
  const built = await run(join(REPO, 'test/images/mpi-rootfs.sh'), [], { timeoutMs: 1_200_000 });
  if (built.code !== 0) throw new Error(`building the MPI image tree failed:\n${built.stderr}`);
  const env = { ...process.env, STRATA_CONFIG: CONFIG };
  const result = await run(join(REPO, 'dist/bin/strata.js'), ['import', `dir:${built.stdout.trim()}`, '--tag', tag], { env, timeoutMs: 600_000 });
  if (result.code !== 0) throw new Error(`strata import ${tag} failed: ${result.stderr}`);
}

/** Delete an image from the store the way garbage collection would: tag, manifest, config, layers. */
export function removeImageFromStore(tag: string): void {
  const [name, version] = tag.split(':');
  const tagFile = join(STORE, 'tags', name, `@${version}`);
  const digest = readFileSync(tagFile, 'utf8').trim();
  const blob = (d: string) => join(STORE, 'blobs/sha256', d.replace('sha256:', ''));
  const manifest = JSON.parse(readFileSync(blob(digest), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  for (const layer of manifest.layers) rmSync(join(STORE, 'layers/sha256', `${layer.digest.replace('sha256:', '')}.sqfs`), { force: true });
  rmSync(blob(manifest.config.digest), { force: true });
  rmSync(blob(digest), { force: true });
  rmSync(tagFile, { force: true });
}

// ---- jobs --------------------------------------------------------------------------------------

/** A fresh job working directory, writable by the test user, visible on every host at this path. */
export function workDir(name: string): string {
  const dir = join(DIR, 'work', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  chownSync(dir, USER.uid, USER.gid);
  return dir;
}

export interface Submitted extends Run {
  jobId?: string;
}

/** sbatch as the test user, from `cwd`; the job id is parsed from "Submitted batch job N". */
export async function sbatch(cwd: string, args: string[]): Promise<Submitted> {
  const result = await on('head', ['sbatch', ...args], { user: true, cwd });
  return { ...result, jobId: /Submitted batch job (\d+)/.exec(result.stdout)?.[1] };
}

const FINAL = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE', 'PREEMPTED'];

export interface JobInfo {
  state: string;
  exitCode: string;
  nodes: string;
  reason: string;
  raw: string;
}

export async function jobInfo(jobId: string): Promise<JobInfo> {
  const result = await on('head', ['scontrol', 'show', 'job', '-o', jobId]);
  const field = (name: string) => new RegExp(`(?:^| )${name}=(\\S*)`).exec(result.stdout)?.[1] ?? '';
  return { state: field('JobState'), exitCode: field('ExitCode'), nodes: field('NodeList'), reason: field('Reason'), raw: result.stdout };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until the job is in `states` (default: any final state). */
export async function waitForJob(jobId: string, states = FINAL, timeoutMs = 60_000): Promise<JobInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await jobInfo(jobId);
    if (states.includes(info.state)) return info;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${info.state} after ${timeoutMs} ms:\n${info.raw}`);
    await sleep(200);
  }
}

/** Node states as sinfo reports them, e.g. { n1: 'idle', n2: 'completing' }. */
export async function nodeStates(): Promise<Record<string, string>> {
  const result = await on('head', ['sinfo', '-h', '-N', '-o', '%N %T']);
  return Object.fromEntries(result.stdout.trim().split('\n').filter(Boolean).map((line) => line.split(/\s+/) as [string, string]));
}

/** Wait until no job is left in the queue (epilogs included) and every node is idle. */
export async function waitForQuietCluster(timeoutMs = 60_000): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const queue = (await on('head', ['squeue', '-h', '-o', '%i %T'])).stdout.trim();
    const states = await nodeStates();
    if (!queue && Object.values(states).every((state) => state === 'idle')) return states;
    if (Date.now() > deadline) {
      // Why a node is not idle (drained, down): Slurm's reason, so that a rare drain is explained by the run that saw it.
      const reasons = (await on('head', ['sinfo', '-h', '-R', '-o', '%N: %E (%H)'])).stdout.trim().replace(/\n/g, '; ');
      throw new Error(`cluster not quiet after ${timeoutMs} ms: queue=[${queue}] nodes=${JSON.stringify(states)}${reasons ? ` reasons=[${reasons}]` : ''}`);
    }
    await sleep(200);
  }
}

/** What strata left on a node: mounts under its runtime dir (in that node's namespace), job dirs. */
export async function nodeLeftovers(node: string): Promise<string[]> {
  const mounts = (await on(node, ['findmnt', '-rn', '-o', 'TARGET'])).stdout.split('\n').filter((t) => t.startsWith('/run/strata/'));
  const jobs = (await on(node, ['sh', '-c', 'ls -A /run/strata/jobs 2>/dev/null'])).stdout.split('\n').filter(Boolean);
  return [...mounts.map((m) => `mount ${m}`), ...jobs.map((j) => `job dir /run/strata/jobs/${j}`)];
}

export function readOutput(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : `(no output file ${path})`;
}
