// Which devices a job asks for: `--container-devices` as typed by a (possibly hostile) user, the
// site's defaults, and the automatic GPU request of CUDA images mapped to the job's allocation.

import { StrataError } from '../../src/errors.js';
import { parseQualifiedName, qualified, type QualifiedName } from '../../src/runtime/devices/names.js';
import { buildRegistry, type DeviceRegistry } from '../../src/runtime/devices/registry.js';
import { allocatedGpus, deviceRequests, parseDeviceRequests, type RequestInput } from '../../src/runtime/devices/requests.js';
import type { CdiSpec, LoadedSpec } from '../../src/runtime/devices/spec-types.js';
import { toRequest } from '../../src/cli/commands/prolog.js';
import { expectUserError } from '../helpers/errors.js';

const loaded = (spec: CdiSpec, path: string): LoadedSpec => {
  const [vendor, cls] = spec.kind.split('/');
  return { path, priority: 0, vendor, class: cls, spec };
};
const gpu = (name: string, node: string) => ({ name, containerEdits: { deviceNodes: [{ path: node }] } });
/** GPUs named by UUID whose nodes are not in index order: what nvidia-ctk's uuid naming gives. */
const nvidia = loaded({ cdiVersion: '0.5.0', kind: 'nvidia.com/gpu', devices: [gpu('GPU-aaa', '/dev/nvidia1'), gpu('GPU-bbb', '/dev/nvidia0'), { name: 'all', containerEdits: { deviceNodes: [{ path: '/dev/nvidia0' }, { path: '/dev/nvidia1' }] } }] }, '/etc/cdi/nvidia.yaml');
const byIndex = loaded({ cdiVersion: '0.5.0', kind: 'nvidia.com/gpu', devices: [gpu('0', '/dev/nvidia-weird0'), gpu('1', '/dev/nvidia-weird1')] }, '/etc/cdi/nvidia.yaml');
const ib = loaded({ cdiVersion: '0.5.0', kind: 'example.com/ib', devices: [gpu('mlx5_0', '/dev/infiniband/uverbs0')] }, '/etc/cdi/ib.json');
const registryOf = (...specs: LoadedSpec[]): DeviceRegistry => buildRegistry(specs, [], ['/etc/cdi']);

const input = (over: Partial<RequestInput> = {}): RequestInput => ({
  explicit: [],
  imageEnv: ['PATH=/usr/bin', 'NVIDIA_VISIBLE_DEVICES=all'],
  jobEnv: { SLURM_JOB_GPUS: '0,1' },
  registry: registryOf(nvidia),
  settings: { defaultRequests: [], autoAll: false },
  ...over,
});
const requested = (over: Partial<RequestInput> = {}) => deviceRequests(input(over)).requests.map(qualified);

describe('parseDeviceRequests', () => {
  test('a comma-separated list, each name once, spaces ignored', () => {
    expect(parseDeviceRequests(' nvidia.com/gpu=0, example.com/ib=all ,nvidia.com/gpu=0').map(qualified)).toEqual(['nvidia.com/gpu=0', 'example.com/ib=all']);
  });

  test.each([undefined, '', '  '])('%j asks for nothing', (text) => expect(parseDeviceRequests(text)).toEqual([]));

  test.each([
    ['nvidia.com/gpu', /a device is named vendor\.com\/class=name/],
    ['gpu=0', /a kind is vendor\.com\/class/],
    ['nvidia.com/gpu=../../x', /device name may hold only/],
    ['nvidia.com/gpu=0,,nvidia.com/gpu=1', /has an empty entry/],
    ['nvidia.com/g/pu=0', /class may hold only/],
  ])('%j is refused', (text, message) => {
    expect(expectUserError(() => parseDeviceRequests(text), 'E_BAD_DEVICE').message).toMatch(message);
  });

  test('control characters in a hostile name are escaped in the one-line message', () => {
    const error = expectUserError(() => parseDeviceRequests('a.com/b=x\n\x1b[31mFAKE'), 'E_BAD_DEVICE');
    expect(error.message).toContain('\\x0a\\x1b[31mFAKE');
  });

  test('more names than any node has devices is refused before any is looked at', () => {
    const many = Array.from({ length: 300 }, (_, i) => `a.com/b=d${i}`).join(',');
    expect(expectUserError(() => parseDeviceRequests(many), 'E_BAD_DEVICE').message).toMatch(/names 300 devices/);
  });

  test('strata prolog --devices reaches the request; a bad one fails the job (user error), not the node', () => {
    const args = { job: '7', uid: 1000, gid: 1000 };
    expect(toRequest({ ...args, devices: 'nvidia.com/gpu=1' }).devices?.map(qualified)).toEqual(['nvidia.com/gpu=1']);
    expect(toRequest(args).devices).toEqual([]);
    expectUserError(() => toRequest({ ...args, devices: 'gpu1' }), 'E_BAD_DEVICE');
  });
});

