// CDI spec files: what is accepted in each spec version, and that every broken spec is reported
// with where the problem is (the admin reads this in `strata doctor`).

import { parseSpecText } from '../../src/runtime/devices/load.js';
import { CDI_VERSIONS } from '../../src/runtime/devices/spec-types.js';
import { validateSpec } from '../../src/runtime/devices/spec-validate.js';
import { exampleGpuSpec, nvidiaSpecYaml } from '../helpers/cdi-specs.js';

const minimal = (version: string, extra: Record<string, unknown> = {}) => ({
  cdiVersion: version,
  kind: 'vendor.com/device',
  devices: [{ name: 'dev0', containerEdits: { deviceNodes: [{ path: '/dev/vendor0' }] } }],
  ...extra,
});

const problems = (raw: unknown) => {
  const result = validateSpec(raw);
  if (!result.errors) throw new Error('expected the spec to be refused');
  return result.errors.join('\n');
};

describe('valid specs', () => {
  test.each(CDI_VERSIONS.map((v) => [v]))('a minimal spec of version %s is accepted', (version) => {
    const result = validateSpec(minimal(version));
    expect(result.errors).toBeUndefined();
    expect(result).toMatchObject({ vendor: 'vendor.com', class: 'device' });
  });

  test('"v" before the version is accepted, as the reference loader does', () => {
    expect(validateSpec(minimal('v0.6.0')).errors).toBeUndefined();
  });

  test.each([
    ['0.4.0', { mounts: [{ hostPath: '/a', containerPath: '/b', type: 'bind' }] }],
    ['0.5.0', { deviceNodes: [{ path: '/dev/x', hostPath: '/dev/y' }] }],
    ['0.7.0', { additionalGids: [44] }],
    ['1.1.0', { netDevices: [{ hostInterfaceName: 'ib0', name: 'ib0' }] }],
  ])('a field added in %s is accepted from that version on', (version, edits) => {
    expect(validateSpec(minimal(version, { containerEdits: edits })).errors).toBeUndefined();
    const later = CDI_VERSIONS[CDI_VERSIONS.indexOf(version as never) + 1];
    if (later) expect(validateSpec(minimal(later, { containerEdits: edits })).errors).toBeUndefined();
  });

  test('the nvidia-ctk-shaped YAML spec parses, with its devices, hooks and mounts', () => {
    const loaded = parseSpecText(nvidiaSpecYaml({ devRoot: '/dev', driverDir: '/usr/lib/x86_64-linux-gnu', gpus: 2 }), '/etc/cdi/nvidia.yaml', 0);
    if (!('spec' in loaded)) throw new Error(loaded.message);
    expect(loaded.spec.devices.map((d) => d.name)).toEqual(['0', '1', 'all']);
    expect(loaded.spec.containerEdits?.hooks).toHaveLength(4);
    expect(loaded.spec.containerEdits?.deviceNodes?.map((n) => n.path)).toEqual(['/dev/nvidiactl', '/dev/nvidia-uvm']);
    expect(loaded.spec.containerEdits?.mounts?.[0].options).toEqual(['ro', 'nosuid', 'nodev', 'rbind', 'rprivate']);
  });

  test('the example.com/gpu fixture is valid as JSON', () => {
    const text = JSON.stringify(exampleGpuSpec({ nodes: ['/dev/null'], share: '/usr/share' }));
    expect(parseSpecText(text, '/etc/cdi/example.json', 1)).toMatchObject({ vendor: 'example.com', class: 'gpu', priority: 1 });
  });
});

