// A site with Slurm's job_container/tmpfs (PrologFlags=Contain, JobContainerType=job_container/tmpfs,
// a BasePath per node): every job has its own /tmp and /dev/shm in a mount namespace of its own,
// and strata's container shows those same ones, not a second /tmp. The default cluster is stopped
// and the 3-node cluster started that way for this file (job-container-env.ts), and stopped after
// it, so the next file starts the default one again. After every test every node must be idle and
// clean, and `losetup -a` and this machine's `findmnt` as before.
//
// Runs as root, under the mount-test lock (scripts/test holds /tmp/strata-mounttests.lock).

import { DEFAULT_DIR, restoreClusterEnv } from './job-container-env.js';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { CLUSTER, NODES, USER, importImage, on, readOutput, sbatch, stopCluster, useCleanCluster, waitForJob, workDir } from './cluster.js';

// Both clusters use the same namespaces and addresses: the default one goes first.
beforeAll(() => {
  execFileSync(join(CLUSTER, 'down.sh'), { env: { ...process.env, STRATA_CLUSTER_DIR: DEFAULT_DIR } });
}, 120_000);
useCleanCluster(() => importImage('jc:1', { 'etc/strata-marker': 'jc-image\n' }));
afterAll(async () => {
  await stopCluster();
  restoreClusterEnv();
}, 120_000);

const lines = (text: string) => text.split('\n').filter(Boolean);
const BASE = '/run/slurm-job-tmp'; // test/cluster/up.sh's BasePath on every node

/** What is left of a job's Slurm /tmp on every node: its BasePath directory, a file in the node's own /tmp. */
async function jobTmpLeftovers(jobId: string, names: string[]): Promise<string[]> {
  const left: string[] = [];
  for (const node of NODES) {
    const found = await on(node, ['sh', '-c', `ls -d ${BASE}/${jobId} ${names.map((name) => `/tmp/${name}`).join(' ')} 2>/dev/null`]);
    left.push(...lines(found.stdout).map((path) => `${node}:${path}`));
  }
  return left;
}

test('the cluster runs job_container/tmpfs: a job on the host has its own /tmp', async () => {
  const config = (await on('head', ['scontrol', 'show', 'config'])).stdout;
  expect(config).toMatch(/^JobContainerType\s*=\s*job_container\/tmpfs$/m);
  expect(config).toMatch(/^PrologFlags\s*=\s*Alloc,Contain$/m);
  const dir = workDir('jc-host');
  const srun = await on('head', ['srun', '-N1', 'sh', '-c', 'stat -c "%U %a" /tmp; ls -A /tmp'], { user: true, cwd: dir });
  // Slurm's job /tmp: the user's own, empty at start (the node's /tmp is root's 1777).
  expect({ code: srun.code, out: lines(srun.stdout) }).toEqual({ code: 0, out: [`${USER.name} 700`] });
});

test('the container /tmp is the job /tmp from Slurm: files pass between host and container steps, and are gone after the job', async () => {
  const dir = workDir('jc-exchange');
  // --container-batch=host: the script runs on the host (in the job's namespace), its steps in the image.
  const script = [
    'echo staged-on-host >/tmp/from-host',
    'srun -N2 -l sh -c \'cat /etc/strata-marker; cat /tmp/from-host 2>/dev/null || echo no file from the host; echo "from $(hostname)" >/tmp/from-container-$SLURM_PROCID\' | sort',
    'cat /tmp/from-container-*',
  ].join('\n');
  const submitted = await sbatch(dir, ['-N2', '--container-image=jc:1', '--container-batch=host', '-o', join(dir, 'out.txt'), '--wrap', script]);
  expect({ code: submitted.code, stderr: submitted.stderr }).toEqual({ code: 0, stderr: '' });
  const info = await waitForJob(submitted.jobId!);
  // The batch script runs on the job's first node (rank 0's): there the container sees its file,
  // and it sees the container's; the second node's job /tmp is that node's own.
  const first = info.nodes.replace(/^n\[(\d).*$/, 'n$1');
  expect({ state: info.state, output: lines(readOutput(join(dir, 'out.txt'))) }).toEqual({
    state: 'COMPLETED',
    output: ['0: jc-image', '0: staged-on-host', '1: jc-image', '1: no file from the host', `from ${first}`],
  });
  expect(await jobTmpLeftovers(submitted.jobId!, ['from-host', 'from-container-0', 'from-container-1'])).toEqual([]);

  // A later job starts with an empty /tmp again.
  const next = await on('head', ['srun', '-N1', '--container-image=jc:1', 'ls', '-A', '/tmp'], { user: true, cwd: dir });
  expect({ code: next.code, out: next.stdout }).toEqual({ code: 0, out: '' });
});

test('the container /dev/shm is the job /dev/shm from Slurm, not the node one', async () => {
  const dir = workDir('jc-shm');
  await on('n1', ['sh', '-c', 'echo node-wide >/dev/shm/strata-jc-node && chmod 644 /dev/shm/strata-jc-node']);
  try {
    const script = ['echo from-host >/dev/shm/jc-host', "srun sh -c 'ls /dev/shm'"].join('\n');
    const submitted = await sbatch(dir, ['-w', 'n1', '--container-image=jc:1', '--container-batch=host', '-o', join(dir, 'out.txt'), '--wrap', script]);
    expect(submitted.code).toBe(0);
    expect((await waitForJob(submitted.jobId!)).state).toBe('COMPLETED');
    expect(lines(readOutput(join(dir, 'out.txt')))).toEqual(['jc-host']);
    expect((await on('n1', ['ls', '/dev/shm'])).stdout).not.toMatch(/jc-host/);
  } finally {
    await on('n1', ['rm', '-f', '/dev/shm/strata-jc-node']);
  }
});

test('--container-readonly: the image is read-only, the job /tmp from Slurm stays writable and shared with the host step', async () => {
  const dir = workDir('jc-readonly');
  const script = [
    'echo staged-on-host >/tmp/from-host',
    "srun sh -c 'touch /etc/x 2>/dev/null && echo image writable; cat /tmp/from-host; echo written-inside >/tmp/from-container'",
    'cat /tmp/from-container',
  ].join('\n');
  const submitted = await sbatch(dir, ['-N1', '--container-image=jc:1', '--container-readonly', '--container-batch=host', '-o', join(dir, 'out.txt'), '--wrap', script]);
  expect(submitted.code).toBe(0);
  const info = await waitForJob(submitted.jobId!);
  expect({ state: info.state, output: lines(readOutput(join(dir, 'out.txt'))) }).toEqual({ state: 'COMPLETED', output: ['staged-on-host', 'written-inside'] });
  expect(await jobTmpLeftovers(submitted.jobId!, ['from-host', 'from-container'])).toEqual([]);
});
