// End to end through real Slurm on the 3-node cluster, which runs Slurm's mpi/pmix with libpmix and
// MpiDefault=pmix as a site would: MPI jobs in a Debian image (Debian's Open MPI, mpi4py, numpy,
// built from Debian packages, see test/images/mpi-rootfs.sh) across the 3 nodes as an unprivileged
// user. Every rank must print the right allreduce answer and nothing may be printed on stderr (the
// PMIx client's "PMIX ERROR" lines when it cannot reach the step's directories, Open MPI's
// warnings). Afterwards every node is idle and clean (useCleanCluster).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importMpiImage, useCleanCluster, workDir } from './cluster.js';
import { BATCH_MPI_RESULT, batchMpiJob, expectedRanks, MPI_IMAGE as IMAGE, mpiSrun as srun, PYTHON, pythonLine } from './mpi-job.js';

useCleanCluster(() => importMpiImage(IMAGE), 1_500_000);

const C_PROGRAM = `#include <mpi.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int rank, size, sum;
  char host[256] = "";
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  gethostname(host, sizeof host - 1);
  printf("rank %d/%d on %s: sum %d\\n", rank, size, host, sum);
  MPI_Finalize();
  return 0;
}
`;

test('srun --mpi=pmix: mpi4py allreduce on 6 ranks across the 3 nodes, no error lines', async () => {
  const dir = workDir('mpi-python');
  const result = await srun(dir, ['-N3', '-n6', '--mpi=pmix', `--container-image=${IMAGE}`, 'python3', '-c', PYTHON]);
  expect(result).toEqual({ code: 0, stdout: expectedRanks(pythonLine), stderr: '' });
});

test('the site default (MpiDefault=pmix) and --container-readonly: the same answer', async () => {
  const dir = workDir('mpi-readonly');
  const result = await srun(dir, ['-N3', '-n6', `--container-image=${IMAGE}`, '--container-readonly', 'python3', '-c', PYTHON]);
  expect(result).toEqual({ code: 0, stdout: expectedRanks(pythonLine), stderr: '' });
});

test("issue 14's job: sbatch -N3 -n6 of a batch script that runs in the image and calls srun --mpi=pmix", async () => {
  expect(await batchMpiJob(workDir('mpi-batch'))).toEqual(BATCH_MPI_RESULT);
}, 420_000);

test('a C MPI program compiled with the image\'s mpicc runs on 6 ranks across the 3 nodes', async () => {
  const dir = workDir('mpi-c');
  writeFileSync(join(dir, 'allreduce.c'), C_PROGRAM);
  const built = await srun(dir, ['-N1', `--container-image=${IMAGE}`, 'mpicc', '-O2', '-o', 'allreduce', 'allreduce.c']);
  expect(built).toEqual({ code: 0, stdout: [], stderr: '' });
  const result = await srun(dir, ['-N3', '-n6', '--mpi=pmix', `--container-image=${IMAGE}`, './allreduce']);
  expect(result).toEqual({ code: 0, stdout: expectedRanks((rank, node) => `rank ${rank}/6 on ${node}: sum 15`), stderr: '' });
});

test('only the step\'s PMIx directories are visible inside, bound in the task\'s own mount namespace, never in the node\'s', async () => {
  const dir = workDir('mpi-dirs');
  // Inside: the server directory (PMIX_SERVER_TMPDIR) is the only entry of the spool directory
  // there and is a mount; the client directory too. The task's parent (slurmstepd, in the node's
  // mount namespace) has neither mounted.
  const script = [
    'spool=$(dirname "$PMIX_SERVER_TMPDIR")',
    'client=/tmp/spmix_appdir_$(id -u)_${SLURM_JOB_ID}.${SLURM_STEP_ID}',
    'echo "$(hostname) spool $(ls -A "$spool" | tr "\\n" " ")"',
    'echo "$(hostname) server-mounted $(grep -c " ${PMIX_SERVER_TMPDIR%/} " /proc/self/mountinfo)"',
    'echo "$(hostname) client-mounted $(grep -c " $client " /proc/self/mountinfo)"',
    'echo "$(hostname) node-mounts $(grep -c -e pmix\\. -e spmix_appdir /proc/$PPID/mountinfo)"',
    // The server's module lists reach the task as they are; no PMIX_MCA_* is made from them.
    'echo "$(hostname) mca [${PMIX_MCA_gds-}${PMIX_MCA_psec-}${PMIX_MCA_ptl-}] server ${PMIX_GDS_MODULE:+gds} ${PMIX_SECURITY_MODE:+psec}"',
  ].join('; ');
  const result = await srun(dir, ['-N3', '--mpi=pmix', `--container-image=${IMAGE}`, 'sh', '-c', script]);
  expect(result.code).toBe(0);
  expect(result.stderr).toBe('');
  for (const node of ['n1', 'n2', 'n3']) {
    expect(result.stdout).toContain(`${node} server-mounted 1`);
    expect(result.stdout).toContain(`${node} client-mounted 1`);
    expect(result.stdout).toContain(`${node} node-mounts 0`);
    expect(result.stdout).toContain(`${node} mca [] server gds psec`);
    expect(result.stdout.find((line) => line.startsWith(`${node} spool `))).toMatch(new RegExp(`^${node} spool pmix\\.\\d+\\.0 $`));
  }
});

test('srun --mpi=pmi2: Slurm\'s PMI2 descriptor reaches the tasks in the container', async () => {
  const dir = workDir('mpi-pmi2');
  const result = await srun(dir, ['-N3', '-n6', '--mpi=pmi2', `--container-image=${IMAGE}`, 'sh', '-c', 'echo "$SLURM_PROCID fd=${PMI_FD:+set} rank=$PMI_RANK size=$PMI_SIZE"']);
  expect(result).toEqual({ code: 0, stdout: [0, 1, 2, 3, 4, 5].map((rank) => `${rank} fd=set rank=${rank} size=6`), stderr: '' });
});
