// CDI edits as plan steps (src/runtime/job/devices-plan.ts) and sonames of mounted libraries: where each edit
// goes (before every bind, or after the host's /dev), what is never written (the host's trees),
// and the environment an entry gets.

import { NO_EDITS, type ContainerEdits } from '../../src/runtime/devices/edits.js';
import { withSonames } from '../../src/runtime/devices/index.js';
import { deviceEnv, missingGroupsNote, planDevices } from '../../src/runtime/job/devices-plan.js';
import { expectNodeError } from '../helpers/errors.js';

const ROOTFS = '/run/strata/jobs/1/rootfs';
const from = { device: 'nvidia.com/gpu=0', spec: '/etc/cdi/nvidia.yaml' };
const LIB = '/usr/lib/x86_64-linux-gnu';

const edits = (over: Partial<ContainerEdits>): ContainerEdits => ({ ...NO_EDITS, devices: ['nvidia.com/gpu=0'], ...over });
const node = (path: string, hostPath = path) => ({ ...from, path, hostPath, type: 'c' as const, major: 195, minor: 0, permissions: 'rwm' });
const mount = (hostPath: string, containerPath: string, soname?: string) => ({ ...from, hostPath, containerPath, sourceKind: 'file' as const, readonly: true, recursive: false, flags: ['nosuid', 'nodev'], ...(soname ? { soname } : {}) });

test('a /dev node is checked after the binds; a node elsewhere is bound in before them', () => {
  const plan = planDevices(ROOTFS, edits({ deviceNodes: [node('/dev/nvidia0'), node('/opt/dev/x', '/dev/nvidia0')] }));
  expect(plan.late).toEqual([{ op: 'device-node', rootfs: ROOTFS, path: '/dev/nvidia0', type: 'c', major: 195, minor: 0, ...from }]);
  expect(plan.early).toEqual([expect.objectContaining({ op: 'device-bind', source: '/dev/nvidia0', target: '/opt/dev/x', keepDev: true, create: true })]);
});

test('a /dev node at another host path is refused: the container /dev is the host one', () => {
  expectNodeError(() => planDevices(ROOTFS, edits({ deviceNodes: [node('/dev/nvidia0', '/srv/dev/nvidia0')] })), 'E_CDI_UNSUPPORTED');
});

test('mounts: targets in the image early and created; targets in /proc, /sys, /dev late and never created', () => {
  const plan = planDevices(ROOTFS, edits({ mounts: [mount('/usr/bin/nvidia-smi', '/usr/bin/nvidia-smi'), { ...mount('/run/params', '/proc/driver/nvidia/params'), flags: ['nosuid', 'noexec'] }] }));
  expect(plan.early).toEqual([expect.objectContaining({ target: '/usr/bin/nvidia-smi', readonly: true, keepDev: false, noexec: false, create: true })]);
  expect(plan.late).toEqual([expect.objectContaining({ target: '/proc/driver/nvidia/params', keepDev: true, noexec: true, create: false })]);
});

test('update-ldcache: the folders appended to LD_LIBRARY_PATH and soname links, no cache', () => {
  const plan = planDevices(ROOTFS, edits({
    mounts: [mount('/drv/libcuda.so.550.54.15', `${LIB}/libcuda.so.550.54.15`, 'libcuda.so.1'), mount('/drv/libfoo.so.1', `${LIB}/libfoo.so.1`, 'libfoo.so.1'), mount('/drv/libbar.so.2.0', '/elsewhere/libbar.so.2.0', 'libbar.so.2')],
    env: ['NVIDIA_VISIBLE_DEVICES=void'],
    hooks: [{ ...from, action: { kind: 'update-ldcache', folders: [LIB] } }, { ...from, action: { kind: 'create-symlinks', links: [{ target: 'libcuda.so.1', link: `${LIB}/libcuda.so` }] } }],
  }));
  const links = plan.early.filter((step) => step.op === 'symlink');
  expect(links).toEqual([
    expect.objectContaining({ link: `${LIB}/libcuda.so.1`, target: 'libcuda.so.550.54.15' }),
    expect.objectContaining({ link: `${LIB}/libcuda.so`, target: 'libcuda.so.1' }),
  ]);
  expect(deviceEnv(['PATH=/bin', 'LD_LIBRARY_PATH=/opt/lib', 'NVIDIA_VISIBLE_DEVICES=all'], plan)).toEqual(['PATH=/bin', `LD_LIBRARY_PATH=/opt/lib:${LIB}`, 'NVIDIA_VISIBLE_DEVICES=void']);
  expect(deviceEnv(['PATH=/bin'], plan)).toContain(`LD_LIBRARY_PATH=${LIB}`);
});

test('nothing is written in the host trees: links and modes there are notes, not steps', () => {
  const plan = planDevices(ROOTFS, edits({
    hooks: [
      { ...from, action: { kind: 'create-symlinks', links: [{ target: 'x', link: '/dev/char/195:0' }] } },
      { ...from, action: { kind: 'chmod', mode: 0o755, paths: ['/dev/dri', '/opt/dri'] } },
      { ...from, action: { kind: 'disable-device-node-modification' } },
      { ...from, action: { kind: 'enable-cuda-compat', compatRoot: '/usr/local/cuda/compat', hostDriverVersion: '550.54.15' } },
    ],
  }));
  expect(plan.early).toEqual([{ op: 'chmod', rootfs: ROOTFS, path: '/opt/dri', mode: 0o755, ...from }]);
  expect(plan.late).toEqual([]);
  expect(plan.notes).toHaveLength(4);
});

test('a hook program is refused even where the site lets the spec load', () => {
  const external = { ...from, action: { kind: 'external' as const, hookName: 'createContainer', path: '/usr/bin/x', args: [], env: [] } };
  expectNodeError(() => planDevices(ROOTFS, edits({ hooks: [external] })), 'E_CDI_HOOK');
});

test('additional groups and no env change without device env', () => {
  const plan = planDevices(ROOTFS, edits({ additionalGids: [44, 109] }));
  expect(plan.additionalGids).toEqual([44, 109]);
  expect(plan.notes).toEqual([expect.stringMatching(/^additionalGIDs 44,109: recorded in entry.json, not given/)]);
  expect(deviceEnv(['B=1', 'A=2', 'B=3'], plan)).toEqual(['B=1', 'A=2', 'B=3']);
});

test('additionalGIDs the user lacks are named for the admin; none when the user has them all', () => {
  expect(missingGroupsNote(1000, [44, 109], [1000, 44])).toMatch(/^additionalGIDs: uid 1000 is not in group 109, .*may be denied/);
  expect(missingGroupsNote(1000, [44], [1000, 44])).toBeUndefined();
  expect(missingGroupsNote(1000, [], undefined)).toBeUndefined();
  expect(missingGroupsNote(1000, [44], undefined)).toMatch(/name service did not answer/);
});

test('withSonames only asks for .so files (readSoname on a gcc-built library: test/integration/devices-soname)', () => {
  const asked: string[] = [];
  const out = withSonames(edits({ mounts: [mount('/drv/libcuda.so.550', '/x/libcuda.so.550'), mount('/drv/nvidia-smi', '/usr/bin/nvidia-smi')] }), (path) => (asked.push(path), 'libcuda.so.1'));
  expect(asked).toEqual(['/drv/libcuda.so.550']);
  expect(out.mounts.map((m) => m.soname)).toEqual(['libcuda.so.1', undefined]);
});
