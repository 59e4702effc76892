// A node "rebooted" mid-job: the prolog ran inside a mount namespace that is then destroyed, so
// the job's mounts (and, by autoclear, its loop devices) are gone while its state in the runtime
// dir remains. `strata node status` reports it; `strata node gc` keeps it while the scheduler
// says the job runs, removes it once it does not, and the node then runs jobs again.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectCleanNode, expectNextJobWorks, eventually, nodeStatus, useThreeLayerSite } from '../helpers/faults.js';
import { loopsFor } from '../helpers/node-state.js';
import { STRATA } from '../helpers/site.js';

const fx = useThreeLayerSite('reboot');


/** Run a prolog in a private mount namespace that dies with it. */
function prologInDoomedNamespace(job: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/unshare', ['--mount', '--propagation', 'private', process.execPath, STRATA, 'prolog', '--job', job, '--uid', '1000', '--gid', '1000', '--image', 'three:1'], {
      env: fx.site.env,
      stdio: 'ignore',
    });
    child.on('close', (code) => resolve(code));
  });
}

test('state without mounts is reported, kept while the job is live, removed by node gc after', async () => {
  expect(await prologInDoomedNamespace('51')).toBe(0);
  expect(await prologInDoomedNamespace('52')).toBe(0);
  await eventually(() => loopsFor(fx.site.store).length === 0);

  const status = await nodeStatus(fx.site);
  expect(status.jobs.map((job) => [job.id, job.phase, job.rootfs.mounted])).toEqual([['51', 'ready', false], ['52', 'ready', false]]);
  expect(status.stale.filter((item) => item.kind === 'journal-without-mounts').map((item) => item.job)).toEqual(['51', '52']);
  const human = await fx.site.run(['node', 'status']);
  expect(human.stdout).toMatch(/journal-without-mounts .*jobs\/51 .*rebooted/);

  // The scheduler still lists job 52 on this node: it stays (and is said to be stale).
  const dry = await fx.site.run(['node', 'gc', '--dry-run', '--live-jobs', '52']);
  expect(dry.stdout).toMatch(/^would job 51: tear down/m);
  expect((await nodeStatus(fx.site)).jobs).toHaveLength(2);
  const partial = await fx.site.run(['node', 'gc', '--live-jobs', '52']);
  expect(partial.code).toBe(0);
  expect(partial.stdout).toMatch(/job 52: kept \(still running per --live-jobs\) although journal-without-mounts/);
  expect((await nodeStatus(fx.site)).jobs.map((job) => job.id)).toEqual(['52']);

  const rest = await fx.site.run(['node', 'gc', '--live-jobs', '']);
  expect(rest.stdout).toMatch(/node gc: removed 1 of 1 finished jobs/);
  await expectCleanNode(fx.site, fx.before);
  await expectNextJobWorks(fx.site, fx.before, 'three:1');
}, 120_000);

test('without a scheduler answer node gc removes nothing and says so', async () => {
  expect(await prologInDoomedNamespace('53')).toBe(0);
  await eventually(() => loopsFor(fx.site.store).length === 0);
  // An unusable slurm.conf: squeue cannot answer.
  writeFileSync(join(fx.site.root, 'slurm.conf'), '');
  const gc = await fx.site.run(['node', 'gc'], { env: { SLURM_CONF: join(fx.site.root, 'slurm.conf'), SLURMD_NODENAME: 'n-none' } });
  expect(gc.code).toBe(1);
  expect(gc.stderr).toMatch(/^strata: cannot ask Slurm which jobs run on n-none \(.+\): nothing was removed; .*--live-jobs/);
  expect(gc.stderr.trim().split('\n')).toHaveLength(1);
  expect((await nodeStatus(fx.site)).jobs.map((job) => job.id)).toEqual(['53']);
  expect((await fx.site.run(['node', 'gc', '--live-jobs', ''])).code).toBe(0);
  await expectCleanNode(fx.site, fx.before);
}, 120_000);
