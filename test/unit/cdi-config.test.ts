// The devices.* keys of strata.yaml: defaults, and every bad value reported with what is allowed.

import { validateConfig } from '../../src/config/validate.js';

const devices = (value: Record<string, unknown>) => validateConfig({ devices: value }, 'test');

describe('devices configuration', () => {
  test('defaults: the CDI standard directories, no default requests, no auto all, no unknown hooks', () => {
    expect(validateConfig({}, 'test').config?.devices).toEqual({ specDirs: ['/etc/cdi', '/var/run/cdi'], defaultRequests: [], autoAll: false, allowUnknownHooks: false });
  });

  test('a site list of spec dirs (normalised) and default requests', () => {
    const { config, errors } = devices({ spec_dirs: ['/opt/cdi/', '/run/cdi'], default_requests: ['example.com/ib=all'], auto_all: 'yes', allow_unknown_hooks: true });
    expect(errors).toEqual([]);
    expect(config?.devices).toEqual({ specDirs: ['/opt/cdi', '/run/cdi'], defaultRequests: ['example.com/ib=all'], autoAll: true, allowUnknownHooks: true });
  });

  test.each([
    [{ spec_dirs: '/etc/cdi' }, 'devices.spec_dirs: expected a list, got "/etc/cdi"; use a list of absolute paths'],
    [{ spec_dirs: ['/etc/cdi', 'cdi'] }, 'devices.spec_dirs[1]: "cdi" is not an absolute path; use a list of absolute paths'],
    [{ default_requests: ['nvidia.com/gpu'] }, 'devices.default_requests[0]: "nvidia.com/gpu" is not a CDI device name; use a list of CDI device names like vendor.com/class=name'],
    [{ allow_unknown_hook: true }, 'devices.allow_unknown_hook: unknown key; did you mean devices.allow_unknown_hooks?'],
  ])('%j is refused', (value, message) => {
    expect(devices(value).errors).toEqual([message]);
  });
});
