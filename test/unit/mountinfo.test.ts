import { entriesWithin, isMounted, mountsUnder, optionValue, parseMountinfo, parseMountinfoWithin, readMountinfo, type MountEntry } from '../../src/host/mountinfo.js';

// Lines in the format of proc(5) /proc/<pid>/mountinfo.
const SAMPLE = [
  '22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro',
  '25 22 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw',
  '26 22 0:24 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw',
  '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue',
  '40 22 0:30 / /run/strata rw,nosuid,nodev shared:20 - tmpfs tmpfs rw,size=1048576k,mode=755',
  '41 40 7:0 / /run/strata/l/0123456789ab ro,nosuid,nodev,relatime shared:21 - squashfs /dev/loop0 ro,errors=continue',
  '50 40 0:45 / /run/strata/jobs/42/upper rw,relatime shared:25 - tmpfs tmpfs rw,size=1048576k,uid=1000,gid=1000',
  '51 40 0:46 / /run/strata/jobs/42/rootfs rw,nosuid,nodev,relatime - overlay overlay rw,lowerdir=0123456789ab:ba9876543210,upperdir=/run/strata/jobs/42/upper/u,workdir=/run/strata/jobs/42/upper/w,volatile,index=off,xino=off',
  '',
].join('\n');

describe('parseMountinfo', () => {
  const entries = parseMountinfo(SAMPLE);

  test('one entry per line, in order', () => {
    expect(entries.map((e) => e.mountPoint)).toEqual([
      '/',
      '/proc',
      '/sys',
      '/mnt2',
      '/run/strata',
      '/run/strata/l/0123456789ab',
      '/run/strata/jobs/42/upper',
      '/run/strata/jobs/42/rootfs',
    ]);
  });

  test('all fields of the proc(5) example line', () => {
    expect(entries[3]).toEqual({
      id: 36,
      parentId: 35,
      device: '98:0',
      mountPoint: '/mnt2',
      options: 'rw,noatime',
      propagation: ['master:1', 'shared:7'],
      fsType: 'ext3',
      source: '/dev/root',
      superOptions: 'rw,errors=continue',
    });
  });

  test('no optional fields: empty propagation, fields after "-" still right', () => {
    expect(entries[2]).toMatchObject({ propagation: [], fsType: 'sysfs', source: 'sysfs', superOptions: 'rw' });
  });

  test('overlay: the layer list is in the super options', () => {
    const overlay = entries[7];
    expect(overlay.fsType).toBe('overlay');
    expect(overlay.source).toBe('overlay');
    expect(overlay.options).toBe('rw,nosuid,nodev,relatime');
    expect(optionValue(overlay.superOptions, 'lowerdir')).toBe('0123456789ab:ba9876543210');
    expect(optionValue(overlay.superOptions, 'upperdir')).toBe('/run/strata/jobs/42/upper/u');
  });

  test('loop-mounted squashfs: the source is the loop device', () => {
    expect(entries[5]).toMatchObject({ fsType: 'squashfs', source: '/dev/loop0', options: 'ro,nosuid,nodev,relatime', device: '7:0' });
  });

  test('octal escapes in mount points and sources are decoded', () => {
    const [entry] = parseMountinfo('60 22 0:50 / /mnt/my\\040dir\\011tab\\134back\\012nl rw - tmpfs my\\040src rw\n');
    expect(entry.mountPoint).toBe('/mnt/my dir\ttab\\back\nnl');
    expect(entry.source).toBe('my src');
  });

  test('lines without the "-" separator and blank lines are skipped', () => {
    expect(parseMountinfo('garbage line\n\n70 22 0:52 / /x rw - tmpfs tmpfs rw\n\n')).toHaveLength(1);
    expect(parseMountinfo('')).toEqual([]);
  });

  test('missing super options read as empty', () => {
    expect(parseMountinfo('71 22 0:53 / /y rw - tmpfs tmpfs')[0].superOptions).toBe('');
  });
});

