// The mount executor (helper/strata-mount): a job start touches the shared store only a few times
// per layer (what a site's metadata servers notice), and the helper and the util-linux fallback
// set up exactly the same mounts.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importThreeLayerImage } from '../helpers/images.js';
import { expectNodeStateUnchanged, loopsFor, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, STRATA, type Site } from '../helpers/site.js';
import { storeOperations } from '../../bench/strace-count.mjs';

let site: Site;
let before: NodeState;
const prolog = (job: string, env: NodeJS.ProcessEnv = {}) => site.run(['prolog', '--job', job, '--uid', '1000', '--gid', '1000', '--image', 'three:1'], { env });
const epilog = (job: string, env: NodeJS.ProcessEnv = {}) => site.run(['epilog', '--job', job], { env });

beforeAll(async () => {
  before = nodeState();
  site = makeSite('executor');
  await importThreeLayerImage(site);
}, 120_000);

afterEach(async () => {
  for (const job of ['1', '2', '3']) await epilog(job);
  expectNodeStateUnchanged(before);
});

afterAll(() => site.remove());

test('a job start makes at most 3 metadata operations per layer on the store, plus a few for the image', () => {
  const trace = join(site.root, 'strace.txt');
  const traced = spawnSync('/usr/bin/strace', ['-f', '-qq', '-e', 'trace=%file', '-o', trace, process.execPath, STRATA, 'prolog', '--job', '1', '--uid', '1000', '--gid', '1000', '--image', 'three:1'], { env: site.env, encoding: 'utf8' });
  expect(traced.status).toBe(0);
  expect(loopsFor(site.store)).toHaveLength(3);
  const operations = storeOperations(readFileSync(trace, 'utf8'), site.store);
  expect(operations.length).toBeGreaterThan(0);
  // Per layer: its file (and, once per job, the layer directory); per image: tag, manifest, config.
  const onLayers = operations.filter((operation) => operation.includes(`${site.store}/layers/`));
  expect(onLayers.length).toBeLessThanOrEqual(3 * 3);
  expect(operations.length - onLayers.length).toBeLessThanOrEqual(4);
});

test('the helper and the util-linux fallback give the same mounts, and each tears down the other', async () => {
  const jobMounts = (job: string) =>
    readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((line) => line.includes(join(site.runtime, 'jobs', job)) || line.includes(`${site.runtime}/l/`))
      // mount ids, parents and device numbers differ; paths, options and sources must not.
      .map((line) => line.split(' ').slice(4).join(' ').replaceAll(`/jobs/${job}/`, '/jobs/N/').replace(/\/dev\/loop\d+/, '/dev/loopN'));
  expect((await prolog('2')).code).toBe(0);
  const withHelper = jobMounts('2');
  expect((await epilog('2', { STRATA_MOUNT_HELPER: 'none' })).code).toBe(0);
  expect(loopsFor(site.store)).toHaveLength(0);
  expect((await prolog('3', { STRATA_MOUNT_HELPER: 'none' })).code).toBe(0);
  expect(jobMounts('3')).toEqual(withHelper);
  expect(withHelper.length).toBeGreaterThan(5);
  expect((await epilog('3')).code).toBe(0);
  expect(loopsFor(site.store)).toHaveLength(0);
});
