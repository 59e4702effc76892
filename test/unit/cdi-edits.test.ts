// The merged container edits for a job's devices, checked against (hand-written) host facts: what
// the container will get, and whose fault it is when it cannot get it.

import { StrataError } from '../../src/errors.js';
import { buildContainerEdits, type ContainerEdits } from '../../src/runtime/devices/edits.js';
import type { HostFacts, HostPathInfo } from '../../src/runtime/devices/host-facts.js';
import { parseSpecText } from '../../src/runtime/devices/load.js';
import { parseQualifiedName, type QualifiedName } from '../../src/runtime/devices/names.js';
import { buildRegistry, resolveDevices } from '../../src/runtime/devices/registry.js';
import type { CdiSpec, LoadedSpec } from '../../src/runtime/devices/spec-types.js';
import { DRIVER_VERSION, exampleGpuSpec, nvidiaSpecYaml } from '../helpers/cdi-specs.js';

const NVIDIA_FILE = '/etc/cdi/nvidia.yaml';
const nvidiaSpec = () => {
  const loaded = parseSpecText(nvidiaSpecYaml({ devRoot: '/dev', driverDir: '/drv', gpus: 2 }), NVIDIA_FILE, 0);
  if (!('spec' in loaded)) throw new Error(loaded.message);
  return loaded;
};
const asLoaded = (spec: object, path: string): LoadedSpec => {
  const cdi = spec as CdiSpec;
  const [vendor, cls] = cdi.kind.split('/');
  return { path, priority: 0, vendor, class: cls, spec: cdi };
};
const chr = (major: number, minor: number): HostPathInfo => ({ kind: 'char', major, minor });
const gpuHost = (): Map<string, HostPathInfo> =>
  new Map<string, HostPathInfo>([
    ['/dev/nvidia0', chr(195, 0)],
    ['/dev/nvidia1', chr(195, 1)],
    ['/dev/nvidiactl', chr(195, 255)],
    ['/dev/nvidia-uvm', chr(511, 0)],
    [`/drv/libcuda.so.${DRIVER_VERSION}`, { kind: 'file' }],
    ['/drv/nvidia-smi', { kind: 'file' }],
    ['/opt/example', { kind: 'dir' }],
    ['/dev/null', chr(1, 3)],
  ]);

function editsFor(request: string, specs: LoadedSpec[] = [nvidiaSpec()], host: HostFacts = gpuHost(), allowUnknownHooks = false): ContainerEdits {
  const registry = buildRegistry(specs, [], ['/etc/cdi']);
  const devices = resolveDevices(registry, request.split(',').map((name) => parseQualifiedName(name) as QualifiedName));
  return buildContainerEdits(devices, host, { allowUnknownHooks });
}

function failure(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    expect((error as StrataError).summary).not.toContain('\n');
    return error as StrataError;
  }
  throw new Error('expected an error');
}

