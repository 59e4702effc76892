// The node running out of something: loop devices (simulated with the test-only ceiling
// STRATA_TEST_MAX_LOOPS, since the machine's real loop devices are shared), space in the runtime
// dir, space for an upper on node-local disk. Running out is a node fault (one line, exit 1) or,
// for the job's own upper, ENOSPC inside the job; nothing is left behind, and the next job works.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expectCleanNode, expectNextJobWorks } from '../helpers/faults.js';
import { jobsOn } from '../helpers/jobs.js';
import { importSmallImage, importThreeLayerImage } from '../helpers/images.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, SQUASHFS_LAYERS, type Site } from '../helpers/site.js';

let site: Site;
let before: NodeState;
/** upper.disk_path of this site: a small tmpfs during the disk test. */
const DISK = `/tmp/strata-limits-disk-${process.pid}`;
const jobs = jobsOn(() => site);
const prolog = (job: string, env: NodeJS.ProcessEnv = {}) => jobs.prolog(job, 'three:1', [], env);
const mountTmpfs = (dir: string, size: string) => {
  mkdirSync(dir, { recursive: true });
  execFileSync('/usr/bin/mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'strata-test', dir]);
};

function expectNodeFault(result: { code: number | null; stderr: string }, pattern: RegExp) {
  expect({ code: result.code, lines: result.stderr.trim().split('\n').length, line: result.stderr.trim() }).toEqual({ code: 1, lines: 1, line: expect.stringMatching(pattern) });
}

beforeAll(async () => {
  before = nodeState();
  // Loop devices run out only on the loop-device path: squashfs layers.
  site = makeSite('limits', `upper:\n  backing: disk\n  disk_path: ${DISK}\n${SQUASHFS_LAYERS}`);
  // The runtime dir on its own small tmpfs, so that it can be filled.
  mountTmpfs(site.runtime, '4M');
  await importThreeLayerImage(site);
  await importSmallImage(site, 'small:1');
}, 120_000);

afterAll(() => {
  spawnSync('/usr/bin/umount', [site.runtime]);
  site.remove();
  rmSync(DISK, { recursive: true, force: true });
  expectNodeStateUnchanged(before);
});

let withRuntime: NodeState;
beforeEach(() => {
  withRuntime = nodeState();
});

test('out of loop devices on the third layer: a node fault; the two layers mounted for it are released', async () => {
  expectNodeFault(await prolog('71', { STRATA_TEST_MAX_LOOPS: '2' }), /^strata: prolog: job 71: no loop device available for .*max_loop/);
  await expectCleanNode(site, withRuntime);
  expectNodeFault(await prolog('72', { STRATA_TEST_MAX_LOOPS: '0' }), /no loop device available/);
  await expectCleanNode(site, withRuntime);
  await expectNextJobWorks(site, withRuntime, 'three:1');
}, 60_000);

test('the runtime dir full: a node fault naming it; nothing left; the next job works once there is room', async () => {
  const filler = join(site.runtime, 'filler');
  spawnSync('/usr/bin/dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { encoding: 'utf8' });
  expectNodeFault(await prolog('73'), /^strata: prolog: job 73: no space left on a node-local filesystem \(.+\); free space/);
  rmSync(filler);
  await expectCleanNode(site, withRuntime);
  await expectNextJobWorks(site, withRuntime, 'three:1');
}, 60_000);

test('an upper on node-local disk that fills up: ENOSPC inside the job, the host and other jobs unaffected', async () => {
  const disk = DISK;
  mountTmpfs(disk, '2M');
  try {
    const beforeJob = nodeState();
    // The size it asks for is no cap on disk: the entry carries the line the plugin shows the job.
    expect((await jobs.prolog('74', 'small:1', ['--upper-size', '4G'])).code).toBe(0);
    expect(JSON.parse(readFileSync(join(jobs.jobDir('74'), 'entry.json'), 'utf8')).notice).toMatch(/^the writable space you asked for \(4G\) is not a limit on this node/);
    const fill = jobs.inJob('74', 'dd if=/dev/zero of=/big bs=64k 2>&1; echo more > /more');
    expect(fill.stdout).toMatch(/No space left on device/);
    expect((await site.run(['node', 'status'])).stdout).toMatch(/^74 +ready .* [12]\.\dMiB disk/m);
    expect((await jobs.epilog('74')).code).toBe(0);
    expect(execFileSync('/usr/bin/ls', ['-A', disk], { encoding: 'utf8' })).toBe('');
    expectNodeStateUnchanged(beforeJob);
  } finally {
    spawnSync('/usr/bin/umount', [disk]);
    rmSync(disk, { recursive: true, force: true });
  }
}, 60_000);
