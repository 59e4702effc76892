// Race tests: an ordinary user swaps (renameat2 RENAME_EXCHANGE, as fast as one core allows) a
// directory with a symlink to somewhere root must never touch, at every path the prolog, the
// epilog and the mount helper resolve in a tree a user controls, while root mounts and unmounts.
// Hundreds of attempts per path against the helper itself, then whole prologs and epilogs. The
// assertion is always the same: no mount, file or unmount ever happens outside the job's tree, and
// the host's mount table ends as it began. Each race is bounded in time (a few seconds).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MountHelper } from '../../src/host/mount-helper.js';
import { bindIntoRootfs, putFileInRootfs, unmountVerified } from '../../src/host/job-mounts.js';
import { importSmallImage } from '../helpers/images.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, REPO, type Site } from '../helpers/site.js';

const USER = 1000;
/** Attempts per path against the helper; each race also stops after RACE_MS. */
const ATTEMPTS = 300;
const RACE_MS = 4000;

let site: Site;
let before: NodeState;
let helper: MountHelper;
let racer: string;
/** A root-owned host directory with a marker: nothing may ever be mounted on it or created in it. */
let hostDir: string;
/** The user's home directory on the host (bound into the test rootfs as in a job). */
let home: string;
/** Stands in for a job's rootfs: a tmpfs, with the user's home bound in like a job's. */
let rootfs: string;

const mountinfo = () =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(' ');
      return { id: Number(fields[0]), mountPoint: fields[4].replace(/\\040/g, ' ') };
    });
const mountPointOf = (id: number) => mountinfo().find((entry) => entry.id === id)?.mountPoint;
const hostDirUntouched = () => {
  expect(readdirSync(hostDir).sort()).toEqual(['marker']);
  expect(mountinfo().filter((entry) => entry.mountPoint === hostDir || entry.mountPoint.startsWith(`${hostDir}/`))).toEqual([]);
};

