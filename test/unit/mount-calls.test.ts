// The mount(2) calls the mount helper makes for a mount(8)-style request: the same as util-linux's.

import { mountCalls } from '../../src/host/mounts.js';
import { MS } from '../../src/host/mount-helper.js';

test('a filesystem mount splits VFS flags from filesystem options, then changes propagation', () => {
  expect(mountCalls({ type: 'overlay', source: 'overlay', target: '/r', options: ['lowerdir=a:b', 'upperdir=/u', 'nosuid', 'nodev'], flags: ['--make-private'], cwd: '/l' })).toEqual([
    { source: 'overlay', target: '/r', type: 'overlay', flags: MS.NOSUID | MS.NODEV, data: 'lowerdir=a:b,upperdir=/u', cwd: '/l' },
    { target: '/r', flags: MS.PRIVATE, cwd: '/l' },
  ]);
});

test('a bind is made, then remounted with its flags, then made rslave; a read-only bind keeps ro', () => {
  expect(mountCalls({ source: '/proc', target: '/r/proc', flags: ['--rbind', '--make-rslave'], options: ['nosuid', 'nodev'] })).toEqual([
    { source: '/proc', target: '/r/proc', flags: MS.BIND | MS.REC, cwd: undefined },
    { target: '/r/proc', flags: MS.REMOUNT | MS.BIND | MS.NOSUID | MS.NODEV, cwd: undefined },
    { target: '/r/proc', flags: MS.SLAVE | MS.REC, cwd: undefined },
  ]);
  const readonly = mountCalls({ source: '/r', target: '/r', flags: ['--bind', '--make-private'], options: ['bind', 'ro', 'nosuid', 'nodev'] });
  expect(readonly[1].flags).toBe(MS.REMOUNT | MS.BIND | MS.RDONLY | MS.NOSUID | MS.NODEV);
});

test('a bind without flags is not remounted', () => {
  expect(mountCalls({ source: '/a', target: '/b', flags: ['--bind'] })).toHaveLength(1);
});

test('flags the helper does not know are refused, not ignored', () => {
  expect(() => mountCalls({ source: '/a', target: '/b', flags: ['--move'] })).toThrow(/not supported/);
});
