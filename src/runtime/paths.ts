// Node-local paths (all under runtime_dir, a tmpfs such as /run/strata):
//
//   <runtime>/lock                 flock: held while shared layer mounts change
//   <runtime>/l/<id>               one read-only layer mount per layer file, shared by all jobs;
//                                  <id> is 12 hex digits of the layer digest, short so that ~300
//                                  lowers fit the one-page overlay option string (mounted with
//                                  cwd = <runtime>/l and relative lowerdirs)
//   <runtime>/slurm-client/<id>    wrappers of the node's Slurm commands, bound read-only into
//                                  containers; <id> names their content, so jobs share one
//   <runtime>/jobs/<job>/journal   write-ahead log of the job's set-up steps (JSON lines)
//   <runtime>/jobs/<job>/entry.json  written last: the rootfs is ready; how to enter it
//   <runtime>/jobs/<job>/error     a user-caused set-up failure, one line for the job's output
//   <runtime>/jobs/<job>/save.json  --container-save: where the epilog saves the writable layer
//   <runtime>/jobs/<job>/upper/    tmpfs (size-capped) holding u/ (upperdir) and w/ (workdir)
//   <runtime>/jobs/<job>/rootfs/   the job's root filesystem (overlay + binds)

import { join } from 'node:path';
import { userError } from '../errors.js';

export const LAYER_ID_LENGTH = 12;
export const layerId = (digest: string) => digest.replace(/^sha256:/, '').slice(0, LAYER_ID_LENGTH);

const JOB_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._\-[\]]{0,127}$/;

export function checkJobId(jobId: string): string {
  if (!JOB_ID_RE.test(jobId) || jobId.includes('..')) {
    throw userError('E_BAD_JOB', `invalid job id "${jobId}"`, { hint: 'a job id is letters, digits and . _ - [ ] (e.g. 1234 or 1234.pbs01)' });
  }
  return jobId;
}

export class RuntimePaths {
  constructor(readonly runtimeDir: string) {}

  get lockFile() {
    return join(this.runtimeDir, 'lock');
  }
  get layerDir() {
    return join(this.runtimeDir, 'l');
  }
  layerMount(digest: string) {
    return join(this.layerDir, layerId(digest));
  }
  /** The Slurm command wrappers with content id `id` (runtime/slurm-client/plan.ts). */
  slurmClientDir(id: string) {
    return join(this.runtimeDir, 'slurm-client', id);
  }
  get jobsDir() {
    return join(this.runtimeDir, 'jobs');
  }
  job(jobId: string) {
    const dir = join(this.jobsDir, checkJobId(jobId));
    return {
      dir,
      journal: join(dir, 'journal'),
      entry: join(dir, 'entry.json'),
      error: join(dir, 'error'),
      /** The job's --container-save request (runtime/save/), read by the epilog. */
      save: join(dir, 'save.json'),
      upper: join(dir, 'upper'),
      rootfs: join(dir, 'rootfs'),
      /** --container-remap-root: the idmapped clones of the layer mounts the overlay stacks. */
      mapped: join(dir, 'l'),
      /** The job's /tmp: a tmpfs in a root-only directory (bound at /tmp in the rootfs). */
      tmp: join(dir, 'tmp', 't'),
    };
  }
}
