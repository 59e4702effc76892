// The host side, for real: device nodes made with mknod, a gcc-built libcuda.so, a fake
// nvidia-smi, and jobDevices reading a spec directory and stat-ing the host (root only: mknod).

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Config } from '../../src/config/types.js';
import { gatherHostFacts } from '../../src/runtime/devices/host-facts.js';
import { jobDevices, mergeEnv, parseDeviceRequests } from '../../src/runtime/devices/index.js';
import { cleanupCdi, fakeGpuNode, isRoot, writeSpecs, type FakeGpuNode } from '../helpers/cdi-host.js';
import { DRIVER_VERSION, nvidiaSpecYaml } from '../helpers/cdi-specs.js';

const rootOnly = isRoot ? describe : describe.skip;

rootOnly('a fake GPU node', () => {
  let node: FakeGpuNode;
  let config: Pick<Config, 'devices'>;
  beforeAll(() => {
    node = fakeGpuNode(2);
    writeSpecs(node.specDir, { 'nvidia.yaml': nvidiaSpecYaml({ devRoot: node.devRoot, driverDir: node.driverDir, gpus: 2 }) });
    config = { devices: { specDirs: [node.specDir], defaultRequests: [], autoAll: false, allowUnknownHooks: false } };
  });
  afterAll(() => cleanupCdi(node.root));

  test('the mknod nodes are seen with their major:minor', () => {
    const facts = gatherHostFacts([join(node.devRoot, 'nvidia1'), join(node.devRoot, 'nvidiactl'), join(node.devRoot, 'absent'), node.libcuda]);
    expect(facts.get(join(node.devRoot, 'nvidia1'))).toEqual({ kind: 'char', major: 195, minor: 1 });
    expect(facts.get(join(node.devRoot, 'nvidiactl'))).toEqual({ kind: 'char', major: 195, minor: 255 });
    expect(facts.has(join(node.devRoot, 'absent'))).toBe(false);
    expect(facts.get(node.libcuda)).toEqual({ kind: 'file' });
  });

  test('the built libcuda has soname libcuda.so.1 and cuInit loads and returns 0 through ctypes', () => {
    expect(execFileSync('readelf', ['-d', node.libcuda], { encoding: 'utf8' })).toContain('Library soname: [libcuda.so.1]');
    expect(execFileSync('python3', ['-c', 'import ctypes,sys; print(ctypes.CDLL(sys.argv[1]).cuInit(0))', node.libcuda], { encoding: 'utf8' }).trim()).toBe('0');
  });

  test('the fake nvidia-smi lists the GPUs and names the driver version', () => {
    expect(execFileSync(node.nvidiaSmi, ['-L'], { encoding: 'utf8' }).trim().split('\n')).toEqual([
      'GPU 0: Strata Fake GPU (UUID: GPU-00000000-0000-0000-0000-000000000000)',
      'GPU 1: Strata Fake GPU (UUID: GPU-00000000-0000-0000-0000-000000000001)',
    ]);
    expect(execFileSync(node.nvidiaSmi, { encoding: 'utf8' })).toContain(`Driver Version: ${DRIVER_VERSION}`);
  });

  test("a CUDA image in a job given GPU 1 gets that GPU's node, the driver files and the hooks", () => {
    const { edits, notes } = jobDevices(config, { explicit: [], imageEnv: ['NVIDIA_VISIBLE_DEVICES=all', 'LD_LIBRARY_PATH=/opt/app'], jobEnv: { SLURM_JOB_GPUS: '1' } });
    expect(notes).toEqual([]);
    expect(edits.devices).toEqual(['nvidia.com/gpu=1']);
    expect(edits.deviceNodes.map((n) => [n.path, n.hostPath, n.minor])).toEqual([
      ['/dev/nvidia1', join(node.devRoot, 'nvidia1'), 1],
      ['/dev/nvidiactl', join(node.devRoot, 'nvidiactl'), 255],
      ['/dev/nvidia-uvm', join(node.devRoot, 'nvidia-uvm'), 0],
    ]);
    expect(edits.mounts.map((m) => m.hostPath)).toEqual([node.libcuda, node.nvidiaSmi]);
    expect(mergeEnv(['LD_LIBRARY_PATH=/opt/app'], edits.env)).toContain('LD_LIBRARY_PATH=/opt/app');
  });

  test('a non-CUDA image without a request gets nothing, though the job has a GPU', () => {
    const { edits } = jobDevices(config, { explicit: [], imageEnv: ['PATH=/bin'], jobEnv: { SLURM_JOB_GPUS: '0' } });
    expect(edits).toMatchObject({ devices: [], deviceNodes: [], mounts: [], env: [], hooks: [] });
  });

  test('an explicit request for a GPU the node lacks fails the job, naming the spec file', () => {
    expect(() => jobDevices(config, { explicit: parseDeviceRequests('nvidia.com/gpu=7'), imageEnv: [], jobEnv: {} })).toThrow(`${join(node.specDir, 'nvidia.yaml')} defines nvidia.com/gpu devices 0, 1, all`);
  });
});
