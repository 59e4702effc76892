// erofs layers on a kernel that cannot mount erofs from a file (before Linux 6.12, or without
// EROFS_FS_BACKED_BY_FILE): the mount executor is answered ENOTBLK and mounts the layer through a
// read-only loop device instead (helper/strata-mount.c do_loop). This machine's kernel mounts erofs
// from files, so the jobs here run with a test build of the executor that answers ENOTBLK
// (scripts/helper-build.mjs -DSTRATA_TEST_EROFS_ENOTBLK; the installed helper has no such switch).

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { importThreeLayerImage } from '../helpers/images.js';
import { jobsOn } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, layerMountsOf, loopsFor, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, REPO, type Site } from '../helpers/site.js';

let site: Site;
let before: NodeState;
let env: NodeJS.ProcessEnv;
const { prolog, epilog, inJob } = jobsOn(() => site);

/** The store's loop devices: `NAME RO AUTOCLEAR BACK-FILE` each. */
const storeLoops = () =>
  execFileSync('/usr/sbin/losetup', ['--list', '--noheadings', '--raw', '--output', 'NAME,RO,AUTOCLEAR,BACK-FILE'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(site.store));

beforeAll(async () => {
  before = nodeState();
  site = makeSite('erofs-loop');
  await importThreeLayerImage(site);
  const helper = join(site.root, 'strata-mount-enotblk');
  execFileSync(process.execPath, [join(REPO, 'scripts/helper-build.mjs'), helper, '-DSTRATA_TEST_EROFS_ENOTBLK'], { stdio: ['ignore', 'ignore', 'inherit'] });
  env = { STRATA_MOUNT_HELPER: helper };
}, 120_000);

afterEach(async () => {
  for (const job of ['1', '2']) await epilog(job, env);
  expectNodeStateUnchanged(before);
});

afterAll(() => site.remove());

test('the image is erofs by default, and without file-backed erofs its layers mount through read-only loop devices', async () => {
  const layers = JSON.parse((await site.run(['inspect', 'three:1'])).stdout).layers.map((layer: { format: string }) => layer.format);
  expect(layers).toEqual(['erofs', 'erofs', 'erofs']);
  expect(await prolog('1', 'three:1', [], env)).toMatchObject({ code: 0, stderr: '' });
  // Each layer: erofs on its own loop device, bound read-only with autoclear to the layer file.
  const mounts = layerMountsOf(site.runtime).map((line) => line.split(' '));
  expect(mounts).toHaveLength(3);
  for (const [, source, type] of mounts) expect({ source, type }).toEqual({ source: expect.stringMatching(/^\/dev\/loop\d+$/), type: 'erofs' });
  const loops = storeLoops().map((line) => line.split(' '));
  expect(loops.map(([name]) => name).sort()).toEqual(mounts.map(([, source]) => source).sort());
  for (const [, ro, autoclear, file] of loops) expect({ ro, autoclear, file }).toEqual({ ro: '1', autoclear: '1', file: expect.stringMatching(/\.erofs$/) });
  // The job sees the image's tree: the base, the whiteouts and opaque directory of the middle layer, the top.
  expect(inJob('1', 'ls /data; ls /opq; cat /etc/top-marker')).toMatchObject({ status: 0, stdout: 'keep.txt\nnew\ntop\n' });
  // A second job finds the layers on their loop devices and uses them: still one device per layer file.
  expect(await prolog('2', 'three:1', [], env)).toMatchObject({ code: 0, stderr: '' });
  expect(inJob('2', 'cat /etc/top-marker').stdout).toBe('top\n');
  expect(storeLoops()).toHaveLength(3);
  // The epilogs release the layers: no loop device and no mount is left.
  for (const job of ['1', '2']) expect((await epilog(job, env)).code).toBe(0);
  expect(loopsFor(site.store)).toEqual([]);
  expect(layerMountsOf(site.runtime)).toEqual([]);
});
