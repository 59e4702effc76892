import { StrataError } from '../../src/errors.js';
import { expectUserError } from '../helpers/errors.js';
import { normalise, parseMountRequests } from '../../src/runtime/job/request.js';

function refused(spec: string): StrataError {
  return expectUserError(() => parseMountRequests(spec), 'E_BAD_MOUNT');
}

describe('parseMountRequests: accepted forms', () => {
  test.each([undefined, '', '   '])('%j means no mounts', (spec) => {
    expect(parseMountRequests(spec)).toEqual([]);
  });

  test('SRC mounts at the same path, read-write', () => {
    expect(parseMountRequests('/lustre/proj')).toEqual([{ source: '/lustre/proj', target: '/lustre/proj', readonly: false, optional: false, recursive: false }]);
  });

  test('SRC:DST', () => {
    expect(parseMountRequests('/lustre/proj:/data')).toEqual([{ source: '/lustre/proj', target: '/data', readonly: false, optional: false, recursive: false }]);
  });

  test('SRC:DST:ro and SRC:DST:rw', () => {
    expect(parseMountRequests('/lustre/proj:/data:ro')[0]).toMatchObject({ source: '/lustre/proj', target: '/data', readonly: true });
    expect(parseMountRequests('/lustre/proj:/data:rw')[0]).toMatchObject({ source: '/lustre/proj', target: '/data', readonly: false });
  });

  test('a comma-separated list keeps its order; spaces around entries are ignored', () => {
    const mounts = parseMountRequests(' /a:/x:ro , /b ,/c:/z ');
    expect(mounts.map((m) => [m.source, m.target, m.readonly])).toEqual([
      ['/a', '/x', true],
      ['/b', '/b', false],
      ['/c', '/z', false],
    ]);
  });

  test('paths are normalised: duplicate slashes, "." and trailing slashes go', () => {
    expect(parseMountRequests('/lustre//proj/./a/:/data/./x/')[0]).toMatchObject({ source: '/lustre/proj/a', target: '/data/x' });
  });

  test('user mounts are never optional and never recursive', () => {
    for (const mount of parseMountRequests('/a,/b:/c:ro')) {
      expect(mount.optional).toBe(false);
      expect(mount.recursive).toBe(false);
    }
  });

  test.each(['/etc/myapp', '/usr/local/share/x', '/var/tmp/x', '/run/user/1000', '/opt', '/home/alice', '/tmp', '/procfs', '/devel'])(
    'target %s is allowed (only the system directories themselves, and anything under /proc, /sys, /dev, are protected)',
    (target) => {
      expect(parseMountRequests(`/src:${target}`)[0].target).toBe(target);
    },
  );
});

describe('parseMountRequests: refused forms', () => {
  test.each([
    ['relative source', 'data', '"data" is not an absolute path'],
    ['relative target', '/lustre/x:data', '"data" is not an absolute path'],
    ['relative with ./ and no working directory to start from', './x:/data', 'is relative, and there is no job working directory'],
    ['".." in the source', '/lustre/../etc/shadow:/x', 'contains ".."'],
    ['".." in the target', '/lustre/x:/data/../etc', 'contains ".."'],
    ['trailing ".."', '/lustre/x:/data/..', 'contains ".."'],
    ['unknown flag', '/a:/b:rx', 'unknown flag "rx"'],
    ['upper-case flag', '/a:/b:RO', 'unknown flag "RO"'],
    ['empty flag', '/a:/b:', 'unknown flag ""'],
    ['empty target', '/a::ro', 'is not an absolute path'],
    ['too many colons', '/a:/b:ro:extra', 'too many ":"'],
  ])('%s', (_, spec, why) => {
    const error = refused(spec);
    expect(error.message).toContain(`"${spec}"`);
    expect(error.message).toContain(why);
    expect(error.message).toContain('--container-mounts');
    expect(error.hint).toMatch(/SRC\[:DST\[:ro\|rw\]\]|absolute path|flags strata accepts/);
  });

  test.each(['/a,,/b', '/a,', ',/a', ', ,/a'])('an empty entry in %j is refused', (spec) => {
    const error = refused(spec);
    expect(error.message).toContain('empty entry');
    expect(error.message).toContain(spec);
  });

  test('the error names the bad entry, not its good neighbours', () => {
    const error = refused('/ok1:/x,/bad:/y:maybe,/ok2');
    expect(error.message).toContain('"/bad:/y:maybe"');
    expect(error.message).not.toContain('ok1');
  });

  test.each(['/', '/etc', '/etc/', '/proc', '/proc/x', '/proc/self/fd', '/sys', '/sys/fs/cgroup', '/dev', '/dev/shm', '/usr', '/bin', '/sbin', '/lib', '/lib64', '/var', '/run', '//etc', '/./etc', '/etc/.'])(
    'target %s would cover a system directory',
    (target) => {
      const error = refused(`/lustre/x:${target}`);
      expect(error.message).toContain('system directory');
      expect(error.message).toContain(`"${target}"`);
    },
  );

  test('a protected path given as SRC alone is refused too (it is also the target)', () => {
    expect(refused('/etc').message).toContain('system directory');
    expect(refused('/dev/shm').message).toContain('system directory');
  });

  test('one bad entry refuses the whole list', () => {
    expect(() => parseMountRequests('/a:/x,/b:/etc')).toThrow(StrataError);
  });
});