describe('mountsUnder', () => {
  const entry = (mountPoint: string, id: number): MountEntry => ({
    id,
    parentId: 1,
    device: '0:1',
    mountPoint,
    options: 'rw',
    propagation: [],
    fsType: 'tmpfs',
    source: `src${id}`,
    superOptions: 'rw',
  });

  test('the path itself and everything below, deepest first', () => {
    const table = [
      entry('/run/strata/jobs/42/rootfs', 1),
      entry('/run/strata/jobs/42/rootfs/proc', 2),
      entry('/run/strata/jobs/42/rootfs/proc/sys/fs/binfmt_misc', 3),
      entry('/run/strata/jobs/42/rootfs/home/alice', 4),
      entry('/run/strata/jobs/43/rootfs', 5),
      entry('/', 6),
    ];
    const ids = mountsUnder(table, '/run/strata/jobs/42/rootfs').map((e) => e.id);
    expect(ids).toEqual([3, 4, 2, 1]);
    // Every mount comes before any mount it is inside of.
    const order = mountsUnder(table, '/run/strata/jobs/42/rootfs').map((e) => e.mountPoint);
    order.forEach((point, i) => {
      for (const later of order.slice(i + 1)) expect(later.startsWith(`${point}/`)).toBe(false);
    });
  });

  test('a sibling sharing a prefix is not below: /a/bc is not under /a/b', () => {
    const table = [entry('/a/b', 1), entry('/a/bc', 2), entry('/a/b/c', 3), entry('/a/b-x', 4)];
    expect(mountsUnder(table, '/a/b').map((e) => e.id)).toEqual([3, 1]);
  });

  test('mounts stacked on the same point come out most recent first', () => {
    const table = [entry('/a/b', 1), entry('/a/b', 2), entry('/a/b', 3)];
    expect(mountsUnder(table, '/a/b').map((e) => e.id)).toEqual([3, 2, 1]);
  });

  test('nothing mounted there', () => {
    expect(mountsUnder([entry('/x', 1)], '/a')).toEqual([]);
  });

  test('with real mountinfo text', () => {
    expect(mountsUnder(parseMountinfo(SAMPLE), '/run/strata').map((e) => e.mountPoint)).toEqual([
      '/run/strata/jobs/42/rootfs',
      '/run/strata/l/0123456789ab',
      '/run/strata/jobs/42/upper',
      '/run/strata',
    ]);
  });
});

describe('isMounted', () => {
  test('exact mount points only', () => {
    const table = parseMountinfo(SAMPLE);
    expect(isMounted(table, '/run/strata/jobs/42/rootfs')).toBe(true);
    expect(isMounted(table, '/run/strata/jobs/42')).toBe(false);
    expect(isMounted(table, '/run/strata/jobs/42/rootfs/proc')).toBe(false);
  });
});

describe('optionValue', () => {
  const options = 'rw,lowerdir=a:b:c,upperdir=/u/u,workdir=/u/w,index=off,volatile';

  test('the value of a key', () => {
    expect(optionValue(options, 'lowerdir')).toBe('a:b:c');
    expect(optionValue(options, 'workdir')).toBe('/u/w');
    expect(optionValue(options, 'index')).toBe('off');
  });

  test('absent keys, flags without a value and key suffixes are not matches', () => {
    expect(optionValue(options, 'metacopy')).toBeUndefined();
    expect(optionValue(options, 'volatile')).toBeUndefined();
    expect(optionValue(options, 'dir')).toBeUndefined();
    expect(optionValue(options, 'lower')).toBeUndefined();
  });

  test('a backslash-escaped comma stays inside the value', () => {
    expect(optionValue('rw,lowerdir=/a\\,b:/c,upperdir=/u', 'lowerdir')).toBe('/a\\,b:/c');
    expect(optionValue('rw,lowerdir=/a\\,b:/c,upperdir=/u', 'upperdir')).toBe('/u');
  });

  test('a value may contain "="', () => {
    expect(optionValue('rw,context=a=b', 'context')).toBe('a=b');
  });

  test('empty option string', () => {
    expect(optionValue('', 'lowerdir')).toBeUndefined();
  });
});

describe('readMountinfo(within): only the mounts at or below a path', () => {
  // Real mounts: this process's own table, filtered, equals the full table filtered by hand.
  test('the same entries, in table order, as filtering the whole table', () => {
    const all = readMountinfo();
    for (const path of ['/', '/proc', '/sys', '/dev', '/nonexistent']) {
      expect(readMountinfo(path)).toEqual(entriesWithin(all, path));
    }
    expect(readMountinfo('/sys').length).toBeGreaterThan(0);
  });

  test('lines are picked by the escaped path: a mount point with a space is found, a sibling sharing a prefix is not', () => {
    const text = [
      '60 40 0:50 / /run/strata/jobs/7\\040x/rootfs rw - overlay overlay rw,lowerdir=a',
      '61 60 0:51 / /run/strata/jobs/7\\040x/rootfs/tmp rw - tmpfs tmpfs rw',
      '62 40 0:52 / /run/strata/jobs/7\\040xy/rootfs rw - overlay overlay rw,lowerdir=a',
      '63 40 0:53 / /elsewhere rw - tmpfs tmpfs rw,note=/run/strata/jobs/7\\040x',
    ].join('\n');
    const within = parseMountinfoWithin(text, '/run/strata/jobs/7 x');
    expect(within.map((entry) => entry.id)).toEqual([60, 61]);
  });
});
