// Fault tests: the site they share the shape of, and after an injected fault: the node is as it
// was (loops, mounts, runtime dir), `strata node status` reports nothing stale, and the next job
// on it works.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeInventory } from '../../src/runtime/node/state.js';
import { importThreeLayerImage } from './images.js';
import { jobsOn } from './jobs.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from './node-state.js';
import { makeSite, type Site } from './site.js';

/**
 * A site of the test file's own with the three-layer image (three:1), made before its tests and
 * removed after them; `before` is the node as it was before any of them. `extraConfig` is added to
 * the site's configuration.
 */
export function useThreeLayerSite(name: string, extraConfig = ''): { site: Site; before: NodeState } {
  const fixture = {} as { site: Site; before: NodeState };
  beforeAll(async () => {
    fixture.before = nodeState();
    fixture.site = makeSite(name, extraConfig);
    await importThreeLayerImage(fixture.site);
  }, 120_000);
  afterAll(() => fixture.site?.remove());
  return fixture;
}

export async function nodeStatus(site: Site): Promise<NodeInventory> {
  const result = await site.run(['node', 'status', '--json']);
  if (result.code !== 0) throw new Error(`strata node status failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as NodeInventory;
}

const entries = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

export async function expectCleanNode(site: Site, before: NodeState): Promise<void> {
  expectNodeStateUnchanged(before);
  expect({ jobs: entries(join(site.runtime, 'jobs')), layers: entries(join(site.runtime, 'l')) }).toEqual({ jobs: [], layers: [] });
  const status = await nodeStatus(site);
  expect({ jobs: status.jobs, layers: status.layers, stale: status.stale }).toEqual({ jobs: [], layers: [], stale: [] });
}

/** A job runs on the node (prolog, a command in its rootfs, epilog), and leaves it clean. */
export async function expectNextJobWorks(site: Site, before: NodeState, image: string, job = 'next'): Promise<void> {
  const jobs = jobsOn(() => site);
  const prolog = await jobs.prolog(job, image);
  expect({ code: prolog.code, stderr: prolog.stderr }).toEqual({ code: 0, stderr: '' });
  expect(jobs.inJob(job, 'echo ok').stdout).toBe('ok\n');
  expect((await jobs.epilog(job)).code).toBe(0);
  await expectCleanNode(site, before);
}

/** Poll until `check` holds (loop devices are freed asynchronously after a namespace goes). */
export async function eventually(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
