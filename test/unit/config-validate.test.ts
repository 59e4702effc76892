import { formatSize, parseSize, toOnDisk, validateConfig, defaultConfig } from '../../src/config/validate.js';
import { SETTINGS } from '../../src/config/schema.js';
import type { Config } from '../../src/config/types.js';

const errorsOf = (raw: unknown) => validateConfig(raw, 'test.yaml').errors;
const ok = (raw: unknown): Config => {
  const { config, errors } = validateConfig(raw, 'test.yaml');
  expect(errors).toEqual([]);
  return config!;
};

describe('parseSize / formatSize', () => {
  test.each([
    ['4G', 4 * 2 ** 30],
    ['4GiB', 4 * 2 ** 30],
    ['4GB', 4 * 2 ** 30],
    ['4Gi', 4 * 2 ** 30],
    ['4g', 4 * 2 ** 30],
    ['512M', 512 * 2 ** 20],
    ['1K', 1024],
    ['2T', 2 * 2 ** 40],
    ['1.5G', 1.5 * 2 ** 30],
    ['1048576', 1048576],
    ['512B', 512],
    [' 16 G ', 16 * 2 ** 30],
    [0, 0],
    [4096, 4096],
  ])('parseSize(%j) = %d', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  test.each(['12X', '', 'G', '4i', '-1G', '1.5', '4 GG', 'lots', '1e3', '99999999999T'])('parseSize(%j) is not a size', (text) => {
    expect(parseSize(text)).toBeUndefined();
  });

  test.each([-1, 1.5, NaN, Infinity])('parseSize(%d) is not a size', (n) => {
    expect(parseSize(n)).toBeUndefined();
  });

  test('formatSize picks the largest exact unit and round-trips', () => {
    expect(formatSize(16 * 2 ** 30)).toBe('16G');
    expect(formatSize(1536 * 2 ** 20)).toBe('1536M');
    expect(formatSize(2 ** 40)).toBe('1T');
    expect(formatSize(1024)).toBe('1K');
    expect(formatSize(4097)).toBe('4097');
    expect(formatSize(0)).toBe('0');
    for (const bytes of [1, 1023, 1024, 3 * 2 ** 20, 5 * 2 ** 30 + 4096, 7 * 2 ** 40]) {
      expect(parseSize(formatSize(bytes))).toBe(bytes);
    }
  });
});

describe('defaults', () => {
  const expected: Config = {
    origin: 'built-in defaults',
    store: { path: '/var/lib/strata/store', gcGrace: 7 * 86400 },
    runtimeDir: '/run/strata',
    upper: { backing: 'tmpfs', diskPath: '/var/tmp/strata', defaultSize: 2 ** 30, maxSize: 16 * 2 ** 30 },
    layers: { cache: 'release', directIo: false },
    mounts: [],
    container: { hosts: true, resolvConf: true, hostname: true, localtime: true, tmpSize: 2 ** 30, saveTimeLimit: 90, mountHome: true, entrypoint: false, remapRoot: false, pytorchEnv: 'off' },
    slurmClient: { enabled: true, path: 'first', binDirs: ['/usr/local/bin', '/usr/bin'], libraryDirs: [] },
    log: { file: '/var/log/strata/strata.log', level: 'info', syslog: false },
    metrics: { textfile: '' },
    import: { compression: 'none', parallelLayers: 3, lustreStripeCount: 0, flattenAbove: 64, userImports: false, userQuota: 0, onDemand: false, recheckTags: 'never' },
    devices: { specDirs: ['/etc/cdi', '/var/run/cdi'], defaultRequests: [], autoAll: false, allowUnknownHooks: false },
  };

  test('an empty document gives every default', () => {
    expect(validateConfig(undefined, 'built-in defaults')).toEqual({ config: expected, errors: [] });
    expect(validateConfig(null, 'built-in defaults').config).toEqual(expected);
    expect(validateConfig({}, 'built-in defaults').config).toEqual(expected);
    expect(defaultConfig()).toEqual(expected);
  });

  test('defaults fill in around given keys, origin is recorded', () => {
    const config = ok({ upper: { max_size: '32G' }, log: { level: 'debug' } });
    expect(config.origin).toBe('test.yaml');
    expect(config.upper).toEqual({ ...expected.upper, maxSize: 32 * 2 ** 30 });
    expect(config.log).toEqual({ file: '/var/log/strata/strata.log', level: 'debug', syslog: false });
    expect(config.store).toEqual(expected.store);
  });

  test('an empty section (all keys commented out) means its defaults; so does an empty mounts list', () => {
    expect(ok({ upper: null, mounts: null }).upper).toEqual(expected.upper);
  });

  test('mount defaults: target = source, readonly true, optional false', () => {
    const config = ok({ mounts: [{ source: '/scratch' }, { source: '/opt/site/', target: '/site', readonly: 'no', optional: 'yes' }] });
    expect(config.mounts).toEqual([
      { source: '/scratch', target: '/scratch', readonly: true, optional: false },
      { source: '/opt/site', target: '/site', readonly: false, optional: true },
    ]);
  });

  test('every setting has a default, or is required or derived', () => {
    for (const s of SETTINGS) {
      if (s.default !== undefined || s.required || s.defaultFrom) continue;
      throw new Error(`${s.key} has no default`);
    }
  });

  test('the on-disk form reads back to the same config', () => {
    const config = ok({
      store: { path: '/lustre/strata' },
      upper: { backing: 'disk', default_size: '1536M', max_size: 4097 * 1024 * 1024 },
      mounts: [{ source: '/scratch', readonly: false }],
      log: { file: '' },
      import: { compression: 'lz4' },
    });
    const disk = toOnDisk(config);
    expect(disk).toMatchObject({ upper: { default_size: '1536M', disk_path: '/var/tmp/strata' }, runtime_dir: '/run/strata' });
    expect(validateConfig(disk, 'test.yaml').config).toEqual(config);
  });
});

describe('values', () => {
  test('booleans accept true/false/yes/no/1/0', () => {
    for (const [value, bool] of [[true, true], ['true', true], ['yes', true], ['1', true], [1, true], ['YES', true],
      [false, false], ['false', false], ['no', false], ['0', false], [0, false]] as const) {
      expect(ok({ mounts: [{ source: '/a', readonly: value }] }).mounts[0].readonly).toBe(bool);
    }
  });

  test('sizes accept integers (bytes) and suffixes', () => {
    expect(ok({ upper: { default_size: 1048576, max_size: '4GiB' } }).upper).toMatchObject({ defaultSize: 2 ** 20, maxSize: 4 * 2 ** 30 });
  });

  test('paths are normalised', () => {
    expect(ok({ runtime_dir: '/run//strata/', store: { path: '/lustre/./store/' } })).toMatchObject({
      runtimeDir: '/run/strata',
      store: { path: '/lustre/store' },
    });
  });

  test('log.file may be empty (no file)', () => {
    expect(ok({ log: { file: '' } }).log.file).toBe('');
  });
});

test('integers and durations', () => {
  expect(ok({ import: { parallel_layers: '8', flatten_above: 0 }, store: { gc_grace: '36h' } })).toMatchObject({ import: { parallelLayers: 8, flattenAbove: 0 }, store: { gcGrace: 36 * 3600 } });
  expect(ok({ store: { gc_grace: 90 } }).store.gcGrace).toBe(90);
  expect(toOnDisk(ok({ store: { gc_grace: '2d' } })).store).toMatchObject({ gc_grace: '2d' });
});

describe('errors', () => {
  test.each<[string, unknown, string]>([
    ['size', { upper: { max_size: '12X' } }, 'upper.max_size: "12X" is not a size; use a number of bytes or a size like 512M, 4G'],
    ['size too small', { upper: { default_size: 0 } }, 'upper.default_size: 0 is too small; use at least 1M'],
    ['size of wrong type', { upper: { max_size: true } }, 'upper.max_size: true is not a size; use a number of bytes or a size like 512M, 4G'],
    ['enum', { upper: { backing: 'ram' } }, 'upper.backing: "ram" is not allowed; use one of tmpfs, disk'],
    ['enum', { layers: { cache: 'forever' } }, 'layers.cache: "forever" is not allowed; use one of release, keep'],
    ['enum', { log: { level: 'warning' } }, 'log.level: "warning" is not allowed; use one of error, warn, info, debug'],
    ['enum', { import: { compression: 'bzip2' } }, 'import.compression: "bzip2" is not allowed; use one of zstd, lz4hc, lz4, gzip, xz, none'],
    ['integer', { import: { parallel_layers: 'many' } }, 'import.parallel_layers: "many" is not a whole number; use a whole number of at least 1'],
    ['integer too small', { import: { parallel_layers: 0 } }, 'import.parallel_layers: 0 is too small; use a whole number of at least 1'],
    ['integer fraction', { import: { flatten_above: 2.5 } }, 'import.flatten_above: 2.5 is not a whole number; use a whole number of at least 0'],
    ['duration', { store: { gc_grace: '3 weeks' } }, 'store.gc_grace: "3 weeks" is not a duration; use a number of seconds or a duration like 90s, 30m, 12h, 7d'],
    ['relative path', { store: { path: 'strata/store' } }, 'store.path: "strata/store" is not an absolute path; use an absolute path'],
    ['relative path', { upper: { disk_path: 'tmp' } }, 'upper.disk_path: "tmp" is not an absolute path; use an absolute path without "," or ":"'],
    ['path type', { runtime_dir: 42 }, 'runtime_dir: expected a path, got 42; use an absolute path without "," or ":"'],
    ['path char', { runtime_dir: '/run/a:b' }, 'runtime_dir: "/run/a:b" contains ":"; use an absolute path without "," or ":"'],
    ['relative log file', { log: { file: 'strata.log' } }, 'log.file: "strata.log" is not an absolute path; use an absolute path, or "" for none'],
    ['empty path', { store: { path: '' } }, 'store.path: "" is not an absolute path; use an absolute path'],
    ['boolean', { mounts: [{ source: '/a', readonly: 'maybe' }] }, 'mounts[0].readonly: "maybe" is not a boolean; use true or false (yes/no and 1/0 also work)'],
    ['no value', { upper: { max_size: null } }, 'upper.max_size: has no value; set a value or remove the key to use the default'],
    ['section type', { upper: '4G' }, 'upper: expected a mapping, got "4G"; use the keys backing, disk_path, default_size, max_size'],
    ['document type', ['a'], '(top level): expected a mapping, got a list; use the keys store, runtime_dir, upper, layers, mounts, container, slurm_client, log, metrics, import, devices'],
    ['list type', { mounts: '/scratch' }, 'mounts: expected a list, got "/scratch"; use a list of mappings with source, target, readonly, optional'],
    ['list item type', { mounts: ['/scratch'] }, 'mounts[0]: expected a mapping, got "/scratch"; use the keys source, target, readonly, optional'],
    ['missing required', { mounts: [{ target: '/x' }] }, 'mounts[0].source: is required but missing; use an absolute path'],
    ['relative mount', { mounts: [{ source: '/a', target: 'a' }] }, 'mounts[0].target: "a" is not an absolute path; use an absolute path'],
    ['unknown key', { upper: { max_szie: '4G' } }, 'upper.max_szie: unknown key; did you mean upper.max_size?'],
    ['unknown key', { runtimeDir: '/run/x' }, 'runtimeDir: unknown key; did you mean runtime_dir?'],
    ['unknown key', { stroe: {} }, 'stroe: unknown key; did you mean store?'],
    ['unknown key', { mounts: [{ source: '/a', read_only: true }] }, 'mounts[0].read_only: unknown key; did you mean mounts[0].readonly?'],
    ['key of another section', { max_size: '4G' }, 'max_size: unknown key; did you mean upper.max_size?'],
    ['dotted key', { 'upper.max_size': '4G' }, 'upper.max_size: unknown key; write dotted keys nested: max_size under upper'],
    ['unknown key, no suggestion', { colour: 'blue' }, 'colour: unknown key; known keys: store, runtime_dir, upper, layers, mounts, container, slurm_client, log, metrics, import, devices'],
    ['unknown key in a section', { log: { rotate: 1 } }, 'log.rotate: unknown key; known keys in log: file, level, syslog'],
    ['default > max', { upper: { default_size: '32G' } }, 'upper.default_size: 32G is larger than upper.max_size (16G); use a size no larger than upper.max_size'],
    ['reserved target', { mounts: [{ source: '/host/proc', target: '/proc' }] }, 'mounts[0].target: "/proc" is reserved; use a path other than /, /proc, /sys, /dev'],
    ['reserved target from source', { mounts: [{ source: '/dev/' }] }, 'mounts[0].target: "/dev" (from source) is reserved; use a path other than /, /proc, /sys, /dev'],
    ['root target', { mounts: [{ source: '/x', target: '/' }] }, 'mounts[0].target: "/" is reserved; use a path other than /, /proc, /sys, /dev'],
    ['target in runtime_dir', { runtime_dir: '/run/s', mounts: [{ source: '/x', target: '/run/s/jobs' }] }, 'mounts[0].target: "/run/s/jobs" is inside runtime_dir (/run/s); use a path outside runtime_dir'],
    ['duplicate target', { mounts: [{ source: '/a', target: '/data' }, { source: '/b', target: '/data/' }] }, 'mounts[1].target: "/data" is also the target of mounts[0]; use each target once'],
  ])('%s', (_kind, raw, message) => {
    expect(errorsOf(raw)).toEqual([message]);
    expect(validateConfig(raw, 'x').config).toBeUndefined();
  });

  test('targets below /dev, /proc and beside runtime_dir are fine', () => {
    ok({ mounts: [{ source: '/dev/infiniband' }, { source: '/run/strata-other' }, { source: '/x', target: '/proc2' }] });
  });

  test('every problem is reported at once, each with its key path', () => {
    const errors = errorsOf({
      store: { path: 'relative' },
      runtime_dir: '/run/strata',
      upper: { backing: 'ram', default_size: '12X', max_size: '1G', extra: 1 },
      layers: { cache: 'keep' },
      mounts: [{ source: '/a', target: '/sys', readonly: 'maybe' }, { target: '/b' }, 7],
      log: { level: 'loud' },
      import: { compression: 'zip' },
      bogus: true,
    });
    expect(errors).toEqual([
      'bogus: unknown key; known keys: store, runtime_dir, upper, layers, mounts, container, slurm_client, log, metrics, import, devices',
      'store.path: "relative" is not an absolute path; use an absolute path',
      'upper.extra: unknown key; known keys in upper: backing, disk_path, default_size, max_size',
      'upper.backing: "ram" is not allowed; use one of tmpfs, disk',
      'upper.default_size: "12X" is not a size; use a number of bytes or a size like 512M, 4G',
      'mounts[0].readonly: "maybe" is not a boolean; use true or false (yes/no and 1/0 also work)',
      'mounts[1].source: is required but missing; use an absolute path',
      'mounts[2]: expected a mapping, got 7; use the keys source, target, readonly, optional',
      'log.level: "loud" is not allowed; use one of error, warn, info, debug',
      'import.compression: "zip" is not allowed; use one of zstd, lz4hc, lz4, gzip, xz, none',
      'mounts[0].target: "/sys" is reserved; use a path other than /, /proc, /sys, /dev',
    ]);
    for (const error of errors) expect(error).toMatch(/^[a-z_.[\]0-9]+: .+; .+/);
  });
});

test('import.on_demand needs import.user_imports (an import on first use is a user import)', () => {
  expect(validateConfig({ import: { on_demand: true } }, 'f').errors).toEqual([
    'import.on_demand: needs import.user_imports: true (an import on first use is a user import); set import.user_imports: true (and the sudoers rule of docs/install.md), or turn import.on_demand off',
  ]);
  expect(validateConfig({ import: { on_demand: true, user_imports: true, recheck_tags: 'always' } }, 'f').config?.import).toMatchObject({ onDemand: true, recheckTags: 'always' });
  expect(validateConfig({ import: { recheck_tags: 'sometimes' } }, 'f').errors[0]).toMatch(/^import\.recheck_tags: .*use one of never, always$/);
});
