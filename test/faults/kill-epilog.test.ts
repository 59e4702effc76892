// The scheduler may SIGKILL the epilog at any instant too. For every undo step of a fully set-up
// job (the journal read backwards), kill the epilog right before and right after that step; then
// `strata node status` must report the half-torn-down job, and either a second epilog or
// `strata node gc` (the job no longer runs) must leave the node exactly as it was.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectCleanNode, expectNextJobWorks, nodeStatus, useThreeLayerSite } from '../helpers/faults.js';
import { jobsOn } from '../helpers/jobs.js';

const fx = useThreeLayerSite('kill-epilog');
const jobs = jobsOn(() => fx.site);
const prolog = (job: string) => jobs.prolog(job, 'three:1', ['--mounts', '/tmp:/scratch:ro']);

test('epilog killed before and after each undo step; a second epilog or node gc finishes the job', async () => {
  expect((await prolog('probe')).code).toBe(0);
  const steps = readFileSync(join(jobs.jobDir('probe'), 'journal'), 'utf8').split('\n').filter(Boolean).length;
  expect((await jobs.epilog('probe')).code).toBe(0);
  // begin, upper, rootfs dir, rootfs, mount points, /proc, /sys, /dev, /scratch (+ home), entry
  expect(steps).toBeGreaterThanOrEqual(10);

  let finisher = 0;
  for (let step = 1; step <= steps; step++) {
    for (const when of ['before', 'after']) {
      const job = `e${step}${when[0]}`;
      expect((await prolog(job)).code).toBe(0);
      const killed = await jobs.epilog(job, { STRATA_FAULT_KILL_EPILOG: `${step}:${when}` });
      expect({ job, signal: killed.signal }).toEqual({ job, signal: 'SIGKILL' });
      // Whatever is left is reported: the job is listed, and never as ready (entry.json goes first).
      const status = await nodeStatus(fx.site);
      const left = status.jobs.find((candidate) => candidate.id === job);
      if (left) expect({ job, phase: left.phase }).toEqual({ job, phase: 'setting-up' });
      // Alternate the two ways a killed epilog gets finished.
      const finish = finisher++ % 2 === 0 ? await jobs.epilog(job) : await fx.site.run(['node', 'gc', '--live-jobs', '']);
      expect({ job, code: finish.code, stderr: finish.stderr }).toEqual({ job, code: 0, stderr: '' });
      await expectCleanNode(fx.site, fx.before);
    }
  }
  await expectNextJobWorks(fx.site, fx.before, 'three:1');
}, 300_000);
