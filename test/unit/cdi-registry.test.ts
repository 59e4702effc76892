// Which devices a node offers (spec directories, clashes) and how a request resolves to them; the
// error kind decides whether the job fails (user) or the node is drained (node).

import { chmodSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { StrataError } from '../../src/errors.js';
import { loadSpecDirs } from '../../src/runtime/devices/load.js';
import { parseQualifiedName, type QualifiedName } from '../../src/runtime/devices/names.js';
import { buildRegistry, resolveDevices, type DeviceRegistry } from '../../src/runtime/devices/registry.js';
import { cleanupCdi, tempDir, writeSpecs } from '../helpers/cdi-host.js';
import { exampleGpuSpec } from '../helpers/cdi-specs.js';

const uid = process.getuid!();
const spec = (kind: string, names: string[], env = 'FROM=x') => ({ cdiVersion: '0.6.0', kind, devices: names.map((name) => ({ name, containerEdits: { env: [env] } })) });
const names = (text: string): QualifiedName[] => text.split(',').map((entry) => parseQualifiedName(entry) as QualifiedName);

let root: string;
let low: string;
let high: string;
beforeEach(() => {
  root = tempDir();
  low = join(root, 'etc-cdi');
  high = join(root, 'run-cdi');
});
afterEach(() => cleanupCdi(root));

const registryOf = (dirs = [low, high]): DeviceRegistry => {
  const { specs, problems } = loadSpecDirs(dirs, { trustedUid: uid });
  return buildRegistry(specs, problems, dirs);
};

function thrown(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return error as StrataError;
  }
  throw new Error('expected an error');
}

describe('loading spec directories', () => {
  test('JSON and YAML files are read; other files, sub-directories and missing dirs are not', () => {
    writeSpecs(low, { 'a.json': spec('a.com/x', ['one']), 'b.yaml': 'cdiVersion: 0.6.0\nkind: b.com/y\ndevices:\n  - name: two\n    containerEdits:\n      env: [A=1]\n', 'c.yml': 'not read', 'README': 'no' });
    mkdirSync(join(low, 'sub.json'));
    const registry = registryOf([low, high, join(root, 'missing')]);
    expect([...registry.devices.keys()]).toEqual(['a.com/x=one', 'b.com/y=two']);
    expect(registry.problems).toEqual([]);
  });

  test('a broken file is a problem with its path and does not hide the good ones', () => {
    const [bad] = writeSpecs(low, { 'bad.yaml': 'cdiVersion: 0.6.0\nkind: nokind\ndevices: []\n', 'good.json': spec('a.com/x', ['one']) });
    const registry = registryOf();
    expect([...registry.devices.keys()]).toEqual(['a.com/x=one']);
    expect(registry.problems).toEqual([{ path: bad, message: expect.stringContaining('spec.kind') }]);
  });

  test('a spec that others may write, or owned by someone else, is not used', () => {
    const [open] = writeSpecs(low, { 'open.json': spec('a.com/x', ['one']) });
    chmodSync(open, 0o666);
    const registry = registryOf([low]);
    expect(registry.devices.size).toBe(0);
    expect(registry.problems[0]).toMatchObject({ path: open, message: expect.stringMatching(/mode 666; a spec must be owned by uid \d+ and writable by its owner only/) });
    chmodSync(open, 0o644);
    expect(loadSpecDirs([low], { trustedUid: uid + 1 }).problems[0].message).toMatch(new RegExp(`owned by uid ${uid} `));
  });

  test('a symlinked spec file is read through the link', () => {
    const [target] = writeSpecs(join(root, 'elsewhere'), { 'x.json': spec('a.com/x', ['one']) });
    mkdirSync(low);
    symlinkSync(target, join(low, 'x.json'));
    expect([...registryOf().devices.keys()]).toEqual(['a.com/x=one']);
  });
});

describe('clashes between specs (the CDI rule)', () => {
  test('a device in a later directory wins over the same name in an earlier one', () => {
    writeSpecs(low, { 'vendor.json': spec('a.com/x', ['one', 'two'], 'FROM=etc') });
    const [winner] = writeSpecs(high, { 'vendor.json': spec('a.com/x', ['one'], 'FROM=run') });
    const registry = registryOf();
    expect(registry.devices.get('a.com/x=one')?.spec.path).toBe(winner);
    expect(registry.devices.get('a.com/x=two')?.device.containerEdits.env).toEqual(['FROM=etc']);
    expect(registry.problems).toEqual([]);
  });

  test('two specs of the same directory defining one name: neither is used, both are reported, the request drains', () => {
    const [first, second] = writeSpecs(low, { '1.json': spec('a.com/x', ['one', 'solo']), '2.json': spec('a.com/x', ['one']) });
    const registry = registryOf();
    expect([...registry.devices.keys()]).toEqual(['a.com/x=solo']);
    expect(registry.problems.map((p) => p.path).sort()).toEqual([first, second]);
    const error = thrown(() => resolveDevices(registry, names('a.com/x=one')));
    expect(error).toMatchObject({ kind: 'node', code: 'E_CDI_CONFLICT' });
    expect(error.message).toContain(first);
  });
});

describe('resolving requests', () => {
  beforeEach(() => {
    writeSpecs(low, { 'example.json': exampleGpuSpec({ nodes: ['/dev/null', '/dev/zero'], share: '/usr/share' }) });
  });

  test('named devices resolve in request order, each once', () => {
    const devices = resolveDevices(registryOf(), names('example.com/gpu=gpu1,example.com/gpu=gpu0,example.com/gpu=gpu1'));
    expect(devices.map((d) => d.name)).toEqual(['gpu1', 'gpu0']);
  });

  test('kind=all is every device of the kind when the spec defines no `all`', () => {
    expect(resolveDevices(registryOf(), names('example.com/gpu=all')).map((d) => d.name)).toEqual(['gpu0', 'gpu1']);
  });

  test("kind=all is the spec's own `all` device when it defines one", () => {
    writeSpecs(high, { 'v.json': spec('v.com/g', ['0', '1', 'all']) });
    expect(resolveDevices(registryOf(), names('v.com/g=all')).map((d) => d.name)).toEqual(['all']);
  });

  test('a device the kind does not have fails the job, naming the device, the spec file and what it offers', () => {
    const error = thrown(() => resolveDevices(registryOf(), names('example.com/gpu=gpu7')));
    expect(error).toMatchObject({ kind: 'user', code: 'E_DEVICE_UNKNOWN' });
    expect(error.message).toBe(`device example.com/gpu=gpu7 is not offered on this node: ${join(low, 'example.json')} defines example.com/gpu devices gpu0, gpu1`);
  });

  test('a kind no spec defines fails the job, naming the spec directories', () => {
    const error = thrown(() => resolveDevices(registryOf(), names('nvidia.com/gpu=0')));
    expect(error).toMatchObject({ kind: 'user', code: 'E_DEVICE_UNKNOWN' });
    expect(error.message).toContain(`no CDI spec in ${low}, ${high} defines kind nvidia.com/gpu`);
  });

  test('an unknown device on a node with a broken spec is the node\'s fault (the broken file may define it)', () => {
    writeSpecs(high, { 'nvidia.yaml': 'cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices: [' });
    const error = thrown(() => resolveDevices(registryOf(), names('nvidia.com/gpu=0')));
    expect(error).toMatchObject({ kind: 'node', code: 'E_CDI_SPEC' });
    expect(error.message).toContain(join(high, 'nvidia.yaml'));
    // Devices of healthy specs still resolve.
    expect(resolveDevices(registryOf(), names('example.com/gpu=gpu0'))).toHaveLength(1);
  });
});
