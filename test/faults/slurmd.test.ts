// slurmd killed (SIGKILL) and restarted on a node while a container job runs there, on the 3-node
// test cluster: the job runs to completion in its container, the epilog cleans the node, and
// `strata node gc` on that node — asking the real Slurm with squeue — keeps the running job and
// has nothing to remove afterwards. Runs as root under the mount-test lock.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG, DIR, NODES, REPO, ensureCluster, importImage, jobInfo, nodeLeftovers, on, readOutput, sbatch, stopCluster, waitForJob, waitForQuietCluster, workDir } from '../e2e/cluster.js';

let startedHere = false;
const strataOn = (node: string, args: string[]) => on(node, ['/usr/bin/env', `STRATA_CONFIG=${CONFIG}`, process.execPath, join(REPO, 'dist/bin/strata.js'), ...args]);

beforeAll(async () => {
  startedHere = await ensureCluster();
  await waitForQuietCluster();
  await importImage('slurmd-fault:1', { 'etc/strata-marker': 'survived\n' });
}, 300_000);

afterAll(async () => {
  if (startedHere) await stopCluster();
}, 120_000);

test('slurmd killed and restarted during a job: the job completes, node gc keeps it while it runs, the node ends clean', async () => {
  const dir = workDir('slurmd-fault');
  const submitted = await sbatch(dir, ['-w', 'n1', '-N1', '--container-image=slurmd-fault:1', '-o', join(dir, 'out.txt'), '--wrap', 'sleep 10; cat /etc/strata-marker']);
  expect(submitted.code).toBe(0);
  // Past the prolog (with PrologFlags=Alloc a job is RUNNING, Reason=Prolog, while it runs; a
  // slurmd killed then never reports the prolog's end, which is Slurm's business, not strata's).
  const pastProlog = async () => {
    const info = await jobInfo(submitted.jobId!);
    return info.state === 'RUNNING' && info.reason === 'None';
  };
  for (let i = 0; i < 150 && !(await pastProlog()); i++) await new Promise((resolve) => setTimeout(resolve, 200));
  expect((await jobInfo(submitted.jobId!)).state).toBe('RUNNING');

  const pid = Number(readFileSync(join(DIR, 'hosts/n1/slurmd.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
  const status = JSON.parse((await strataOn('n1', ['node', 'status', '--json'])).stdout);
  expect(status.jobs.map((job: { id: string; phase: string }) => [job.id, job.phase])).toEqual([[submitted.jobId, 'ready']]);
  expect((await on('n1', ['slurmd', '-f', join(DIR, 'etc/slurm.conf'), '-N', 'n1'])).code).toBe(0);

  // squeue still lists the job on n1: gc keeps it.
  const gc = await strataOn('n1', ['node', 'gc', '--dry-run']);
  expect({ code: gc.code, stdout: gc.stdout }).toEqual({ code: 0, stdout: expect.stringMatching(/0 jobs to remove, 1 live per squeue on n1/) });

  const info = await waitForJob(submitted.jobId!, undefined, 90_000);
  expect({ state: info.state, output: readOutput(join(dir, 'out.txt')) }).toEqual({ state: 'COMPLETED', output: 'survived\n' });
  await waitForQuietCluster(90_000);
  for (const node of NODES) expect({ node, left: await nodeLeftovers(node) }).toEqual({ node, left: [] });
  const after = await strataOn('n1', ['node', 'gc']);
  expect({ code: after.code, stdout: after.stdout }).toEqual({ code: 0, stdout: expect.stringMatching(/removed 0 of 0 finished jobs/) });
}, 240_000);
