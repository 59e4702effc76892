// NVIDIA's CDI hooks read as typed actions strata carries out itself; anything else is an
// external program (refused by default, elsewhere). Malformed arguments are the spec's fault.

import { classifyHook } from '../../src/runtime/devices/hooks.js';

const cdiHook = (...args: string[]) => classifyHook({ hookName: 'createContainer', path: '/usr/bin/nvidia-cdi-hook', args: ['nvidia-cdi-hook', ...args] });
const action = (result: ReturnType<typeof classifyHook>) => {
  if ('problem' in result) throw new Error(result.problem);
  return result.action;
};

describe('NVIDIA hooks as actions', () => {
  test('create-symlinks: each --link TARGET::LINK', () => {
    expect(action(cdiHook('create-symlinks', '--link', 'libcuda.so.1::/usr/lib/x86_64-linux-gnu/libcuda.so', '--link=../bin/x::/usr//local/bin/x/'))).toEqual({
      kind: 'create-symlinks',
      links: [
        { target: 'libcuda.so.1', link: '/usr/lib/x86_64-linux-gnu/libcuda.so' },
        { target: '../bin/x', link: '/usr/local/bin/x' },
      ],
    });
  });

  test('update-ldcache: the folders; the host ldconfig path is not used', () => {
    expect(action(cdiHook('update-ldcache', '--ldconfig-path', '/sbin/ldconfig.real', '--folder', '/usr/lib/x86_64-linux-gnu', '--folder', '/usr/lib/x86_64-linux-gnu/vdpau'))).toEqual({ kind: 'update-ldcache', folders: ['/usr/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu/vdpau'] });
  });

  test('enable-cuda-compat: host driver version and the default compat root', () => {
    expect(action(cdiHook('enable-cuda-compat', '--host-driver-version=550.54.15'))).toEqual({ kind: 'enable-cuda-compat', compatRoot: '/usr/local/cuda/compat', hostDriverVersion: '550.54.15' });
  });

  test('disable-device-node-modification and chmod', () => {
    expect(action(cdiHook('disable-device-node-modification'))).toEqual({ kind: 'disable-device-node-modification' });
    expect(action(cdiHook('chmod', '--mode', '755', '--path', '/dev/dri'))).toEqual({ kind: 'chmod', mode: 0o755, paths: ['/dev/dri'] });
  });

  test('the older `nvidia-ctk hook SUBCOMMAND` spelling is the same hook', () => {
    expect(action(classifyHook({ hookName: 'createContainer', path: '/usr/bin/nvidia-ctk', args: ['nvidia-ctk', 'hook', 'update-ldcache', '--folder', '/lib64'] }))).toEqual({ kind: 'update-ldcache', folders: ['/lib64'] });
  });

  test('update-application-profile is known and skipped, with the reason', () => {
    expect(action(cdiHook('update-application-profile'))).toMatchObject({ kind: 'skipped', name: 'update-application-profile' });
  });

  test.each([
    [['create-symlinks', '--link', 'nolink'], /not TARGET::\/absolute\/link/],
    [['create-symlinks', '--link', 'x::../../etc/passwd'], /not TARGET::\/absolute\/link/],
    [['update-ldcache', '--folder', '/usr/../../etc'], /without "\.\."/],
    [['update-ldcache', '--container-spec', '/tmp/spec.json'], /unknown option --container-spec/],
    [['chmod', '--mode', 'u+x', '--path', '/x'], /not an octal mode/],
    [['enable-cuda-compat', '--host-driver-version', '550; rm'], /is not a version/],
    [['update-ldcache', '--folder'], /--folder needs a value/],
    [['disable-device-node-modification', 'extra'], /unexpected argument "extra"/],
  ])('%j is a problem with the spec', (args, message) => {
    const result = cdiHook(...args);
    expect('problem' in result && result.problem).toMatch(message);
  });
});

describe('other hooks are external', () => {
  test('any other program, with its arguments, env and timeout', () => {
    expect(action(classifyHook({ hookName: 'createRuntime', path: '/usr/libexec/vendor-hook', args: ['vendor-hook', 'setup'], env: ['A=1'], timeout: 5 }))).toEqual({ kind: 'external', hookName: 'createRuntime', path: '/usr/libexec/vendor-hook', args: ['vendor-hook', 'setup'], env: ['A=1'], timeout: 5 });
  });

  test('an NVIDIA subcommand newer than strata is external too (so a site can allow it)', () => {
    expect(action(cdiHook('future-hook', '--x'))).toMatchObject({ kind: 'external', path: '/usr/bin/nvidia-cdi-hook' });
  });
});