describe('an nvidia-ctk spec, one GPU', () => {
  const edits = () => editsFor('nvidia.com/gpu=1');

  test("the GPU's node first, then the spec's common nodes, with major/minor from the host", () => {
    expect(edits().deviceNodes.map(({ path, type, major, minor, permissions }) => ({ path, type, major, minor, permissions }))).toEqual([
      { path: '/dev/nvidia1', type: 'c', major: 195, minor: 1, permissions: 'rwm' },
      { path: '/dev/nvidiactl', type: 'c', major: 195, minor: 255, permissions: 'rwm' },
      { path: '/dev/nvidia-uvm', type: 'c', major: 511, minor: 0, permissions: 'rwm' },
    ]);
  });

  test('library and tool binds: read-only, nosuid, nodev, recursive; propagation dropped', () => {
    expect(edits().mounts.map(({ hostPath, containerPath, readonly, recursive, flags, sourceKind }) => ({ hostPath, containerPath, readonly, recursive, flags, sourceKind }))).toEqual([
      { hostPath: `/drv/libcuda.so.${DRIVER_VERSION}`, containerPath: `/usr/lib/x86_64-linux-gnu/libcuda.so.${DRIVER_VERSION}`, readonly: true, recursive: true, flags: ['nosuid', 'nodev'], sourceKind: 'file' },
      { hostPath: '/drv/nvidia-smi', containerPath: '/usr/bin/nvidia-smi', readonly: true, recursive: true, flags: ['nosuid', 'nodev'], sourceKind: 'file' },
    ]);
  });

  test('env from the spec, and the hooks as typed actions in spec order, each naming its origin', () => {
    const result = edits();
    expect(result.devices).toEqual(['nvidia.com/gpu=1']);
    expect(result.env).toEqual(['NVIDIA_CTK_LIBCUDA_DIR=/usr/lib/x86_64-linux-gnu', 'NVIDIA_VISIBLE_DEVICES=void']);
    expect(result.hooks.map((hook) => hook.action.kind)).toEqual(['create-symlinks', 'enable-cuda-compat', 'update-ldcache', 'disable-device-node-modification']);
    expect(result.hooks[0]).toMatchObject({ device: 'nvidia.com/gpu', spec: NVIDIA_FILE });
  });

  test('two GPUs of one spec get its common edits once', () => {
    const result = editsFor('nvidia.com/gpu=0,nvidia.com/gpu=1');
    expect(result.deviceNodes.map((node) => node.path)).toEqual(['/dev/nvidia0', '/dev/nvidia1', '/dev/nvidiactl', '/dev/nvidia-uvm']);
    expect(result.mounts).toHaveLength(2);
    expect(result.hooks).toHaveLength(4);
  });

  test('`all` and a single GPU together do not duplicate the shared node', () => {
    expect(editsFor('nvidia.com/gpu=all,nvidia.com/gpu=0').deviceNodes.map((node) => node.path)).toEqual(['/dev/nvidia0', '/dev/nvidia1', '/dev/nvidiactl', '/dev/nvidia-uvm']);
  });
});

describe('whose fault: the job', () => {
  test('a device node missing on the host fails the job, naming the device and the spec file', () => {
    const host = gpuHost();
    host.delete('/dev/nvidia1');
    const error = failure(() => editsFor('nvidia.com/gpu=1', undefined, host));
    expect(error).toMatchObject({ kind: 'user', code: 'E_DEVICE_UNAVAILABLE' });
    expect(error.message).toBe(`device nvidia.com/gpu=1 is not available on this node: device node /dev/nvidia1 named by CDI spec ${NVIDIA_FILE} does not exist`);
  });

  test('a library the spec mounts missing on the host fails the job the same way', () => {
    const host = gpuHost();
    host.delete('/drv/nvidia-smi');
    const error = failure(() => editsFor('nvidia.com/gpu=0', undefined, host));
    expect(error).toMatchObject({ kind: 'user', code: 'E_DEVICE_UNAVAILABLE', message: expect.stringContaining(`file /drv/nvidia-smi named by CDI spec ${NVIDIA_FILE}`) });
  });
});

