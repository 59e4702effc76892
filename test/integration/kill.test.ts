// The scheduler may SIGKILL the prolog at any instant (Slurm: 10 ms after SIGTERM). For every step
// of the prolog's plan, kill it right after journalling that step and right after carrying it
// out; then the epilog (or a re-run prolog, then the epilog) must leave the node as it was.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { importThreeLayerImage } from '../helpers/images.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, type Site } from '../helpers/site.js';

let site: Site;
let before: NodeState;
let stepCount = 0;
const prologArgs = (job: string) => ['prolog', '--job', job, '--uid', '1000', '--gid', '1000', '--image', 'three:1', '--mounts', '/tmp:/scratch'];

beforeAll(async () => {
  before = nodeState();
  site = makeSite('kill');
  await importThreeLayerImage(site);
  const dry = await site.run([...prologArgs('0'), '--dry-run']);
  stepCount = JSON.parse(dry.stdout).steps.length;
}, 120_000);

afterAll(() => site.remove());

const cleanNode = () => {
  expectNodeStateUnchanged(before);
  expect(readdirSync(join(site.runtime, 'jobs'))).toEqual([]);
  expect(existsSync(join(site.runtime, 'l')) ? readdirSync(join(site.runtime, 'l')) : []).toEqual([]);
};

test('the plan has the steps the kill test walks through', () => {
  // upper, rootfs dir, layers+overlay, mount points, 3 system binds, /scratch, entry (+ home, job dir)
  expect(stepCount).toBeGreaterThanOrEqual(9);
});

test('prolog killed after each step, then epilog: nothing left behind', async () => {
  for (let step = 1; step <= stepCount; step++) {
    for (const when of ['before', 'after']) {
      const job = `k${step}${when[0]}`;
      const killed = await site.run(prologArgs(job), { env: { STRATA_FAULT_KILL: `${step}:${when}` } });
      expect({ job, signal: killed.signal }).toEqual({ job, signal: 'SIGKILL' });
      const epilog = await site.run(['epilog', '--job', job]);
      expect({ job, code: epilog.code, stderr: epilog.stderr }).toEqual({ job, code: 0, stderr: '' });
      cleanNode();
    }
  }
}, 300_000);

test('prolog killed half-way and run again completes; the epilog then cleans up', async () => {
  const middle = Math.ceil(stepCount / 2);
  await site.run(prologArgs('again'), { env: { STRATA_FAULT_KILL: `${middle}:after` } });
  const rerun = await site.run(prologArgs('again'));
  expect(rerun.code).toBe(0);
  expect(existsSync(join(site.runtime, 'jobs/again/entry.json'))).toBe(true);
  expect((await site.run(['epilog', '--job', 'again'])).code).toBe(0);
  cleanNode();
}, 60_000);
