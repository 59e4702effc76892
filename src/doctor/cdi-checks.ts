// The device verdicts of `strata doctor`, pure over DeviceFacts: a broken CDI spec fails the node
// (a job asking for its devices would fail for the node's reason), GPUs without an NVIDIA spec or
// without Slurm's device confinement are warnings (jobs run, but without GPUs, or able to open
// every GPU of the node).

import type { Check } from './check.js';
import type { DeviceFacts } from './cdi-facts.js';

/** Most device names a doctor line lists. */
const LISTED = 16;

export function checkDevices(devices: DeviceFacts | undefined): Check[] {
  if (!devices) return [];
  const checks: Check[] = [specCheck(devices)];
  const cgroup = cgroupCheck(devices);
  if (cgroup) checks.push(cgroup);
  return checks;
}

function specCheck({ offered, problems, specDirs, gpuNodes }: DeviceFacts): Check {
  const name = 'cdi';
  if (problems.length) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more: ${problems.slice(1).map((problem) => problem.path).join(', ')})` : '';
    return {
      name,
      status: 'fail',
      message: `CDI spec ${problems[0].path} cannot be used: ${problems[0].message}${more}`,
      fix: 'fix or remove the file (nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml rewrites NVIDIA\'s)',
    };
  }
  const hasGpuSpec = offered.some((device) => device.name.startsWith('nvidia.com/gpu='));
  if (gpuNodes.length && !hasGpuSpec) {
    return {
      name,
      status: 'warn',
      message: `${gpuNodes.length} GPU${gpuNodes.length === 1 ? '' : 's'} (${gpuNodes[0]}...) but no nvidia.com/gpu CDI spec in ${specDirs.join(', ')}: container jobs get no GPU`,
      fix: 'run `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` on this node (docs/gpus.md)',
    };
  }
  if (!offered.length) return { name, status: 'ok', message: `no CDI devices (no specs in ${specDirs.join(', ') || 'no directories'})` };
  const listed = offered.slice(0, LISTED).map((device) => device.name).join(', ');
  const files = [...new Set(offered.map((device) => device.spec))].join(', ');
  return { name, status: 'ok', message: `offers ${listed}${offered.length > LISTED ? ` and ${offered.length - LISTED} more` : ''} (${files})` };
}

function cgroupCheck({ gpuNodes, cgroup }: DeviceFacts): Check | undefined {
  if (!gpuNodes.length || !cgroup) return undefined;
  const name = 'cdi.cgroup';
  if (cgroup.readable && cgroup.constrainDevices?.toLowerCase() === 'yes') return { name, status: 'ok', message: `${cgroup.path}: ConstrainDevices=yes` };
  const why = cgroup.readable ? `${cgroup.path} does not set ConstrainDevices=yes` : `${cgroup.path} cannot be read`;
  return {
    name,
    status: 'warn',
    message: `GPUs present but ${why}: a job can open every GPU of the node, not only its own`,
    fix: 'set ConstrainDevices=yes in cgroup.conf (with TaskPlugin=task/cgroup in slurm.conf) and restart slurmd',
  };
}