describe('whose fault: the node', () => {
  test('a device node that is not what the spec says (a regular file, or another major:minor)', () => {
    const host = gpuHost();
    host.set('/dev/nvidia0', { kind: 'file' });
    expect(failure(() => editsFor('nvidia.com/gpu=0', undefined, host))).toMatchObject({ kind: 'node', code: 'E_CDI_DEVICE_MISMATCH' });
    const spec = asLoaded({ cdiVersion: '0.5.0', kind: 'a.com/d', devices: [{ name: 'x', containerEdits: { deviceNodes: [{ path: '/dev/null', type: 'c', major: 1, minor: 5 }] } }] }, '/etc/cdi/a.json');
    expect(failure(() => editsFor('a.com/d=x', [spec])).message).toContain('is 1:3 on the host, the spec says 1:5');
  });

  test('a hook strata does not implement is refused with a node-side message naming the program', () => {
    const spec = asLoaded({ cdiVersion: '0.5.0', kind: 'a.com/d', devices: [{ name: 'x', containerEdits: { hooks: [{ hookName: 'createContainer', path: '/usr/libexec/vendor-setup', args: ['vendor-setup', '--all'] }] } }] }, '/etc/cdi/a.json');
    const error = failure(() => editsFor('a.com/d=x', [spec]));
    expect(error).toMatchObject({ kind: 'node', code: 'E_CDI_HOOK' });
    expect(error.message).toContain('CDI spec /etc/cdi/a.json asks to run hook "/usr/libexec/vendor-setup --all" for a.com/d=x');
    // The hint must not promise that the setting runs the hook: nothing does.
    expect(error.hint).toContain('devices.allow_unknown_hooks does not change that');
    expect(error.hint).not.toMatch(/to have strata run it/);
    expect(editsFor('a.com/d=x', [spec], gpuHost(), true).hooks[0].action).toMatchObject({ kind: 'external', path: '/usr/libexec/vendor-setup' });
  });

  test('a mount of another filesystem type, or an unknown mount option', () => {
    const mount = (extra: object) => asLoaded({ cdiVersion: '0.5.0', kind: 'a.com/d', devices: [{ name: 'x', containerEdits: { mounts: [{ hostPath: '/opt/example', containerPath: '/x', ...extra }] } }] }, '/etc/cdi/a.json');
    expect(failure(() => editsFor('a.com/d=x', [mount({ type: 'tmpfs' })])).message).toContain('mount type "tmpfs" is not supported');
    expect(failure(() => editsFor('a.com/d=x', [mount({ options: ['bind', 'x-weird'] })])).message).toContain('mount option "x-weird" is not supported');
  });

  test('intelRdt and netDevices are refused, not silently dropped', () => {
    const spec = asLoaded({ cdiVersion: '1.1.0', kind: 'a.com/d', devices: [{ name: 'x', containerEdits: { netDevices: [{ hostInterfaceName: 'ib0', name: 'ib0' }] } }] }, '/etc/cdi/a.json');
    expect(failure(() => editsFor('a.com/d=x', [spec]))).toMatchObject({ kind: 'node', code: 'E_CDI_UNSUPPORTED' });
  });

  test('two specs mapping one container device path to different host devices', () => {
    const a = asLoaded({ cdiVersion: '0.5.0', kind: 'a.com/d', devices: [{ name: 'x', containerEdits: { deviceNodes: [{ path: '/dev/gpu', hostPath: '/dev/nvidia0' }] } }] }, '/etc/cdi/a.json');
    const b = asLoaded({ cdiVersion: '0.5.0', kind: 'b.com/d', devices: [{ name: 'y', containerEdits: { deviceNodes: [{ path: '/dev/gpu', hostPath: '/dev/nvidia1' }] } }] }, '/etc/cdi/b.json');
    expect(failure(() => editsFor('a.com/d=x,b.com/d=y', [a, b]))).toMatchObject({ kind: 'node', code: 'E_CDI_CONFLICT' });
  });
});

describe('an example.com/gpu spec', () => {
  const spec = () => asLoaded(exampleGpuSpec({ nodes: ['/dev/nvidia0', '/dev/nvidia1'], share: '/opt/example' }), '/etc/cdi/example.json');

  test('device env, common env with LD_LIBRARY_PATH, groups without 0, and a read-only share', () => {
    const result = editsFor('example.com/gpu=all', [spec()]);
    expect(result.env).toEqual(['EXAMPLE_GPU_0=present', 'EXAMPLE_GPU_1=present', 'EXAMPLE_SDK=/opt/example', 'LD_LIBRARY_PATH=/opt/example/lib']);
    expect(result.additionalGids).toEqual([4242]);
    expect(result.mounts[0]).toMatchObject({ containerPath: '/opt/example', readonly: true, recursive: true, sourceKind: 'dir', flags: ['nosuid', 'nodev'] });
    expect(result.deviceNodes.map((node) => [node.path, node.hostPath])).toEqual([['/dev/example0', '/dev/nvidia0'], ['/dev/example1', '/dev/nvidia1']]);
  });

  test('a spec may keep dev (and suid) on a mount by asking for it', () => {
    const raw = exampleGpuSpec({ nodes: ['/dev/nvidia0'], share: '/opt/example' }) as { containerEdits: { mounts: { options: string[] }[] } };
    raw.containerEdits.mounts[0].options = ['rw', 'bind', 'dev', 'noexec'];
    const [mount] = editsFor('example.com/gpu=gpu0', [asLoaded(raw, '/etc/cdi/example.json')]).mounts;
    expect(mount).toMatchObject({ readonly: false, recursive: false, flags: ['nosuid', 'noexec'] });
  });
});
