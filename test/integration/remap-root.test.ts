// --container-remap-root on real layer mounts and overlays: the job's overlay stacks idmapped
// clones of the layer mounts, so the image's root-owned files are the job user's on the host and
// root's in the task's user namespace (0 → the user): such a process can change /usr and /etc in
// the writable layer, and what it writes belongs to the user on the host. Jobs without it keep the
// shared layer mounts as they are.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { importSmallImage } from '../helpers/images.js';
import { jobsOn } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, layerMountsOf, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, type Site } from '../helpers/site.js';

const USER = 1000;
let site: Site;
let before: NodeState;
const { jobDir, rootfs, prolog, epilog, epilogAll } = jobsOn(() => site);

/** A script run the way the SPANK plugin runs a remapped task: as the user, in a namespace mapping 0 to them, chrooted. */
const asRemappedRoot = (job: string, script: string) =>
  spawnSync('/usr/bin/setpriv', [`--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', '/usr/bin/unshare', '--map-root-user', '/usr/sbin/chroot', rootfs(job), '/bin/sh', '-c', script], { encoding: 'utf8' });

const owner = (path: string) => {
  const stat = statSync(path);
  return `${stat.uid}:${stat.gid}`;
};
const overlayLine = (job: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((line) => line.split(' ')[4] === rootfs(job));

const idmappedMounts = () =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(site.runtime) && / idmapped[ ,]|,idmapped/.test(line));

beforeAll(async () => {
  before = nodeState();
  site = makeSite('remaproot');
  await importSmallImage(site, 'apt:1', { 'etc/apt/apt.conf.d/00image': 'APT::Install-Recommends "false";\n', 'usr/bin/tool': 'tool 1\n', 'var/lib/dpkg/status': '' });
}, 120_000);

afterEach(async () => {
  await epilogAll();
  expectNodeStateUnchanged(before);
});

afterAll(() => site.remove());

test('a remapped root changes /usr and /etc in the writable layer; the files are the job user\'s on the host', async () => {
  expect((await prolog('1', 'apt:1', ['--remap-root'])).code).toBe(0);
  // The image's root-owned files show as the user's (uid 0 inside the namespace).
  expect(owner(join(rootfs('1'), 'usr/bin/tool'))).toBe(`${USER}:${USER}`);
  const script = 'id -u; echo "tool 2" > /usr/bin/tool; echo new > /usr/bin/added; echo x >> /etc/image-name; mkdir /var/lib/dpkg/updates; ls -ln /usr/bin/tool | { read m l u g r; echo "$u $g"; }; cat /usr/bin/tool';
  expect(asRemappedRoot('1', script)).toMatchObject({ status: 0, stdout: '0\n0 0\ntool 2\n', stderr: '' });
  const upper = join(jobDir('1'), 'upper/u');
  for (const path of ['usr/bin/tool', 'usr/bin/added', 'etc/image-name', 'var/lib/dpkg/updates', 'usr/bin', 'etc']) expect([path, owner(join(upper, path))]).toEqual([path, `${USER}:${USER}`]);
  // apt keeps to root instead of dropping to _apt, which a one-uid namespace cannot become.
  expect(readFileSync(join(upper, 'etc/apt/apt.conf.d/99strata-remap-root'), 'utf8')).toBe('APT::Sandbox::User "root";\n');
  expect(owner(join(upper, 'etc/apt/apt.conf.d/99strata-remap-root'))).toBe(`${USER}:${USER}`);
  // The overlay stacks the job's own idmapped clones; the layer mounts stay one per layer file.
  expect(overlayLine('1')).toContain(`upperdir=${upper}`);
  expect(idmappedMounts()).toHaveLength(1);
  expect(layerMountsOf(site.runtime)).toHaveLength(1);
  expect((await epilog('1')).code).toBe(0);
  expect((await epilog('1')).code).toBe(0);
});

test('without remap-root nothing changes: the image\'s files stay root\'s, no idmapped mount, no apt file', async () => {
  expect((await prolog('2', 'apt:1')).code).toBe(0);
  expect(owner(join(rootfs('2'), 'usr/bin/tool'))).toBe('0:0');
  expect(idmappedMounts()).toEqual([]);
  expect(existsSync(join(jobDir('2'), 'upper/u/etc/apt'))).toBe(false);
  // As today: the namespace's root sees the image's files as nobody's and cannot change them.
  expect(asRemappedRoot('2', 'echo x > /usr/bin/tool').status).not.toBe(0);
});

test('a remap job and a plain job on one image share the layer\'s mount; each epilog leaves the other intact', async () => {
  expect((await prolog('3', 'apt:1', ['--remap-root'])).code).toBe(0);
  expect((await prolog('4', 'apt:1')).code).toBe(0);
  expect(layerMountsOf(site.runtime)).toHaveLength(1);
  expect((await epilog('3')).code).toBe(0);
  expect(owner(join(rootfs('4'), 'usr/bin/tool'))).toBe('0:0');
  expect(readFileSync(join(rootfs('4'), 'usr/bin/tool'), 'utf8')).toBe('tool 1\n');
  expect((await epilog('4')).code).toBe(0);
  expect(layerMountsOf(site.runtime)).toHaveLength(0);
});
