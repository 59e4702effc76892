// Drives the one-machine Slurm test cluster (test/cluster/*.sh) from jest: start it when it is not
// up, run commands on its hosts, build and import test images, submit jobs as an unprivileged user,
// wait for them, and check that every node is clean afterwards.

import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';

export const REPO = resolve(new URL('../..', import.meta.url).pathname);
export const CLUSTER = join(REPO, 'test/cluster');
/** The script that starts the cluster: test/cluster24/up.sh for the Slurm 24.11 one (see slurm24.test.ts). */
const UP = process.env.STRATA_CLUSTER_UP ?? join(CLUSTER, 'up.sh');
export const DIR = process.env.STRATA_CLUSTER_DIR ?? '/tmp/strata-cluster';
/** The prefix of the cluster's network namespaces (test/cluster/lib.sh). */
export const NS = process.env.STRATA_CLUSTER_NS ?? 'strata';
/** Where test/cluster/up.sh makes the fake GPUs' device nodes (nvidia0, nvidia1, nvidiactl, nvidia-uvm): GPU_DEV in lib.sh. */
export const GPU_DEV = `/dev/${NS}-cluster-gpu`;
export const NODES = ['n1', 'n2', 'n3'];
export const CONFIG = join(DIR, 'etc/strata.yaml');
export const STORE = join(DIR, 'store');

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** Its home directory (under /home, shared by every host). */
  home: string;
  /** A supplementary group it is in besides its own, and that group's id. */
  extraGroup: string;
  extraGid: number;
}

let testUser: TestUser | undefined;

/**
 * Jobs run as an ordinary unprivileged user, as on a real cluster: strata-e2e, with a home directory
 * and a supplementary group, made on this machine on first use by test/cluster/test-user.sh (root,
 * idempotent; the cluster hosts share the machine's accounts).
 */
export function testUserAccount(): TestUser {
  if (!testUser) {
    const [name, uid, gid, home, extraGroup, extraGid] = execFileSync(join(CLUSTER, 'test-user.sh'), { encoding: 'utf8' }).trim().split(' ');
    testUser = { name, uid: Number(uid), gid: Number(gid), home, extraGroup, extraGid: Number(extraGid) };
  }
  return testUser;
}