describe('broken specs are refused with where the problem is', () => {
  test.each<[string, unknown, RegExp]>([
    ['not a mapping', ['a'], /^spec: expected a mapping/],
    ['no kind', { cdiVersion: '0.5.0', devices: minimal('0.5.0').devices }, /spec\.kind: is required/],
    ['a kind without a class', minimal('0.5.0', { kind: 'vendor.com' }), /spec\.kind: "vendor\.com": a kind is vendor\.com\/class/],
    ['a vendor that is not a DNS name', minimal('0.5.0', { kind: 'ven_dor/x' }), /not a DNS name/],
    ['an unknown version', minimal('0.9.0'), /"0\.9\.0" is not a CDI version strata knows/],
    ['a version newer than strata knows', minimal('1.2.0'), /not a CDI version strata knows \(0\.1\.0 to 1\.1\.0\)/],
    ['an unknown top-level field', minimal('0.5.0', { device: [] }), /spec\.device: unknown field/],
    ['no devices', minimal('0.5.0', { devices: [] }), /at least one device/],
    ['a device whose edits are null (YAML `containerEdits:` left empty)', minimal('0.5.0', { devices: [{ name: 'x', containerEdits: null }] }), /devices\[0\]\.containerEdits: is required/],
    ['a device with nothing to edit', minimal('0.5.0', { devices: [{ name: 'x', containerEdits: {} }] }), /must edit something/],
    ['a device name with a slash', minimal('0.5.0', { devices: [{ name: 'a/b', containerEdits: { env: ['A=1'] } }] }), /devices\[0\]\.name: "a\/b"/],
    ['a device defined twice', minimal('0.5.0', { devices: [{ name: 'x', containerEdits: { env: ['A=1'] } }, { name: 'x', containerEdits: { env: ['A=1'] } }] }), /device "x" is defined twice/],
    ['an env entry without =', minimal('0.5.0', { containerEdits: { env: ['JUSTANAME'] } }), /containerEdits\.env\[0\]: expected NAME=VALUE/],
    ['a relative mount path', minimal('0.5.0', { containerEdits: { mounts: [{ hostPath: 'lib', containerPath: '/lib' }] } }), /mounts\[0\]\.hostPath: "lib" is not an absolute path/],
    ['a container path with ..', minimal('0.5.0', { containerEdits: { mounts: [{ hostPath: '/lib', containerPath: '/x/../../etc' }] } }), /contains "\.\."/],
    ['a bad device type', minimal('0.5.0', { containerEdits: { deviceNodes: [{ path: '/dev/x', type: 'x' }] } }), /type: expected one of b, c, u, p/],
    ['bad permissions', minimal('0.5.0', { containerEdits: { deviceNodes: [{ path: '/dev/x', permissions: 'rwx' }] } }), /permissions: expected letters of "rwm"/],
    ['a bad hook name', minimal('0.5.0', { containerEdits: { hooks: [{ hookName: 'beforeStart', path: '/bin/true' }] } }), /hookName: expected one of prestart/],
    ['a zero hook timeout', minimal('0.5.0', { containerEdits: { hooks: [{ hookName: 'createContainer', path: '/bin/true', timeout: 0 }] } }), /timeout: expected a whole number from 1/],
    ['a negative gid', minimal('0.7.0', { containerEdits: { additionalGids: [-1] } }), /additionalGids\[0\]: expected a whole number from 0/],
  ])('%s', (_, raw, expected) => {
    expect(problems(raw)).toMatch(expected);
  });

  test.each<[string, string, Record<string, unknown>, RegExp]>([
    ['mount type', '0.3.0', { containerEdits: { mounts: [{ hostPath: '/a', containerPath: '/b', type: 'bind' }] } }, /needs cdiVersion 0\.4\.0 or later, the spec says 0\.3\.0/],
    ['hostPath of a device node', '0.4.0', { containerEdits: { deviceNodes: [{ path: '/dev/x', hostPath: '/dev/y' }] } }, /hostPath: needs cdiVersion 0\.5\.0/],
    ['a device name starting with a digit', '0.4.0', { devices: [{ name: '0', containerEdits: { env: ['A=1'] } }] }, /starting with a digit\): needs cdiVersion 0\.5\.0/],
    ['annotations', '0.5.0', { annotations: { a: 'b' } }, /spec\.annotations: needs cdiVersion 0\.6\.0/],
    ['a dot in the class', '0.5.0', { kind: 'vendor.com/a.b' }, /needs cdiVersion 0\.6\.0/],
    ['additionalGids', '0.6.0', { containerEdits: { additionalGids: [5] } }, /needs cdiVersion 0\.7\.0/],
    ['netDevices', '1.0.0', { containerEdits: { netDevices: [{ hostInterfaceName: 'ib0', name: 'ib0' }] } }, /needs cdiVersion 1\.1\.0/],
  ])('%s in a spec that says an older version', (_, version, extra, expected) => {
    expect(problems(minimal(version, extra))).toMatch(expected);
  });

  test('every problem is reported, not just the first', () => {
    const text = problems(minimal('0.5.0', { kind: 'bad', extra: 1, containerEdits: { env: ['X'] } }));
    expect(text.split('\n')).toHaveLength(3);
  });

  test('YAML and JSON syntax errors name the file format', () => {
    expect(parseSpecText('cdiVersion: [', '/etc/cdi/a.yaml', 0)).toMatchObject({ path: '/etc/cdi/a.yaml', message: expect.stringMatching(/^not valid YAML/) });
    expect(parseSpecText('{', '/etc/cdi/a.json', 0)).toMatchObject({ message: expect.stringMatching(/^not valid JSON/) });
  });

  test('a key given twice in YAML is an error, not a silent override', () => {
    expect(parseSpecText('cdiVersion: 0.5.0\ncdiVersion: 0.6.0\nkind: a.com/b\ndevices: []\n', '/etc/cdi/a.yaml', 0)).toMatchObject({ message: expect.stringMatching(/duplicated mapping key/) });
  });
});