describe("Pyxis's mount syntax (ported from Pyxis's tests/mounts.bats and invalid_args.bats)", () => {
  test('relative sources start from the job\'s working directory (./file, ./, ../x)', () => {
    const at = { relativeTo: '/home/alice/run' };
    expect(parseMountRequests('./tests/mounts.bats:/script.bats', at)[0]).toMatchObject({ source: '/home/alice/run/tests/mounts.bats', target: '/script.bats' });
    expect(parseMountRequests('./:/test-mnt', at)[0]).toMatchObject({ source: '/home/alice/run', target: '/test-mnt' });
    expect(parseMountRequests('../data:/data:ro', at)[0]).toMatchObject({ source: '/home/alice/data', target: '/data', readonly: true });
    expect(parseMountRequests('./:/test-mnt,/dev/null:/null,/home:/host/home', at).map((m) => m.source)).toEqual(['/home/alice/run', '/dev/null', '/home']);
  });

  test.each([
    ['ro+rprivate', true],
    ['rprivate+ro', true],
    ['rw+rslave+nosuid+nodev', false],
    ['x-create=auto+ro', true],
    ['bind', false],
  ])('flags %s are accepted (what strata binds are anyway)', (flags, readonly) => {
    expect(parseMountRequests(`/tmp:/mnt:${flags}`)[0]).toMatchObject({ source: '/tmp', target: '/mnt', readonly, recursive: false });
  });

  test.each([
    ['/tmp:/mnt:unbindable+ro', 'strata does not support the mount flag "unbindable"'],
    ['/tmp:/mnt:ro+rbind', 'strata does not support the mount flag "rbind"'],
    ['/tmp:/mnt:ro+noexec', 'strata does not support the mount flag "noexec"'],
    ['/tmp:/mnt:rshared', 'strata does not support the mount flag "rshared"'],
    ['/tmp:/mnt:x-detach', 'unknown flag "x-detach"'],
    ['/tmp:/mnt:ro+rw', 'both ro and rw'],
    ['tmpfs:/mytmpfs', '"tmpfs" mounts are not supported by strata'],
    ['tmpfs:/mytmpfs:huge=within_size', '"tmpfs" mounts are not supported by strata'],
    ['umount:/mnt', '"umount" mounts are not supported by strata'],
    ['devpts:/mydevpts:ro', '"devpts" is not an absolute path'],
    ['/tmp:mnt:ro', '"mnt" is not an absolute path'],
    ['/home:../home', '"../home" is not an absolute path'],
    [':', '"" is not an absolute path'],
    ['/tmp:', '"" is not an absolute path'],
  ])('%s is refused: %s', (spec, why) => {
    const error = expectUserError(() => parseMountRequests(spec, { relativeTo: '/w' }), 'E_BAD_MOUNT');
    expect(error.message).toContain(why);
    expect(error.hint).toBeTruthy();
    expect(error.summary).not.toContain('\n');
  });
});

describe('normalise', () => {
  test.each([
    ['/', '/'],
    ['/a/', '/a'],
    ['/a//b/./c/', '/a/b/c'],
    ['/a/b/../c', '/a/c'],
  ])('%s → %s', (input, output) => {
    expect(normalise(input)).toBe(output);
  });
});
