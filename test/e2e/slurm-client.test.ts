// End to end through real Slurm on the 3-node cluster, as an unprivileged user: a batch script
// that runs in an image with no Slurm and no glibc at all (busybox) calls srun, scontrol, squeue,
// sbatch and scancel, and they work: the node's own client runs inside the container through its
// own loader and libraries (src/runtime/slurm-client/). The steps srun starts run in the job's
// container as always. Afterwards every node is idle, with nothing left mounted.

import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG, importImage, readOutput, sbatch, useCleanCluster, waitForJob, workDir, USER } from './cluster.js';

useCleanCluster(async () => {
  await importImage('noslurm:1', { 'etc/step-marker': 'in the image\n' });
});

test('srun, scontrol, squeue, sbatch and scancel from a batch script in an image without Slurm or glibc', async () => {
  const dir = workDir('slurm-client');
  const script = join(dir, 'job.sh');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      // The image really has neither Slurm nor a C library of its own.
      'ls /usr/bin/srun /lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libc.so.6 2>/dev/null | sed "s/^/image has /"',
      'echo "srun is $(command -v srun)"',
      // Steps run in the job's container: they see the image's files.
      'srun -N2 sh -c \'echo "step on $(hostname): $(cat /etc/step-marker)"\' | sort',
      'scontrol show job "$SLURM_JOB_ID" | grep -o "JobState=[A-Z]*"',
      'squeue -h -j "$SLURM_JOB_ID" -o "queue %i %T %D"',
      'child=$(sbatch --parsable -N1 -o /dev/null --begin=now+1hour --wrap true)',
      'squeue -h -j "$child" -o "child %T"',
      'scancel "$child" && echo "child cancelled"',
    ].join('\n') + '\n',
  );
  chownSync(script, USER.uid, USER.gid);
  const submitted = await sbatch(dir, ['-N2', '-o', join(dir, 'out.txt'), '--container-image=noslurm:1', script]);
  expect({ code: submitted.code, stderr: submitted.stderr }).toEqual({ code: 0, stderr: '' });
  const info = await waitForJob(submitted.jobId!);
  const output = readOutput(join(dir, 'out.txt'));
  expect({ state: info.state, output }).toEqual({
    state: 'COMPLETED',
    output: [
      'srun is /.strata/slurm/bin/srun',
      'step on n1: in the image',
      'step on n2: in the image',
      'JobState=RUNNING',
      `queue ${submitted.jobId} RUNNING 2`,
      'child PENDING',
      'child cancelled',
      '',
    ].join('\n'),
  });
}, 120_000);

test('--container-readonly: the mount points are made before the container becomes read-only', async () => {
  const dir = workDir('slurm-client-ro');
  const script = join(dir, 'job.sh');
  writeFileSync(script, ['#!/bin/sh', 'touch /probe 2>/dev/null || echo "root read-only"', 'scontrol show job "$SLURM_JOB_ID" | grep -o "JobState=[A-Z]*"', 'srun -N1 -n1 hostname'].join('\n') + '\n');
  chownSync(script, USER.uid, USER.gid);
  const submitted = await sbatch(dir, ['-N1', '-w', 'n3', '-o', join(dir, 'out.txt'), '--container-image=noslurm:1', '--container-readonly', script]);
  expect({ code: submitted.code, stderr: submitted.stderr }).toEqual({ code: 0, stderr: '' });
  const info = await waitForJob(submitted.jobId!);
  expect({ state: info.state, output: readOutput(join(dir, 'out.txt')) }).toEqual({ state: 'COMPLETED', output: 'root read-only\nJobState=RUNNING\nn3\n' });
}, 120_000);

test('container.pytorch_env: all: each task gets MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK; --container-env keeps the user\'s', async () => {
  const original = readFileSync(CONFIG, 'utf8');
  writeFileSync(CONFIG, `${original}container:\n  pytorch_env: all\n`);
  try {
    const dir = workDir('pytorch-env');
    const show = 'echo "$SLURM_PROCID $MASTER_ADDR $MASTER_PORT $WORLD_SIZE $RANK $LOCAL_RANK $OMP_NUM_THREADS $(hostname)"';
    const script = join(dir, 'job.sh');
    writeFileSync(
      script,
      ['#!/bin/sh', `srun sh -c '${show}' | sort`, `MASTER_PORT=12345 STRATA_CONTAINER_ENV=MASTER_PORT srun -N1 -n1 sh -c 'echo "kept $MASTER_PORT $RANK $WORLD_SIZE"'`].join('\n') + '\n',
    );
    chownSync(script, USER.uid, USER.gid);
    const submitted = await sbatch(dir, ['-N2', '-n4', '-o', join(dir, 'out.txt'), '--container-image=noslurm:1', script]);
    expect({ code: submitted.code, stderr: submitted.stderr }).toEqual({ code: 0, stderr: '' });
    const info = await waitForJob(submitted.jobId!);
    const port = 61000 + (Number(submitted.jobId) % 4536);
    expect({ state: info.state, output: readOutput(join(dir, 'out.txt')) }).toEqual({
      state: 'COMPLETED',
      output: [`0 n1 ${port} 4 0 0 1 n1`, `1 n1 ${port} 4 1 1 1 n1`, `2 n1 ${port} 4 2 0 1 n2`, `3 n1 ${port} 4 3 1 1 n2`, 'kept 12345 0 1', ''].join('\n'),
    });
  } finally {
    writeFileSync(CONFIG, original);
  }
}, 120_000);