describe('automatic GPU requests', () => {
  test("a CUDA image gets the job's allocated GPUs, matched by device node (Slurm's index is the node's minor)", () => {
    expect(requested({ jobEnv: { SLURM_JOB_GPUS: '0' } })).toEqual(['nvidia.com/gpu=GPU-bbb']);
    expect(requested()).toEqual(['nvidia.com/gpu=GPU-bbb', 'nvidia.com/gpu=GPU-aaa']);
  });

  test('devices named by index are matched by name when no device node says otherwise', () => {
    expect(requested({ registry: registryOf(byIndex), jobEnv: { CUDA_VISIBLE_DEVICES: '1' } })).toEqual(['nvidia.com/gpu=1']);
  });

  test('SLURM_JOB_GPUS wins over CUDA_VISIBLE_DEVICES; NoDevFiles means none', () => {
    expect(allocatedGpus({ SLURM_JOB_GPUS: '2,3', CUDA_VISIBLE_DEVICES: '0' })).toEqual(['2', '3']);
    expect(allocatedGpus({ CUDA_VISIBLE_DEVICES: 'NoDevFiles' })).toEqual([]);
  });

  test.each(['void', 'none', 'NONE', ''])('NVIDIA_VISIBLE_DEVICES=%j in the image opts out', (value) => {
    expect(requested({ imageEnv: [`NVIDIA_VISIBLE_DEVICES=${value}`] })).toEqual([]);
  });

  test('an image without NVIDIA_VISIBLE_DEVICES gets no GPU, even when the job has some', () => {
    expect(requested({ imageEnv: ['PATH=/bin'] })).toEqual([]);
  });

  test("the image's value never widens the allocation: NVIDIA_VISIBLE_DEVICES=all still gets only the job's GPU", () => {
    expect(requested({ jobEnv: { SLURM_JOB_GPUS: '1' } })).toEqual(['nvidia.com/gpu=GPU-aaa']);
  });

  test('no GPUs allocated: none, unless the site turns on devices.auto_all', () => {
    expect(requested({ jobEnv: {} })).toEqual([]);
    expect(requested({ jobEnv: {}, settings: { defaultRequests: [], autoAll: true } })).toEqual(['nvidia.com/gpu=all']);
  });

  test('an explicit GPU request replaces the automatic one', () => {
    const explicit = [parseQualifiedName('nvidia.com/gpu=all') as QualifiedName];
    expect(requested({ explicit })).toEqual(['nvidia.com/gpu=all']);
  });

  test('a node without an nvidia.com/gpu spec: no automatic request, and a note for the admin', () => {
    const result = deviceRequests(input({ registry: registryOf(ib) }));
    expect(result.requests).toEqual([]);
    expect(result.notes).toEqual(['image asks for GPUs, this node has no nvidia.com/gpu CDI spec']);
  });

  test('an allocated GPU the spec does not know is a node fault (spec and gres.conf disagree)', () => {
    let error: unknown;
    try {
      requested({ jobEnv: { SLURM_JOB_GPUS: '5' } });
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(StrataError);
    expect(error).toMatchObject({ kind: 'node', code: 'E_CDI_GPU_MAP', message: expect.stringContaining('/etc/cdi/nvidia.yaml') });
  });
});

describe('site default requests', () => {
  const settings = { defaultRequests: ['example.com/ib=all', 'example.com/ib=mlx5_9', 'other.com/x=all'], autoAll: false };

  test('are added where the node offers them and left out where it does not', () => {
    const result = deviceRequests(input({ registry: registryOf(ib), imageEnv: [], settings }));
    expect(result.requests.map(qualified)).toEqual(['example.com/ib=all']);
    expect(result.notes).toEqual(['site default example.com/ib=mlx5_9 not offered here', 'site default other.com/x=all not offered here']);
  });

  test('come before the user\'s and the automatic requests, each device once', () => {
    const explicit = [parseQualifiedName('example.com/ib=all') as QualifiedName];
    expect(requested({ registry: registryOf(ib, nvidia), settings, explicit, jobEnv: { SLURM_JOB_GPUS: '0' } })).toEqual(['example.com/ib=all', 'nvidia.com/gpu=GPU-bbb']);
  });
});
