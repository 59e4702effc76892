// Points cluster.ts at a cluster started with Slurm's job_container/tmpfs (job-container.test.ts).
// Imported before cluster.ts, which reads these variables when it loads; up.sh, on.sh and down.sh
// follow them too. Its directory is outside /tmp: every job's tasks see the job's own /tmp.
export const DEFAULT_DIR = process.env.STRATA_CLUSTER_DIR ?? '/tmp/strata-cluster';
process.env.STRATA_CLUSTER_DIR = '/var/tmp/strata-cluster-jc';
process.env.STRATA_CLUSTER_JOB_CONTAINER = 'tmpfs';

/** The variables as they were, for the next test file (run in the same process with --runInBand). */
export function restoreClusterEnv(): void {
  process.env.STRATA_CLUSTER_DIR = DEFAULT_DIR;
  if (DEFAULT_DIR === '/tmp/strata-cluster') delete process.env.STRATA_CLUSTER_DIR;
  delete process.env.STRATA_CLUSTER_JOB_CONTAINER;
}