/** The test user (testUserAccount), read field by field when a test first needs it. */
export const USER: TestUser = new Proxy({} as TestUser, { get: (_, field) => testUserAccount()[field as keyof TestUser] });

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
  // The user's own groups (setpriv reads them from the group database), and its login variables.
  const user = options.user
    ? ['setpriv', `--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--init-groups', '--', '/usr/bin/env', `HOME=${USER.home}`, `USER=${USER.name}`, `LOGNAME=${USER.name}`]
    : [];
  const cwd = options.cwd ? ['/usr/bin/env', '-C', options.cwd] : [];
  return run(join(CLUSTER, 'on.sh'), [host, ...cwd, ...user, ...args], { timeoutMs: options.timeoutMs });
}

/** The strata CLI on this machine, against the cluster's store (an admin's `strata import` etc.). */
export function strata(args: string[]): Promise<Run> {
  return run(join(REPO, 'dist/bin/strata.js'), args, { env: { ...process.env, STRATA_CONFIG: CONFIG } });
}

const clusterAnswers = () => spawnSync(join(CLUSTER, 'on.sh'), ['head', 'sinfo', '-h'], { timeout: 10_000 }).status === 0;
const hostsKnowUser = () => ['head', ...NODES].every((host) => spawnSync(join(CLUSTER, 'on.sh'), [host, 'id', '-u', USER.name], { timeout: 10_000 }).stdout?.toString().trim() === String(USER.uid));

/**
 * Start the cluster unless one built from this checkout is already up. Returns whether it was
 * started here (and so should be stopped by the caller).
 */
export async function ensureCluster(): Promise<boolean> {
  const prolog = join(DIR, 'bin/prolog');
  const ours = existsSync(prolog) && readFileSync(prolog, 'utf8').includes(join(REPO, 'dist/prolog/slurm'));
  // A cluster in this directory started with another STRATA_CLUSTER_JOB_CONTAINER is restarted.
  const sameJobContainer = existsSync(join(DIR, 'etc/job_container.conf')) === Boolean(process.env.STRATA_CLUSTER_JOB_CONTAINER);
  // A cluster whose hosts do not know the test user (one started before it existed) is restarted.
  if (ours && sameJobContainer && clusterAnswers() && hostsKnowUser()) {
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
  testUserAccount(); // before the cluster starts: test/cluster24's hosts copy the accounts then
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

// ---- site settings and services ------------------------------------------------------------------

/** This cluster's sudoers file (sudoers.d ignores names with a dot): clusters side by side keep their own. */
const SUDOERS = `/etc/sudoers.d/strata-test-e2e-${DIR.replace(/[^\w-]/g, '_')}`;

/**
 * Runs `run` with import.user_imports (and `settings`, lines under `import:`) in the cluster's
 * strata.yaml and the sudo rule of docs/install.md for users' imports through the store's owner
 * (root here), on every host (they share /etc); both undone afterwards.
 */
export async function withUserImports(settings: string, run: () => Promise<void>): Promise<void> {
  const config = readFileSync(CONFIG, 'utf8');
  writeFileSync(CONFIG, `${config}import:\n${settings}`);
  writeFileSync(SUDOERS, `Defaults env_keep += "STRATA_CONFIG"\nALL ALL=(root) NOPASSWD: ${join(REPO, 'dist/bin/strata.js')} _store-write\n`, { mode: 0o440 });
  try {
    await run();
  } finally {
    writeFileSync(CONFIG, config);
    rmSync(SUDOERS, { force: true });
  }
}

/**
 * Makes this machine's 127.0.0.1:PORT (a registry, a token server) reachable at 127.0.0.1:PORT on
 * a cluster host too, e.g. head, where `strata resolve` runs at submit: the listening socket is made
 * inside the host's network namespace by a child (test/cluster/on.sh) that hands it over and exits;
 * each connection to it is relayed here. The same address then works on both sides (an image
 * reference, a token realm). Stop it with the returned function.
 */
export async function forwardToHost(host: string, port: number): Promise<() => Promise<void>> {
  const listen = `const s = require('net').createServer(); s.on('error', (e) => { process.send(String(e)); process.exit(1); }); s.listen(${port}, '127.0.0.1', () => process.send('listening', s, () => process.exit(0)));`;
  const child = spawn(join(CLUSTER, 'on.sh'), [host, process.execPath, '-e', listen], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const server = await new Promise<Server>((resolvePromise, reject) => {
    child.on('message', (message, handle) => (handle ? resolvePromise(handle as Server) : reject(new Error(`cannot listen on ${host}'s 127.0.0.1:${port}: ${String(message)}`))));
    child.on('exit', (code) => reject(new Error(`cannot listen on ${host}'s 127.0.0.1:${port} (exit ${code}): ${stderr}`)));
  });
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket) => {
    const upstream = connect(port, '127.0.0.1');
    for (const end of [socket, upstream]) {
      sockets.add(end);
      end.on('close', () => sockets.delete(end));
      end.on('error', () => undefined);
    }
    socket.pipe(upstream).pipe(socket);
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
  });
  return () =>
    new Promise((resolvePromise) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolvePromise());
    });
}

// ---- images ------------------------------------------------------------------------------------

/**
 * Build a busybox root filesystem (every applet, /etc/passwd, /tmp) with `files` added, plus
 * /bin/euid: a static program printing its effective uid, installed setuid root. Import it as `tag`.
 * `hostFiles` are copied from this machine into the tree at the same paths.
 */
export async function importImage(tag: string, files: Record<string, string | Buffer> = {}, hostFiles: string[] = []): Promise<string> {
  const tree = join(DIR, 'image-trees', tag.replace(/[^\w.-]/g, '_'));
  rmSync(tree, { recursive: true, force: true });
  for (const dir of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev']) mkdirSync(join(tree, dir), { recursive: true });
  chmodSync(join(tree, 'tmp'), 0o1777);
  execFileSync('cp', ['/bin/busybox', join(tree, 'bin/busybox')]);
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const applet of applets) execFileSync('ln', ['-sf', 'busybox', join(tree, 'bin', applet)]);
  writeFileSync(join(tree, 'etc/passwd'), `root:x:0:0:root:/root:/bin/sh\n${USER.name}:x:${USER.uid}:${USER.gid}:${USER.name}:${USER.home}:/bin/sh\n`);
  writeFileSync(join(tree, 'etc/group'), `root:x:0:\n${USER.name}:x:${USER.gid}:\n`);
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
