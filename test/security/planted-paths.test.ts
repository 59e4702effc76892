// Hostile filesystem state at every path the prolog and epilog touch inside an image, generated
// rather than listed: the paths come from strata's own plan (`prolog --dry-run`: every bind target,
// the job's host files, a user mount, the home), and each gets every kind of thing an image or the
// job's user can put there — links out of the image (absolute, relative, through the parent), a
// link loop, a 4000-byte link, a FIFO, a device node, the wrong file type. For each case: the
// prolog exits 0 (never drains the node) with either a ready job or a one-line message, every mount
// it made is inside the job's own directory, the host's files the links point at are untouched,
// and the epilog leaves the node as it was. Then the same paths swapped while the job runs (the
// user owns the container's /), and the epilog must still unmount only the job's own mounts.

import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { jobsOn } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, makeTree, type Site } from '../helpers/site.js';
import { testUsers } from '../helpers/test-users.js';

const users = testUsers();
let site: Site;
let before: NodeState;
let user: { uid: number; gid: number };
let home: string;
let sentinel: string;
let source: string;
const jobs = jobsOn(() => site, { uid: 0 });
let prologAs: (job: string, image: string) => ReturnType<Site['run']>;

/** What the planted links point at on the host: must look the same after every case. */
function sentinelState(): string {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      const stat = lstatSync(path);
      const line = `${relative(sentinel, path)} ${stat.mode.toString(8)} ${stat.uid} ${stat.size} ${stat.mtimeMs}`;
      return stat.isDirectory() ? [line, ...walk(path)] : [line];
    });
  return [`. ${lstatSync(sentinel).mtimeMs}`, ...walk(sentinel)].join('\n');
}

const mountTargets = () =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ')[4].replace(/\\040/g, ' '));

/** The targets the prolog binds into the rootfs, from strata's own plan of a plain job. */
async function plannedTargets(image: string): Promise<{ target: string; isFile: boolean }[]> {
  const dry = await site.run(['prolog', '--job', 'plan', '--uid', String(user.uid), '--gid', String(user.gid), '--image', image, '--dry-run', '--mounts', `${source}:/data`]);
  if (dry.code !== 0) throw new Error(dry.stderr);
  const plan = JSON.parse(dry.stdout) as { steps: { op: string; target?: string; source?: string; optional?: boolean }[] };
  // Optional binds whose source this machine lacks are not made; the job's own files (its passwd,
  // group, hostname and /tmp) do not exist before a real prolog: files under /etc, else directories.
  return plan.steps
    .filter((step) => step.op === 'bind' && step.target && step.source && (!step.optional || existsSync(step.source)))
    .map((step) => ({ target: step.target!, isFile: existsSync(step.source!) ? !lstatSync(step.source!).isDirectory() : step.target!.startsWith('/etc/') }));
}

/** What can sit at a path the prolog binds onto; `kind` names it in failures. */
function plants(target: string, isFile: boolean): { kind: string; plant(tree: string): void }[] {
  const hostTarget = join(sentinel, isFile ? 'file' : 'dir');
  const at = (tree: string) => join(tree, target);
  const parentOf = (tree: string) => dirname(at(tree));
  const fresh = (tree: string) => {
    mkdirSync(parentOf(tree), { recursive: true });
    rmSync(at(tree), { recursive: true, force: true });
  };
  const cases = [
    { kind: 'absolute link out of the image', plant: (tree: string) => (fresh(tree), symlinkSync(hostTarget, at(tree))) },
    { kind: 'relative link climbing out', plant: (tree: string) => (fresh(tree), symlinkSync(`${'../'.repeat(target.split('/').length + 4)}${hostTarget.slice(1)}`, at(tree))) },
    { kind: 'link loop', plant: (tree: string) => (fresh(tree), symlinkSync(`./${target.split('/').pop()}`, at(tree))) },
    { kind: '4000-byte link', plant: (tree: string) => (fresh(tree), symlinkSync(`/${'x/'.repeat(2000)}`.slice(0, 4000), at(tree))) },
    { kind: 'FIFO', plant: (tree: string) => (fresh(tree), execFileSync('mkfifo', [at(tree)])) },
    { kind: 'device node', plant: (tree: string) => (fresh(tree), execFileSync('mknod', [at(tree), 'c', '1', '3'])) },
    { kind: isFile ? 'directory where a file goes' : 'file where a directory goes', plant: (tree: string) => (fresh(tree), isFile ? mkdirSync(at(tree)) : writeFileSync(at(tree), 'x\n')) },
  ];
  // The parent a link to the host (not for targets right under /, whose parent is the rootfs).
  if (dirname(target) !== '/') {
    cases.push({
      kind: 'parent directory a link out of the image',
      plant: (tree: string) => {
        rmSync(parentOf(tree), { recursive: true, force: true });
        mkdirSync(dirname(parentOf(tree)), { recursive: true });
        symlinkSync(join(sentinel, 'dir'), parentOf(tree));
      },
    });
  }
  return cases;
}

beforeAll(async () => {
  before = nodeState();
  site = makeSite('planted-paths');
  user = users.ensure('strata-planter');
  // A real home on the host, so that its bind is among the paths raced.
  home = execFileSync('/usr/bin/getent', ['passwd', 'strata-planter'], { encoding: 'utf8' }).split(':')[5];
  mkdirSync(home, { recursive: true, mode: 0o700 });
  chownSync(home, user.uid, user.gid);
  sentinel = join(site.root, 'host-files');
  mkdirSync(join(sentinel, 'dir'), { recursive: true });
  writeFileSync(join(sentinel, 'dir/keep'), 'host\n');
  writeFileSync(join(sentinel, 'file'), 'host\n');
  source = join(site.root, 'user-source');
  mkdirSync(source);
  chownSync(source, user.uid, user.gid);
  const uidArgs = ['--uid', String(user.uid), '--gid', String(user.gid)];
  prologAs = (job, image) => site.run(['prolog', '--job', job, ...uidArgs, '--image', image, '--mounts', `${source}:/data`]);
  const plain = await site.run(['import', `dir:${makeTree(join(site.root, 'plain'), { 'etc/os-release': 'ID=plain\n' }, false)}`, '--tag', 'plain:1']);
  if (plain.code !== 0) throw new Error(plain.stderr);
}, 120_000);

