// Soak: many jobs through the 3-node test cluster with mixed images (1 and 3 layers, small and a
// few MB), node counts (-N1..-N3) and concurrency (batches of jobs in flight at once), then:
// every job completed with its image's output, zero leaked loop devices, mounts, upper data or
// journal entries on any node, and prolog/epilog time and slurmd memory flat from the first
// decile of jobs to the last. Prints one summary line.
//
// In CI (with the e2e tests): STRATA_SOAK_JOBS=60 (default). Full size: `npm run soak` (1000
// jobs, bounded by STRATA_SOAK_SECONDS, default 3600; stops by itself when either is reached).
// Deterministic mix: STRATA_SOAK_SEED. Runs as root under the mount-test lock.

import { join } from 'node:path';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { prng, pick } from '../hostile/fuzz.js';
import { NODES, ensureCluster, importImage, nodeLeftovers, on, readOutput, sbatch, stopCluster, waitForQuietCluster, workDir } from './cluster.js';

const JOBS = Number(process.env.STRATA_SOAK_JOBS ?? 60);
const SECONDS = Number(process.env.STRATA_SOAK_SECONDS ?? 150);
const SEED = Number(process.env.STRATA_SOAK_SEED ?? 7);

let startedHere = false;
let before: NodeState;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the soak needs root (the test cluster)');
  startedHere = await ensureCluster();
  await waitForQuietCluster();
  await importImage('soak-small:1', { 'etc/soak-marker': 'small\n' });
  await importImage('soak-big:1', { 'etc/soak-marker': 'big\n', 'opt/blob': 'x'.repeat(4 << 20) });
  before = nodeState();
}, 300_000);

afterAll(async () => {
  if (startedHere) await stopCluster();
}, 120_000);

interface Submitted {
  id: string;
  image: string;
  out: string;
}

/** slurmd resident memory (KiB), summed over the nodes' daemons (one pid namespace: seen from any host). */
async function slurmdRss(): Promise<number> {
  const result = await on('head', ['sh', '-c', 'for p in $(pgrep -x slurmd); do grep VmRSS /proc/$p/status; done']);
  return [...result.stdout.matchAll(/VmRSS:\s+(\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);
}

/** Median of the values in the first and in the last tenth. */
function deciles(values: number[]): { first: number; last: number } {
  const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? NaN;
  const tenth = Math.max(1, Math.floor(values.length / 10));
  return { first: median(values.slice(0, tenth)), last: median(values.slice(-tenth)) };
}

test(`soak: up to ${JOBS} jobs, mixed images, sizes and concurrency; nothing leaks, nothing grows`, async () => {
  const random = prng(SEED);
  const images = ['soak-small:1', 'soak-big:1'];
  const started = Date.now();
  const jobs: Submitted[] = [];
  const rss: number[] = [await slurmdRss()];
  const failed: string[] = [];
  while (jobs.length < JOBS && Date.now() - started < SECONDS * 1000) {
    // A batch in flight at once: 1 to 8 jobs of 1 to 3 nodes.
    const batch: Submitted[] = [];
    const size = Math.min(JOBS - jobs.length, 1 + Math.floor(random() * 8));
    for (let i = 0; i < size; i++) {
      const image = pick(random, images);
      const nodes = 1 + Math.floor(random() * 3);
      const dir = workDir(`soak-${jobs.length + i}`);
      const out = join(dir, 'out.txt');
      const submitted = await sbatch(dir, [`-N${nodes}`, `--container-image=${image}`, '-o', out, '--wrap', 'cat /etc/soak-marker']);
      if (submitted.code !== 0 || !submitted.jobId) throw new Error(`sbatch failed: ${submitted.stderr}`);
      batch.push({ id: submitted.jobId, image, out });
    }
    await waitForQuietCluster(120_000);
    const states = (await on('head', ['scontrol', 'show', 'job', '-o'])).stdout;
    for (const job of batch) {
      const state = new RegExp(`JobId=${job.id} .*?JobState=(\\S+)`).exec(states)?.[1];
      const expected = `${job.image === 'soak-small:1' ? 'small' : 'big'}\n`;
      if (state !== 'COMPLETED' || readOutput(job.out) !== expected) failed.push(`${job.id} ${state}: ${readOutput(job.out).slice(0, 200)}`);
    }
    jobs.push(...batch);
    rss.push(await slurmdRss());
  }
  const elapsed = (Date.now() - started) / 1000;

  // Per-job set-up and tear-down times, in job order, from every node's log (one JSON line each).
  const ids = new Set(jobs.map((job) => job.id));
  const timings: { prolog: [number, number][]; epilog: [number, number][] } = { prolog: [], epilog: [] };
  for (const node of NODES) {
    for (const line of (await on(node, ['cat', '/run/strata.log'])).stdout.split('\n')) {
      let event: { job?: string; phase?: string; result?: string; durationMs?: number };
      try {
        event = JSON.parse(line);
      } catch {
        continue;
      }
      if (!event.job || !ids.has(event.job) || typeof event.durationMs !== 'number') continue;
      if (event.phase === 'prolog' && event.result === 'ready') timings.prolog.push([Number(event.job), event.durationMs]);
      if (event.phase === 'epilog' && event.result === 'ok') timings.epilog.push([Number(event.job), event.durationMs]);
    }
  }
  const inOrder = (list: [number, number][]) => list.sort((a, b) => a[0] - b[0]).map(([, ms]) => ms);
  const prolog = inOrder(timings.prolog);
  const epilog = inOrder(timings.epilog);
  const leftovers = (await Promise.all(NODES.map((node) => nodeLeftovers(node)))).flat();
  const p = deciles(prolog);
  const e = deciles(epilog);
  const m = { first: rss[0] / 1024, last: rss[rss.length - 1] / 1024 };
  process.stdout.write(
    `soak: ${jobs.length} jobs in ${elapsed.toFixed(0)} s (${failed.length} failed); prolog median first/last decile ${p.first}/${p.last} ms, ` +
      `epilog ${e.first}/${e.last} ms; slurmd RSS ${m.first.toFixed(1)}/${m.last.toFixed(1)} MiB; leftovers on nodes: ${leftovers.length}\n`,
  );
  expect(failed).toEqual([]);
  expect(jobs.length).toBeGreaterThanOrEqual(Math.min(JOBS, 10));
  expect(leftovers).toEqual([]);
  expectNodeStateUnchanged(before);
  // Flat: the last decile no slower than twice the first (plus scheduling noise), memory within 50%.
  expect(p.last).toBeLessThan(2 * p.first + 100);
  expect(e.last).toBeLessThan(2 * e.first + 100);
  expect(m.last).toBeLessThan(1.5 * m.first + 8);
  expect(prolog.length).toBeGreaterThanOrEqual(jobs.length);
}, 3_900_000);
