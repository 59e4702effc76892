// GPUs through CDI in real Slurm jobs on the 3-node cluster, as an ordinary user. There is no GPU
// here, so the cluster has made ones (test/cluster/up.sh): device nodes in a directory of the
// host's /dev, declared to Slurm as gres/gpu; this file adds what a GPU node's admin adds: the
// driver's library (a gcc-built libcuda.so exporting cuInit), nvidia-smi, and the spec
// `nvidia-ctk cdi generate` writes. A CUDA-like image (NVIDIA_VISIBLE_DEVICES=all, as every CUDA
// image sets) gets the GPUs Slurm allocated to the job with no strata flag at all; other jobs get
// none; a device no spec defines fails the job with its name, never the node.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildLibcuda, cudaProbeFiles, writeFakeNvidiaSmi, writeSpecs } from '../helpers/cdi-host.js';
import { nvidiaSpecYaml } from '../helpers/cdi-specs.js';
import { busyboxLayer, writeLayout } from '../helpers/oci.js';
import { DIR, GPU_DEV, importImage, on, strata, useCleanCluster, waitForQuietCluster, workDir, type Run } from './cluster.js';

const SPEC_DIR = join(DIR, 'cdi');
const GPU_ROOT = join(DIR, 'gpu');
/** Not a directory the dynamic loader searches by itself: only the device's env can find it. */
const LIB = '/usr/local/nvidia/lib64';

useCleanCluster(async () => {
  const driverDir = join(GPU_ROOT, 'driver');
  buildLibcuda(driverDir);
  writeFakeNvidiaSmi(driverDir, 2);
  writeSpecs(SPEC_DIR, { 'nvidia.yaml': nvidiaSpecYaml({ devRoot: GPU_DEV, containerDevRoot: GPU_DEV, driverDir, gpus: 2, libDir: LIB }) });
  const layout = join(GPU_ROOT, 'layout');
  writeLayout(layout, [{ ref: 'cuda', layers: [{ tar: busyboxLayer(cudaProbeFiles(GPU_ROOT)), compression: 'none' }], config: { Env: ['PATH=/usr/bin:/bin', 'NVIDIA_VISIBLE_DEVICES=all'] } }]);
  const imported = await strata(['import', `oci:${layout}:cuda`, '--tag', 'cuda:1']);
  if (imported.code !== 0) throw new Error(imported.stderr);
  await importImage('plain:1');
});

afterAll(() => {
  rmSync(SPEC_DIR, { recursive: true, force: true });
  rmSync(GPU_ROOT, { recursive: true, force: true });
});

/** srun as the test user from a fresh work dir; waits until the cluster is quiet again. */
async function srun(name: string, args: string[]): Promise<Run> {
  const result = await on('head', ['srun', ...args], { user: true, cwd: workDir(name) });
  await waitForQuietCluster();
  return result;
}

/** The devices each node's prolog gave the job, from the node's log ("rootfs ready" records). */
async function devicesOnNodes(jobId: string): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = {};
  for (const node of ['n1', 'n2', 'n3']) {
    const log = (await on(node, ['cat', '/run/strata.log'])).stdout.split('\n').filter(Boolean);
    for (const line of log) {
      const record = JSON.parse(line) as { job?: string; message?: string; devices?: string[] };
      if (record.job === jobId && record.message === 'rootfs ready') found[node] = record.devices ?? [];
    }
  }
  return found;
}

const probe = (extra = '') =>
  ['echo "$(hostname) job=$SLURM_JOB_ID gpus=${SLURM_STEP_GPUS-none}"', 'cuda-probe', `readlink ${LIB}/libcuda.so.1`, 'nvidia-smi -L | head -1', `stat -c "%t:%T" ${GPU_DEV}/nvidiactl`, extra].filter(Boolean).join('; ');

