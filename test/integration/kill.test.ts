// The scheduler may SIGKILL the prolog at any instant (Slurm: 10 ms after SIGTERM). For every step
// of the prolog's plan, kill it right after journalling that step and right after carrying it
// out; then the epilog (or a re-run prolog, then the epilog) must leave the node as it was.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { importThreeLayerImage } from '../helpers/images.js';
import { jobsOn } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, type Site } from '../helpers/site.js';

let site: Site;
let before: NodeState;
let stepCount = 0;
const jobs = jobsOn(() => site);
const prolog = (job: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) => jobs.prolog(job, 'three:1', ['--mounts', '/tmp:/scratch', ...extra], env);

beforeAll(async () => {
  before = nodeState();
  site = makeSite('kill');
  await importThreeLayerImage(site);
  const dry = await prolog('0', ['--dry-run']);
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
      const killed = await prolog(job, [], { STRATA_FAULT_KILL: `${step}:${when}` });
      expect({ job, signal: killed.signal }).toEqual({ job, signal: 'SIGKILL' });
      const epilog = await jobs.epilog(job);
      expect({ job, code: epilog.code, stderr: epilog.stderr }).toEqual({ job, code: 0, stderr: '' });
      cleanNode();
    }
  }
}, 300_000);

test('prolog killed half-way and run again completes; the epilog then cleans up', async () => {
  const middle = Math.ceil(stepCount / 2);
  await prolog('again', [], { STRATA_FAULT_KILL: `${middle}:after` });
  const rerun = await prolog('again');
  expect(rerun.code).toBe(0);
  expect(existsSync(join(site.runtime, 'jobs/again/entry.json'))).toBe(true);
  expect((await jobs.epilog('again')).code).toBe(0);
  cleanNode();
}, 60_000);
