// Hostile filesystem state at job start: what a user (their mount sources) or an image (its tree)
// puts where the prolog looks. Every such case fails only the job, with a one-line message in the
// job's error file; the prolog exits 0 (a non-zero prolog drains the node in Slurm) and the epilog
// leaves the node as it was. Also: a bind never relaxes the source's own mount flags.

import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jobsOn } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, makeTree, type Site } from '../helpers/site.js';

const USER = 1000;
let site: Site;
let before: NodeState;
let own: string;
const jobs = jobsOn(() => site, { uid: USER });
const { errorOf } = jobs;
const prolog = (job: string, extra: string[]) => jobs.prolog(job, 'hostile:1', extra);
const mountOptionsAt = (path: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[4] === path)
    .map((fields) => fields[5].split(','))
    .pop();

beforeAll(async () => {
  before = nodeState();
  site = makeSite('hostile-state');
  // An image with a directory, a file and a device node where users like to mount things.
  const tree = makeTree(join(site.root, 'tree'), { 'work/.keep': '', 'opt/tool.conf': 'x\n' });
  execFileSync('mknod', [join(tree, 'opt/devnode'), 'c', '1', '3']);
  const imported = await site.run(['import', `dir:${tree}`, '--tag', 'hostile:1']);
  if (imported.code !== 0) throw new Error(imported.stderr);
  own = join(site.root, 'own');
  mkdirSync(own);
  writeFileSync(join(site.root, 'own-file'), 'mine\n');
  chownSync(own, USER, USER);
  chownSync(join(site.root, 'own-file'), USER, USER);
}, 120_000);

afterEach(async () => {
  for (const epilogged of await jobs.epilogAll()) expect(epilogged.code).toBe(0);
  expectNodeStateUnchanged(before);
});

afterAll(() => site.remove());

test('mount sources and targets a user or an image made hostile fail the job, never the node', async () => {
  symlinkSync('loop-b', join(site.root, 'loop-a'));
  symlinkSync('loop-a', join(site.root, 'loop-b'));
  const long = `${own}/${'d'.repeat(250)}/`.repeat(20);
  const cases: [string, RegExp][] = [
    [`${site.root}/loop-a:/data`, /symbolic link loop/],
    [`${long}x:/data`, /too long|does not exist/],
    [`${site.root}/own-file:/work`, /a file onto a directory/],
    [`${own}:/opt/tool.conf`, /not a directory/],
    [`${own}:/opt/devnode`, /not a directory/],
    [`${own}:/opt/tool.conf/sub`, /not a directory/],
  ];
  for (const [index, [spec, pattern]] of cases.entries()) {
    const job = `h${index}`;
    const result = await prolog(job, ['--mounts', spec]);
    const error = errorOf(job);
    expect({ spec, code: result.code }).toEqual({ spec, code: 0 });
    expect({ spec, error }).toEqual({ spec, error: expect.stringMatching(pattern) });
    expect(error.trim().split('\n')).toHaveLength(1);
    expect(error).not.toMatch(/internal error|this is a bug/);
  }
}, 120_000);

test('a user mount at /home (over the automatic home bind) works or fails the job with a clear message', async () => {
  const result = await prolog('home', ['--mounts', `${own}:/home`]);
  expect(result.code).toBe(0);
  expect(errorOf('home')).not.toMatch(/internal error|this is a bug/);
});

test('a read-only or noexec source stays so in the container, even when asked rw', async () => {
  const readonly = join(site.root, 'ro-src');
  const noexec = join(site.root, 'noexec-src');
  for (const dir of [readonly, noexec]) {
    mkdirSync(dir);
    chownSync(dir, USER, USER);
  }
  execFileSync('mount', ['--bind', readonly, readonly]);
  execFileSync('mount', ['-o', 'remount,bind,ro', readonly]);
  execFileSync('mount', ['--bind', noexec, noexec]);
  execFileSync('mount', ['-o', 'remount,bind,noexec', noexec]);
  try {
    const result = await prolog('flags', ['--mounts', `${readonly}:/ro:rw,${noexec}:/nx`]);
    expect(result.code).toBe(0);
    expect(errorOf('flags')).toBe('');
    const rootfs = jobs.rootfs('flags');
    expect(mountOptionsAt(join(rootfs, 'ro'))).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
    expect(mountOptionsAt(join(rootfs, 'nx'))).toEqual(expect.arrayContaining(['rw', 'noexec', 'nosuid', 'nodev']));
    // /sys is read-only in every container.
    expect(mountOptionsAt(join(rootfs, 'sys'))).toContain('ro');
    expect((await jobs.epilog('flags')).code).toBe(0);
  } finally {
    execFileSync('umount', [readonly]);
    execFileSync('umount', [noexec]);
  }
});

test('bad request values from the command line are one-line errors, never a stack trace', async () => {
  const uid = await site.run(['prolog', '--job', 'u1', '--uid', '4294967296', '--gid', '0', '--image', 'hostile:1']);
  expect(uid.stderr).toMatch(/uid/);
  expect(uid.stderr).not.toMatch(/internal error|\n\s+at /);
  const workdir = await prolog('w1', ['--workdir', 'relative/dir']);
  expect(workdir.code).toBe(0);
  expect(errorOf('w1') || workdir.stderr).toMatch(/workdir.*absolute|absolute.*workdir/i);
  const size = await prolog('s1', ['--upper-size', '0.0001K']);
  expect(size.code).toBe(0);
  expect(errorOf('s1') || size.stderr).toMatch(/E_UPPER_SIZE|writable space|--container-upper-size/);
});