afterAll(() => {
  site?.remove();
  if (home) rmSync(home, { recursive: true, force: true });
  users.removeMade();
});

/** One planted case: prolog, its checks, epilog; returns what went wrong (empty: nothing). */
async function runCase(job: string, image: string, label: string): Promise<string[]> {
  const wrong: string[] = [];
  const mountsBefore = new Set(mountTargets());
  const sentinelBefore = sentinelState();
  const result = await prologAs(job, image);
  const error = jobs.errorOf(job);
  if (result.code !== 0) wrong.push(`${label}: prolog exited ${result.code} (drains the node): ${result.stderr.trim()}`);
  if (error && (error.trim().split('\n').length !== 1 || /internal error|this is a bug/.test(error))) wrong.push(`${label}: unclear error: ${error.trim()}`);
  if (!error && !existsSync(join(jobs.jobDir(job), 'entry.json'))) wrong.push(`${label}: neither ready nor an error`);
  const outside = mountTargets().filter((target) => !mountsBefore.has(target) && !target.startsWith(`${jobs.jobDir(job)}/`) && !target.startsWith(`${site.runtime}/l`));
  if (outside.length) wrong.push(`${label}: mounted outside the job: ${outside.join(' ')}`);
  const epilog = await jobs.epilog(job);
  if (epilog.code !== 0) wrong.push(`${label}: epilog exited ${epilog.code}: ${epilog.stderr.trim()}`);
  if (sentinelState() !== sentinelBefore) wrong.push(`${label}: the host files the links point at changed`);
  return wrong;
}

test('every path the prolog binds onto, with every kind of planted thing: the job fails or runs, the node and the host are untouched', async () => {
  const targets = await plannedTargets('plain:1');
  // The paths of a plain job: kernel filesystems, /tmp, the job's host files, a user mount, the home.
  expect(targets.map((t) => t.target)).toEqual(expect.arrayContaining(['/proc', '/sys', '/dev', '/tmp', '/etc/passwd', '/etc/hostname', '/data', home]));
  const cases = targets.flatMap(({ target, isFile }) => plants(target, isFile).map((plant) => ({ target, ...plant })));
  const wrong: string[] = [];
  let accepted = 0;
  for (const [index, { target, kind, plant }] of cases.entries()) {
    const tree = makeTree(join(site.root, 'trees', String(index)), { 'etc/os-release': 'ID=planted\n' }, false);
    plant(tree);
    const label = `${target} as a ${kind}`;
    const imported = await site.run(['import', `dir:${tree}`, '--tag', `planted:${index}`]);
    // An image a user cannot import is no attack on the node (the import refuses it in one line).
    if (imported.code !== 0) {
      if (imported.stderr.trim().split('\n').length !== 1) wrong.push(`${label}: import error not one line: ${imported.stderr}`);
      continue;
    }
    accepted += 1;
    wrong.push(...(await runCase(`p${index}`, `planted:${index}`, label)));
    await site.run(['rm', `planted:${index}`]);
  }
  expect(wrong).toEqual([]);
  expect(cases.length).toBeGreaterThan(80);
  // The import takes nearly all of them (it may refuse an image, which is no attack on the node).
  expect(accepted).toBeGreaterThan(cases.length * 0.9);
  expectNodeStateUnchanged(before);
}, 600_000);

test('the same paths swapped for links to the host while the job runs: the epilog unmounts only the job', async () => {
  const targets = (await plannedTargets('plain:1')).filter(({ target }) => target !== '/');
  const wrong: string[] = [];
  const swapped: string[] = [];
  for (const [index, { target }] of targets.entries()) {
    const job = `s${index}`;
    const ready = await prologAs(job, 'plain:1');
    expect({ target, code: ready.code, error: jobs.errorOf(job) }).toEqual({ target, code: 0, error: '' });
    const sentinelBefore = sentinelState();
    // What the job's user can do (they own the container's /): move the directory holding the
    // mount point away and put a link to the host in its place.
    const rootfs = jobs.rootfs(job);
    const top = join(rootfs, target.split('/')[1]);
    try {
      renameSync(top, `${top}.moved`);
      symlinkSync(join(sentinel, 'dir'), top);
      swapped.push(target);
    } catch (error) {
      // A mount point itself cannot be moved (EBUSY), nor can a directory of the image's layers
      // (overlayfs: EXDEV), by the user or anyone.
      if (!['EBUSY', 'EXDEV'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
    }
    const epilog = await jobs.epilog(job);
    if (epilog.code !== 0) wrong.push(`${target}: epilog exited ${epilog.code}: ${epilog.stderr.trim()}`);
    if (existsSync(jobs.jobDir(job))) wrong.push(`${target}: the job's directory is left`);
    if (sentinelState() !== sentinelBefore) wrong.push(`${target}: the host files behind the link changed`);
    expectNodeStateUnchanged(before);
  }
  expect(wrong).toEqual([]);
  // The directories strata made as mount points in the job's own layer can be swapped: the home's.
  expect(swapped).toContain(home);
}, 300_000);