test('a CUDA image in a job with GPUs gets exactly the GPUs Slurm allocated on each node, with no strata flag', async () => {
  const result = await srun('gpu-auto', ['-N2', '--ntasks-per-node=1', '--gpus-per-node=1', '--label', '--container-image=cuda:1', 'sh', '-c', probe()]);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  // Each task's lines, by srun's "TASK: " label (the two tasks' output interleaves).
  const byTask = new Map<string, string[]>();
  for (const line of result.stdout.trim().split('\n')) {
    const [, task, text] = /^\s*(\d+): (.*)$/.exec(line) ?? ['', '?', line];
    byTask.set(task, [...(byTask.get(task) ?? []), text]);
  }
  expect([...byTask.keys()].sort()).toEqual(['0', '1']);
  const jobId = /job=(\d+)/.exec(result.stdout)![1];
  const gpus: Record<string, string> = {};
  for (const [head, ...rest] of byTask.values()) {
    const [, node, gpu] = /^(n\d) job=\d+ gpus=(\d)$/.exec(head) ?? [];
    expect({ head, node: Boolean(node) }).toEqual({ head, node: true });
    gpus[node] = gpu;
    // The driver library loads through the device's search path, the links are made, nvidia-smi runs.
    expect(rest).toEqual(['cuInit=0', 'libcuda.so.550.54.15', 'GPU 0: Strata Fake GPU (UUID: GPU-00000000-0000-0000-0000-000000000000)', 'c3:ff']);
  }
  // Each node's prolog asked CDI for the GPU Slurm gave the job there, not for all of them.
  expect(await devicesOnNodes(jobId)).toEqual(Object.fromEntries(Object.entries(gpus).map(([node, gpu]) => [node, [`nvidia.com/gpu=${gpu}`]])));
});

test('without GPUs allocated or asked for, a job sees none of the driver', async () => {
  const cuda = await srun('gpu-none', ['-N1', '--container-image=cuda:1', 'sh', '-c', 'cuda-probe; test -e /usr/bin/nvidia-smi || echo no-smi']);
  expect({ code: cuda.code, stderr: cuda.stderr }).toEqual({ code: 0, stderr: '' });
  expect(cuda.stdout).toMatch(/^dlopen: libcuda\.so\.1: cannot open shared object file.*\nno-smi\n$/);
  const plain = await srun('gpu-plain', ['-N1', '--gpus=1', '--container-image=plain:1', 'sh', '-c', `test -e ${LIB} || echo no-lib; test -e /usr/bin/nvidia-smi || echo no-smi`]);
  expect({ code: plain.code, stdout: plain.stdout, stderr: plain.stderr }).toEqual({ code: 0, stdout: 'no-lib\nno-smi\n', stderr: '' });
});

test('--container-devices asks for a device by its CDI name; an undefined one fails the job with its name, not the node', async () => {
  const named = await srun('gpu-named', ['-N1', '--container-image=plain:1', '--container-devices=nvidia.com/gpu=1', 'sh', '-c', 'echo "$(hostname) job=$SLURM_JOB_ID"; nvidia-smi -L | head -1']);
  expect({ code: named.code, stderr: named.stderr }).toEqual({ code: 0, stderr: '' });
  const [, node, jobId] = /^(n\d) job=(\d+)\n/.exec(named.stdout) ?? [];
  expect(named.stdout).toContain('GPU 0: Strata Fake GPU');
  expect(await devicesOnNodes(jobId)).toEqual({ [node]: ['nvidia.com/gpu=1'] });

  const missing = await srun('gpu-missing', ['-N1', '--container-image=plain:1', '--container-devices=nvidia.com/gpu=7', 'true']);
  expect(missing.code).not.toBe(0);
  const lines = missing.stderr.split('\n').filter((line) => line.startsWith('strata:'));
  expect(lines).toEqual([expect.stringMatching(new RegExp(`^strata: n\\d: .*device nvidia\\.com/gpu=7 is not offered on this node: ${SPEC_DIR}/nvidia\\.yaml defines nvidia\\.com/gpu devices 0, 1, all`))]);
  expect(missing.stderr).not.toMatch(/task_init\(\) failed|spank/);
});
