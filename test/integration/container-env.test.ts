// What a job finds in its container besides the image, on real mounts: its user's passwd and
// group entries merged with the image's, the node's host files, its own /tmp; and that an image
// planting links or FIFOs at /etc/passwd or /etc/group never makes root read a host file or hang.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { jobsOn } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, makeTree, type Site } from '../helpers/site.js';
import { testUsers } from '../helpers/test-users.js';

// An ordinary local account, made here if the machine lacks it; its entries come from the node's NSS.
const users = testUsers();
const { uid: USER, gid: GROUP } = users.ensure('strata-alice');
const IMAGE_PASSWD = 'root:x:0:0:image root:/root:/bin/sh\nstrata-alice:x:4242:4242:impostor:/home/x:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n';
const IMAGE_GROUP = 'root:x:0:\nvideo:x:44:\n';

let site: Site;
let before: NodeState;
// inJob: a command in the job's rootfs as the job's user, as the task entry would run it.
const { jobDir, rootfs, inJob, prolog, epilog, epilogAll, errorOf } = jobsOn(() => site, { uid: USER, gid: GROUP, chrootAsUser: true });

async function importTree(tag: string, files: Record<string, string>, adjust: (tree: string) => void = () => undefined, into = site) {
  const tree = makeTree(join(into.root, `tree-${tag.replace(/\W/g, '_')}`), files);
  for (const applet of ['id', 'whoami', 'grep', 'mount', 'mkfifo', 'hostname', 'wc']) spawnSync('ln', ['-sf', 'busybox', join(tree, 'bin', applet)]);
  adjust(tree);
  const imported = await into.run(['import', `dir:${tree}`, '--tag', tag]);
  if (imported.code !== 0) throw new Error(imported.stderr);
}

beforeAll(async () => {
  before = nodeState();
  site = makeSite('container-env', 'container:\n  tmp_size: 8M\n');
  await importTree('plain:1', { 'etc/passwd': IMAGE_PASSWD, 'etc/group': IMAGE_GROUP });
  await importTree('bare:1', {}, (tree) => spawnSync('rm', ['-rf', join(tree, 'etc')]));
  // Root-only host files in passwd and group format: what a root process following the image's
  // links on the host would merge into the job's files.
  writeFileSync(join(site.root, 'secret-passwd'), 'secret:x:777:777::/:/bin/sh\n', { mode: 0o600 });
  writeFileSync(join(site.root, 'secret-group'), 'secretgroup:x:777:\n', { mode: 0o600 });
  // /etc/passwd: an absolute link to the host file; /etc/group: a FIFO (an open for reading would
  // block forever without O_NONBLOCK); in the second image, a relative link climbing out.
  await importTree('planted:1', {}, (tree) => {
    symlinkSync(join(site.root, 'secret-passwd'), join(tree, 'etc/passwd'));
    execFileSync('mkfifo', [join(tree, 'etc/group')]);
  });
  await importTree('dirhosts:1', { 'etc/hosts/keep': '' });
  await importTree('climbing:1', {}, (tree) => {
    symlinkSync(`${'../'.repeat(20)}${site.root.slice(1)}/secret-group`, join(tree, 'etc/group'));
  });
}, 120_000);

afterEach(async () => {
  for (const epilogged of await epilogAll()) expect(epilogged.code).toBe(0);
  expectNodeStateUnchanged(before);
});

afterAll(() => {
  site.remove();
  users.removeMade();
});

test("the job's user is known inside, by the node's entry; the image's other entries stay", async () => {
  expect((await prolog('1', 'plain:1')).code).toBe(0);
  const who = inJob('1', 'whoami; id -un; id -gn; grep -c . /etc/passwd; grep "^daemon:" /etc/passwd; grep "^video:" /etc/group; grep -c "^strata-alice:" /etc/passwd');
  expect(who.stderr).toBe('');
  const group = execFileSync('id', ['-gn', 'strata-alice'], { encoding: 'utf8' }).trim();
  // The image's impostor line for the same name is replaced by the node's; root stays the image's.
  expect(who.stdout).toBe(`strata-alice\nstrata-alice\n${group}\n4\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nvideo:x:44:\n1\n`);
  const passwd = inJob('1', 'cat /etc/passwd').stdout;
  expect(passwd).toContain(execFileSync('getent', ['passwd', String(USER)], { encoding: 'utf8' }));
  expect(passwd).toMatch(/^root:x:0:0:image root:/);
  expect(passwd).toMatch(/^nobody:x:65534:/m);
  // Read-only, and the image's own file below is unchanged.
  expect(inJob('1', 'echo x >> /etc/passwd').status).not.toBe(0);
  expect(spawnSync('/usr/sbin/chroot', [rootfs('1'), '/bin/sh', '-c', 'echo x >> /etc/passwd']).status).not.toBe(0);
});