/** Start the racer as the user: swaps a and b until `ms` have passed. */
function race(a: string, b: string, ms = RACE_MS): { child: ChildProcess; done: Promise<number> } {
  const child = spawn('/usr/bin/setpriv', [`--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', racer, a, b, String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  const done = new Promise<number>((resolve) => child.on('close', () => resolve(Number(out.trim()) || 0)));
  return { child, done };
}

function userDir(path: string) {
  mkdirSync(path, { recursive: true });
  chownSync(path, USER, USER);
  return path;
}

function userLink(target: string, path: string) {
  symlinkSync(target, path);
  execFileSync('chown', ['-h', `${USER}:${USER}`, path]);
}

const bind = (source: string, target: string, create = true, uid = USER, groups?: number[]) =>
  bindIntoRootfs({ source, rootfs, target, uid, gid: uid, groups, readonly: false, recursive: false, keepDev: false, optional: false, create, deny: site.runtime }, helper);

/** Unmount a mount of the test rootfs by id, as teardown does (verified), retrying while a racer makes it unreachable. */
async function unmountById(id: number) {
  for (let attempt = 0; attempt < 2000; attempt++) {
    const at = mountPointOf(id);
    if (!at) return;
    await unmountVerified(site.root, at, id, false, helper);
  }
  throw new Error(`mount ${id} never came down`);
}

beforeAll(async () => {
  before = nodeState();
  site = makeSite('races');
  racer = join(site.root, 'racer');
  execFileSync('cc', ['-O2', '-o', racer, join(REPO, 'test/security/racer.c')]);
  hostDir = join(site.root, 'host');
  mkdirSync(hostDir);
  writeFileSync(join(hostDir, 'marker'), 'root\n');
  home = userDir(join(site.root, 'home', 'u'));
  rootfs = join(site.root, 'rootfs');
  mkdirSync(rootfs);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=755', 'racefs', rootfs]);
  execFileSync('mount', ['--make-private', rootfs]);
  helper = new MountHelper(join(REPO, 'dist/helper/strata-mount'));
  const homeBind = await bind(home, home);
  if (!homeBind.ok) throw new Error(homeBind.message);
  await importSmallImage(site, 'small:1');
}, 120_000);

afterAll(async () => {
  for (const entry of mountinfo().filter((mounted) => mounted.mountPoint.startsWith(`${rootfs}/`)).reverse()) await unmountById(entry.id);
  execFileSync('umount', [rootfs]);
  await helper.close();
  site.remove();
  expectNodeStateUnchanged(before);
});

test('bind target: swapping a directory of the user\'s home with a link to a host directory never mounts over the host', async () => {
  userDir(join(home, 'mnt'));
  userLink(hostDir, join(home, 'mnt-link'));
  const source = userDir(join(site.root, 'home', 'src1'));
  const racing = race(join(home, 'mnt'), join(home, 'mnt-link'));
  let mounted = 0;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const reply = await bind(source, `${home}/mnt`, false);
    if (reply.ok) {
      mounted++;
      const at = mountPointOf(Number(reply.value))!;
      expect(at.startsWith(`${rootfs}/`)).toBe(true);
      await unmountById(Number(reply.value));
    } else {
      expect(['target', 'type']).toContain(reply.stage);
    }
    hostDirUntouched();
  }
  const swaps = await racing.done;
  expect(swaps).toBeGreaterThan(ATTEMPTS);
  expect(mounted).toBeGreaterThan(0);
}, 60_000);

// A job's sources are opened with the group list its identity lookup found: by the executor
// itself, its filesystem identity the user's for the open (helper/untrusted.c); without a list, by
// a child that becomes the user.
test.each([
  ['the group list of the job lookup (no child)', [USER]],
  ['the name service (a child per source)', undefined],
])('bind source, opened with %s: a source swapped with a link to a directory the user cannot read never shows its files', async (_how, groups) => {
  const secret = join(site.root, `secret-${groups ? 'listed' : 'nss'}`);
  mkdirSync(secret, { mode: 0o700 });
  writeFileSync(join(secret, 'secret.txt'), 'not for uid 1000\n');
  const name = groups ? 'listed' : 'nss';
  const own = userDir(join(home, `data-${name}`));
  writeFileSync(join(own, 'mine.txt'), 'mine\n');
  userLink(secret, join(home, `link-${name}`));
  const racing = race(own, join(home, `link-${name}`));
  const outcomes = new Set<string>();
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const reply = await bind(own, `/data-${name}`, true, USER, groups);
    if (reply.ok) {
      outcomes.add('mounted');
      expect(readdirSync(join(rootfs, `data-${name}`))).toEqual(['mine.txt']);
      await unmountById(Number(reply.value));
    } else {
      outcomes.add(`${reply.stage} ${reply.value}`);
      expect(reply.stage).toBe('source');
    }
  }
  await racing.done;
  expect(outcomes.has('mounted')).toBe(true);
  expect(outcomes.has('source EACCES')).toBe(true);
}, 60_000);

test('mount points: a user swapping directories inside the rootfs cannot make root create anything outside it', async () => {
  // The user's own directory in the rootfs (the job's upper is theirs), swapped with links that
  // lead out by absolute path and by "..".
  userDir(join(rootfs, 'a'));
  userLink(hostDir, join(rootfs, 'a-abs'));
  userLink(`../../../../../../../..${hostDir}`, join(rootfs, 'a-rel'));
  const source = userDir(join(site.root, 'home', 'src3'));
  for (const link of ['a-abs', 'a-rel']) {
    const racing = race(join(rootfs, 'a'), join(rootfs, link), RACE_MS / 2);
    for (let attempt = 0; attempt < ATTEMPTS / 2; attempt++) {
      const reply = await bind(source, `/a/b${attempt}/c`);
      if (reply.ok) {
        expect(mountPointOf(Number(reply.value))!.startsWith(`${rootfs}/`)).toBe(true);
        await unmountById(Number(reply.value));
      }
      hostDirUntouched();
    }
    await racing.done;
  }
  hostDirUntouched();
}, 60_000);

test('remap-root\'s apt setting written as root into the rootfs: a user swapping the directory with links out never makes root create a file outside it', async () => {
  userDir(join(rootfs, 'apt'));
  userLink(hostDir, join(rootfs, 'apt-abs'));
  userLink(`../../../../../../../..${hostDir}`, join(rootfs, 'apt-rel'));
  let written = 0;
  for (const link of ['apt-abs', 'apt-rel']) {
    const racing = race(join(rootfs, 'apt'), join(rootfs, link), RACE_MS / 2);
    for (let attempt = 0; attempt < ATTEMPTS / 2; attempt++) {
      const reply = await putFileInRootfs(rootfs, '/apt', `conf${link}${attempt}`, 'APT::Sandbox::User "root";\n', USER, USER, helper);
      expect(reply.ok || reply.stage === 'target').toBe(true);
      if (reply.ok && reply.value !== 'skipped') written++;
      hostDirUntouched();
    }
    await racing.done;
  }
  expect(written).toBeGreaterThan(0);
  hostDirUntouched();
}, 60_000);

test('the node\'s files (Slurm client: a plugin file, a library directory) bound as root at new paths: a user swapping a directory on the way cannot make root create or mount anything outside the rootfs', async () => {
  // Trusted binds are opened as root (uid 0) and create file and directory mount points, e.g.
  // /usr/local/lib/strata/strata.so or /.strata/slurm/host/usr/lib/... (runtime/slurm-client/plan.ts).
  const file = join(site.root, 'node-plugin.so');
  writeFileSync(file, 'plugin\n');
  const dir = join(site.root, 'node-lib');
  mkdirSync(dir, { recursive: true });
  userDir(join(rootfs, 's'));
  userLink(hostDir, join(rootfs, 's-abs'));
  const racing = race(join(rootfs, 's'), join(rootfs, 's-abs'), RACE_MS / 2);
  let mounted = 0;
  for (let attempt = 0; attempt < ATTEMPTS / 2; attempt++) {
    const reply = await bind(attempt % 2 ? file : dir, attempt % 2 ? `/s/lib${attempt}/strata.so` : `/s/host${attempt}/usr/lib`, true, 0);
    if (reply.ok) {
      mounted++;
      expect(mountPointOf(Number(reply.value))!.startsWith(`${rootfs}/`)).toBe(true);
      await unmountById(Number(reply.value));
    }
    hostDirUntouched();
  }
  await racing.done;
  expect(mounted).toBeGreaterThan(0);
  hostDirUntouched();
}, 60_000);

test('unmount: swapping a parent of a job\'s mount point with a link to a host mount never unmounts the host\'s', async () => {
  // The host's own mount, at the same relative place the job's mount would be found through the link.
  const decoyParent = join(site.root, 'decoy');
  mkdirSync(join(decoyParent, 'mnt'), { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'decoy', join(decoyParent, 'mnt')]);
  try {
    userDir(join(home, 'x', 'mnt'));
    userLink(decoyParent, join(home, 'x-link'));
    const source = userDir(join(site.root, 'home', 'src4'));
    const decoyId = mountinfo().find((entry) => entry.mountPoint === join(decoyParent, 'mnt'))!.id;
    let rounds = 0;
    const deadline = Date.now() + RACE_MS;
    while (rounds < ATTEMPTS && Date.now() < deadline) {
      // Mount without the racer, then race the unmount: the path in mountinfo is what teardown uses.
      const reply = await bind(source, `${home}/x/mnt`, false);
      if (!reply.ok) throw new Error(reply.message);
      const id = Number(reply.value);
      const at = mountPointOf(id)!;
      const racing = race(join(home, 'x'), join(home, 'x-link'), 30);
      for (let attempt = 0; attempt < 50 && mountPointOf(id); attempt++) await unmountVerified(site.root, at, id, false, helper);
      await racing.done;
      // Put the directory back where it was if the racer left it swapped.
      if (!existsSync(join(home, 'x', 'mnt'))) renameSync(join(home, 'x'), join(home, 'x-tmp')), renameSync(join(home, 'x-link'), join(home, 'x')), renameSync(join(home, 'x-tmp'), join(home, 'x-link'));
      await unmountById(id);
      expect(mountinfo().some((entry) => entry.id === decoyId)).toBe(true);
      rounds++;
    }
    expect(rounds).toBeGreaterThan(20);
  } finally {
    execFileSync('umount', [join(decoyParent, 'mnt')]);
  }
}, 60_000);

test('whole prologs and epilogs with a racer on the user\'s mount target: the host directory is never covered, the epilog always cleans up', async () => {
  const mnt = userDir(join(home, 'job-mnt'));
  userLink(hostDir, join(home, 'job-mnt-link'));
  const source = userDir(join(site.root, 'home', 'src5'));
  const racing = race(mnt, join(home, 'job-mnt-link'), RACE_MS * 2);
  const outcomes: string[] = [];
  for (let round = 0; round < 12; round++) {
    const job = `race${round}`;
    const prolog = await site.run(['prolog', '--job', job, '--uid', String(USER), '--gid', String(USER), '--image', 'small:1', '--mounts', `${home}:${home},${source}:${home}/job-mnt`]);
    expect(prolog.code).toBe(0);
    const error = join(site.runtime, 'jobs', job, 'error');
    outcomes.push(existsSync(error) ? readFileSync(error, 'utf8') : 'ready');
    hostDirUntouched();
    const epilog = await site.run(['epilog', '--job', job]);
    expect(epilog.code).toBe(0);
    hostDirUntouched();
    expect(mountinfo().filter((entry) => entry.mountPoint.startsWith(join(site.runtime, 'jobs')))).toEqual([]);
  }
  await racing.done;
  for (const outcome of outcomes) expect(outcome === 'ready' || /E_BAD_MOUNT|cannot mount|refused/.test(outcome) || outcome.startsWith('strata: ')).toBe(true);
  expect(outcomes.join('\n')).not.toMatch(/internal error/);
}, 120_000);

test('removing a job\'s writable layer on disk while the user swaps a directory in it with a link to a host directory deletes nothing outside it', async () => {
  const uppers = join(site.root, 'uppers');
  mkdirSync(uppers);
  const config = join(site.root, 'strata-disk.yaml');
  writeFileSync(config, `${readFileSync(site.configPath, 'utf8')}upper:\n  backing: disk\n  disk_path: ${uppers}\n`);
  const env = { STRATA_CONFIG: config };
  for (let round = 0; round < 6; round++) {
    const job = `disk${round}`;
    const prolog = await site.run(['prolog', '--job', job, '--uid', String(USER), '--gid', String(USER), '--image', 'small:1'], { env });
    expect(prolog.code).toBe(0);
    const upper = join(uppers, job, 'u');
    // Many entries in the directory widen the window between looking at it and deleting in it.
    execFileSync('/usr/bin/setpriv', [`--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', '/bin/sh', '-c', `mkdir -p ${upper}/a && cd ${upper}/a && seq 1 2000 | xargs touch && ln -s ${hostDir} ${upper}/a-link`]);
    const racing = race(join(upper, 'a'), join(upper, 'a-link'), 1500);
    const epilog = await site.run(['epilog', '--job', job], { env });
    await racing.done;
    expect({ code: epilog.code, stderr: epilog.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    hostDirUntouched();
  }
}, 120_000);
