// Race tests of the plugin's PMIx binds (spank/pmix.c): the task, as root, binds Slurm's step
// directory at its host path inside the job's rootfs, making the mount points in the job's /tmp,
// which the job's user controls. An ordinary user swaps (renameat2 RENAME_EXCHANGE) a directory on
// that path with links leading out of the rootfs, by absolute path and by "..", while the bind is
// made hundreds of times (spank/test_pmix_bind.c, each attempt in a mount namespace of its own as
// a task is). Nothing may ever be mounted or created outside the rootfs. And under a read-only
// rootfs, the mount point is made in the job's layer while the task still sees it read-only.

import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { REPO } from '../helpers/site.js';

const USER = 1000;
const ATTEMPTS = 300;
const RACE_MS = 4000;

let before: NodeState;
let base: string;
let rootfs: string;
let jobTmp: string;
let hostDir: string;
let driver: string;
let racer: string;

/** Bind the host directory `path` at `path` in the rootfs `attempts` times, as the user's task. */
const run = (path: string, attempts: number) => {
  const [ok, refused, escaped, writable] = /ok (\d+) refused (\d+) escaped (\d+) writable (\d+)/
    .exec(execFileSync(driver, [rootfs, jobTmp, path, String(USER), String(USER), String(attempts)], { encoding: 'utf8' }))!
    .slice(1)
    .map(Number);
  return { ok, refused, escaped, writable };
};

const hostDirUntouched = () => {
  expect(readdirSync(hostDir)).toEqual(['marker']);
  expect(execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).split('\n').filter((target) => target.startsWith(hostDir))).toEqual([]);
};

beforeAll(() => {
  before = nodeState();
  execFileSync('make', ['-s', '-C', join(REPO, 'spank'), 'test_pmix_bind']);
  driver = join(REPO, 'spank/test_pmix_bind');
  base = mkdtempSync('/tmp/strata-pmixrace-');
  chmodSync(base, 0o755);
  racer = join(base, 'racer');
  execFileSync('cc', ['-O2', '-o', racer, join(REPO, 'test/security/racer.c')]);
  hostDir = join(base, 'host');
  mkdirSync(hostDir);
  writeFileSync(join(hostDir, 'marker'), 'root\n');
  // The job's rootfs (a tmpfs standing in for the overlay) with the job's own /tmp mounted on it.
  rootfs = join(base, 'rootfs');
  mkdirSync(rootfs);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=755', 'pmixrace', rootfs]);
  execFileSync('mount', ['--make-private', rootfs]);
  jobTmp = join(rootfs, 'tmp');
  mkdirSync(jobTmp);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=1777', 'pmixracetmp', jobTmp]);
});

afterAll(() => {
  execFileSync('umount', [jobTmp]);
  execFileSync('umount', [rootfs]);
  rmSync(base, { recursive: true, force: true });
  expectNodeStateUnchanged(before);
});

test('a user swapping a directory of the step directory\'s path in the job\'s /tmp with links out never gets root to mount or create outside the rootfs', () => {
  // Slurm's step directory on the host (its SlurmdSpoolDir is under /tmp here, as in the test
  // cluster), readable by the job's user; inside, its path lies in the job's /tmp.
  const step = join(base, 'spool', 'pmix.7.0');
  mkdirSync(step, { recursive: true });
  chownSync(step, USER, USER);
  const inside = join(jobTmp, base.slice('/tmp/'.length));
  mkdirSync(join(inside, 'spool'), { recursive: true });
  execFileSync('chown', ['-R', `${USER}:${USER}`, join(jobTmp, base.slice('/tmp/'.length).split('/')[0])]);
  const links = { abs: hostDir, rel: `../../../../../../../..${hostDir}` };
  for (const [name, target] of Object.entries(links)) {
    const link = join(inside, `spool-${name}`);
    symlinkSync(target, link);
    execFileSync('chown', ['-h', `${USER}:${USER}`, link]);
    const racing = execFileSync('sh', ['-c', `setpriv --reuid=${USER} --regid=${USER} --clear-groups ${racer} ${join(inside, 'spool')} ${link} ${RACE_MS} >${base}/swaps & echo $!`], { encoding: 'utf8' });
    const result = run(step, ATTEMPTS / 2);
    execFileSync('sh', ['-c', `while kill -0 ${racing.trim()} 2>/dev/null; do sleep 0.1; done`]);
    expect({ link: name, escaped: result.escaped, writable: result.writable }).toEqual({ link: name, escaped: 0, writable: 0 });
    expect(result.ok).toBeGreaterThan(0);
    expect(Number(readFileSync(join(base, 'swaps'), 'utf8'))).toBeGreaterThan(ATTEMPTS);
    hostDirUntouched();
  }
}, 60_000);

test('a read-only rootfs: the mount point is made in the job\'s layer, the task still sees a read-only container, the node keeps no mount', () => {
  // A step directory outside /tmp: its mount point must be made on the rootfs mount itself.
  const runBase = mkdtempSync('/run/strata-pmixrace-');
  chmodSync(runBase, 0o755);
  try {
    const step = join(runBase, 'spool', 'pmix.8.0');
    mkdirSync(step, { recursive: true });
    chownSync(step, USER, USER);
    execFileSync('mount', ['-o', 'remount,bind,ro', rootfs]);
    try {
      expect(run(step, 3)).toEqual({ ok: 3, refused: 0, escaped: 0, writable: 0 });
    } finally {
      execFileSync('mount', ['-o', 'remount,bind,rw', rootfs]);
    }
    expect(existsSync(join(rootfs, step))).toBe(true);
    expect(execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).split('\n').filter((target) => target.includes('pmix.8.0'))).toEqual([]);
  } finally {
    rmSync(runBase, { recursive: true, force: true });
  }
});