test("a user in supplementary groups finds them in the job's /etc/group, as the node's name service has them", async () => {
  // A user of this test only, in two groups besides its own (one of them with another member).
  const names = { user: 'strata-grp-user', groups: ['strata-grp-a', 'strata-grp-b'], own: 'strata-grp-user' };
  for (const group of names.groups) spawnSync('/usr/sbin/groupadd', [group]);
  spawnSync('/usr/sbin/useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', '--groups', names.groups.join(','), names.user]);
  execFileSync('/usr/sbin/usermod', ['--append', '--groups', 'strata-grp-b', 'strata-alice']);
  try {
    const uid = Number(execFileSync('id', ['-u', names.user], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', names.user], { encoding: 'utf8' }).trim());
    const grouped = jobsOn(() => site, { uid, gid, chrootAsUser: true });
    expect((await grouped.prolog('10', 'plain:1')).code).toBe(0);
    const group = grouped.inJob('10', 'cat /etc/group').stdout.split('\n');
    // Names and gids as the node has them; the job's user is the only member listed (the node's
    // other members, strata-alice here, are nobody's business inside).
    const gidOf = (name: string) => execFileSync('getent', ['group', name], { encoding: 'utf8' }).split(':')[2];
    expect(group).toContain(`${names.own}:x:${gidOf(names.own)}:`);
    for (const name of names.groups) expect(group).toContain(`${name}:x:${gidOf(name)}:${names.user}`);
    expect(group.join('\n')).not.toContain('strata-alice');
    expect(grouped.inJob('10', 'whoami').stdout).toBe(`${names.user}\n`);
    // A mount source only a supplementary group may read is opened with the user's groups (the
    // list the job's lookup found, not one lookup per mount); a group the user is not in is refused.
    const shared = makeTree(join(site.root, 'grp-a-data'), { 'notes.txt': 'for group a\n' });
    const other = makeTree(join(site.root, 'grp-other-data'), { 'notes.txt': 'not for you\n' });
    execFileSync('chown', ['-R', `root:${names.groups[0]}`, shared]);
    execFileSync('chown', ['-R', 'root:root', other]);
    for (const dir of [shared, other]) execFileSync('chmod', ['0750', dir]);
    expect((await grouped.prolog('11', 'plain:1', ['--mounts', `${shared}:/data`])).code).toBe(0);
    expect(readFileSync(join(rootfs('11'), 'data/notes.txt'), 'utf8')).toBe('for group a\n');
    expect((await grouped.prolog('12', 'plain:1', ['--mounts', `${other}:/data`])).code).toBe(0);
    expect(errorOf('12')).toContain(`you (uid ${uid}) cannot read ${other}`);
  } finally {
    for (const job of ['11', '12']) expect((await epilog(job)).code).toBe(0);
    expect((await epilog('10')).code).toBe(0);
    spawnSync('/usr/sbin/gpasswd', ['--delete', 'strata-alice', 'strata-grp-b']);
    spawnSync('/usr/sbin/userdel', [names.user]);
    for (const group of names.groups) spawnSync('/usr/sbin/groupdel', [group]);
  }
});

test('an image without /etc gets one with root, nobody, the user and the node files', async () => {
  expect((await prolog('2', 'bare:1')).code).toBe(0);
  const out = inJob('2', 'whoami; grep -c "^root:x:0:" /etc/passwd; grep -c "^nogroup:x:65534:" /etc/group; cat /etc/hostname');
  expect(out.stdout).toBe(`strata-alice\n1\n1\n${hostname()}\n`);
  expect(inJob('2', 'cat /etc/hosts').stdout).toBe(readFileSync('/etc/hosts', 'utf8'));
  if (existsSync('/etc/resolv.conf')) expect(inJob('2', 'cat /etc/resolv.conf').stdout).toBe(readFileSync('/etc/resolv.conf', 'utf8'));
});

test('a link or FIFO planted at /etc/passwd and /etc/group: no host file read, no hang', async () => {
  const started = Date.now();
  const result = await prolog('3', 'planted:1');
  expect(result.code).toBe(0);
  expect(errorOf('3')).toBe('');
  expect(Date.now() - started).toBeLessThan(20_000);
  const passwd = inJob('3', 'cat /etc/passwd').stdout;
  // Only what strata generates: root, the user, nobody; nothing of the host's shadow file.
  expect(passwd.split('\n').filter(Boolean).map((line) => line.split(':')[0])).toEqual(['root', 'strata-alice', 'nobody']);
  expect(inJob('3', 'whoami').stdout).toBe('strata-alice\n');
  expect((await prolog('8', 'climbing:1')).code).toBe(0);
  expect(inJob('8', 'cat /etc/group').stdout).not.toContain('secret');
});

test("an image whose /etc/hosts is a directory fails the job with a line naming it, never the node", async () => {
  const result = await prolog('9', 'dirhosts:1');
  expect(result.code).toBe(0);
  expect(errorOf('9')).toBe("strata: the image's /etc/hosts is a directory, so strata cannot mount the job's /etc/hosts there; fix the image (or mount your own file there with --container-mounts)\n");
});

test('/tmp is per job, sized by the site, writable under --readonly, and gone afterwards', async () => {
  expect((await prolog('4', 'plain:1', ['--readonly'])).code).toBe(0);
  expect(inJob('4', 'touch /newfile').status).not.toBe(0);
  expect(inJob('4', 'echo hi > /tmp/x && cat /tmp/x').stdout).toBe('hi\n');
  const tmp = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((line) => line.split(' ')[4] === join(rootfs('4'), 'tmp'));
  expect(tmp).toMatch(/ - tmpfs strata-tmp rw,.*size=8192k/);
  // Filling it hits its own cap, not the writable layer's.
  expect(inJob('4', 'dd if=/dev/zero of=/tmp/big bs=1M count=20 2>&1').status).not.toBe(0);
  // The job's /tmp is not reachable by other users on the host.
  expect(spawnSync('/usr/sbin/chroot', ['--userspec=65534:65534', '/', '/bin/ls', join(jobDir('4'), 'tmp', 't')]).status).not.toBe(0);
  // A second job does not see the first's files.
  expect((await prolog('5', 'plain:1')).code).toBe(0);
  expect(inJob('5', 'ls /tmp').stdout).toBe('');
  expect((await epilog('4')).code).toBe(0);
  expect(existsSync(jobDir('4'))).toBe(false);
});

test('a site can turn the host files off; a user mount replaces one', async () => {
  const off = makeSite('container-env-off', 'container:\n  hosts: false\n  hostname: false\n');
  await importTree('plain:1', { 'etc/passwd': IMAGE_PASSWD }, undefined, off);
  const offJobs = jobsOn(() => off, { uid: USER, gid: GROUP, chrootAsUser: true });
  try {
    expect((await offJobs.prolog('6', 'plain:1')).code).toBe(0);
    expect(offJobs.inJob('6', 'cat /etc/hosts; cat /etc/hostname').status).not.toBe(0);
    expect(offJobs.inJob('6', 'whoami').stdout).toBe('strata-alice\n');
  } finally {
    expect((await offJobs.epilog('6')).code).toBe(0);
    off.remove();
  }
  const mine = join(site.root, 'my-hosts');
  execFileSync('sh', ['-c', `echo '10.0.0.1 mine' > ${mine} && chown ${USER} ${mine}`]);
  try {
    expect((await prolog('7', 'plain:1', ['--mounts', `${mine}:/etc/hosts:ro`])).code).toBe(0);
    expect(inJob('7', 'cat /etc/hosts').stdout).toBe('10.0.0.1 mine\n');
  } finally {
    unlinkSync(mine);
  }
});
