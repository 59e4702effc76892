// The store failing under a node: the store lives on its own small ext4 filesystem (a loop device
// this test attaches and detaches), which (1) goes away (lazily unmounted) while a job runs, and
// (2) returns I/O errors (the device is shrunk under the mounted filesystem, so reads of anything
// not cached fail with EIO). Each time: the running job is unaffected, a new prolog is a node
// fault with one clear line and leaves nothing behind, and once the store is back the next job works.

import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, expectCleanNode, expectNextJobWorks } from '../helpers/faults.js';
import { importThreeLayerImage } from '../helpers/images.js';
import { jobsOn } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, SQUASHFS_LAYERS, type Site } from '../helpers/site.js';

let site: Site;
let before: NodeState;
/** The machine with the store's own loop device bound: unmounted, and mounted. */
let unmounted: NodeState;
let mounted: NodeState;
let device = '';
let image = '';
let digest = '';
const sh = (file: string, args: string[]) => execFileSync(file, args, { encoding: 'utf8' }).trim();
const mountStore = () => sh('/usr/bin/mount', [device, site.store]);
const unmountStore = (lazy = false) => sh('/usr/bin/umount', lazy ? ['--lazy', site.store] : [site.store]);
const jobs = jobsOn(() => site);
const prolog = (job: string, extra: string[] = []) => jobs.prolog(job, 'three:1', extra);

/** A node fault: exit 1 and exactly one line on stderr, matching `pattern`. */
function expectNodeFault(result: { code: number | null; stderr: string }, pattern: RegExp) {
  expect({ code: result.code, lines: result.stderr.trim().split('\n').length, line: result.stderr.trim() }).toEqual({ code: 1, lines: 1, line: expect.stringMatching(pattern) });
}

beforeAll(async () => {
  before = nodeState();
  // Written for layers held by their loop devices while the store fails: squashfs layers.
  site = makeSite('store-faults', SQUASHFS_LAYERS);
  image = join(site.root, 'store.img');
  sh('/usr/bin/truncate', ['-s', '64M', image]);
  sh('/usr/sbin/mkfs.ext4', ['-q', '-F', image]);
  device = sh('/usr/sbin/losetup', ['--find', '--show', image]);
  mountStore();
  digest = await importThreeLayerImage(site);
  mounted = nodeState();
  unmountStore();
  unmounted = nodeState();
  copyFileSync(image, `${image}.good`);
}, 120_000);

afterAll(async () => {
  spawnSync('/usr/bin/umount', [site.store]);
  if (device) spawnSync('/usr/sbin/losetup', ['--detach', device]);
  site.remove();
  await eventually(() => nodeState().loops === before.loops);
  expectNodeStateUnchanged(before);
});

afterEach(() => {
  // Leave the store filesystem healthy and unmounted, and only our own loop device bound.
  spawnSync('/usr/bin/umount', [site.store]);
  copyFileSync(`${image}.good`, image);
  sh('/usr/sbin/losetup', ['--set-capacity', device]);
});

test('the store goes away while a job runs: the job keeps its image, new jobs are a node fault', async () => {
  mountStore();
  expect((await prolog('61')).code).toBe(0);
  unmountStore(true);
  // The running job still reads its layers (the loop devices hold the files).
  expect(jobs.inJob('61', 'cat /etc/top-marker').stdout).toBe('top\n');
  expectNodeFault(await prolog('62'), /^strata: prolog: job 62: image store .* (holds no layers|is not reachable).*shared filesystem is mounted/);
  expectNodeFault(await prolog('63', ['--image-digest', digest]), /^strata: prolog: job 63: image store .*shared filesystem is mounted/);
  expect((await jobs.epilog('61')).code).toBe(0);
  await expectCleanNode(site, unmounted);
  mountStore();
  await expectNextJobWorks(site, mounted, 'three:1');
}, 60_000);

test('the store returns I/O errors: a node fault naming the store, not a user error', async () => {
  // A cold mount, then the manifest and config read once (cached), then the device shrinks.
  mountStore();
  for (const blob of [digest, JSON.parse(readFileSync(join(site.store, 'blobs/sha256', digest.slice(7)), 'utf8')).config.digest]) {
    readFileSync(join(site.store, 'blobs/sha256', blob.slice(7)));
  }
  sh('/usr/bin/truncate', ['-s', '8M', image]);
  sh('/usr/sbin/losetup', ['--set-capacity', device]);
  // By tag: the tag cannot be read.
  expectNodeFault(await prolog('64'), /^strata: prolog: job 64: image store .* is not reachable: .*(EIO|i\/o error)/i);
  // Pinned, with manifest and config cached: the layer files cannot be read.
  expectNodeFault(await prolog('65', ['--image-digest', digest]), /^strata: prolog: job 65: (cannot read layer file .* from the image store: EIO|image store .* is not reachable)/);
  await expectCleanNode(site, mounted);
  unmountStore();
  copyFileSync(`${image}.good`, image);
  sh('/usr/sbin/losetup', ['--set-capacity', device]);
  mountStore();
  await expectNextJobWorks(site, mounted, 'three:1');
}, 60_000);
