import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StrataError } from '../../src/errors.js';
import { expectUserError } from '../helpers/errors.js';
import { resolveInRoot } from '../../src/runtime/resolve-in-root.js';

let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'strata-rir-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const dirs = (...paths: string[]) => paths.forEach((path) => mkdirSync(join(root, path), { recursive: true }));
const link = (path: string, target: string) => symlinkSync(target, join(root, path));
const file = (path: string, content = '') => writeFileSync(join(root, path), content);

function refused(fn: () => unknown): StrataError {
  return expectUserError(fn, 'E_BAD_MOUNT');
}

describe('resolveInRoot: existing paths', () => {
  test('a plain path resolves below the root', () => {
    dirs('data/sub');
    expect(resolveInRoot(root, '/data/sub')).toBe(join(root, 'data/sub'));
  });

  test('/ is the root itself', () => {
    expect(resolveInRoot(root, '/')).toBe(root);
  });

  test('"." and duplicate slashes are ignored', () => {
    dirs('a/b');
    expect(resolveInRoot(root, '//a/./b/')).toBe(join(root, 'a/b'));
  });

  test('".." goes up, and never above the root', () => {
    dirs('a/b', 'etc');
    expect(resolveInRoot(root, '/a/b/..')).toBe(join(root, 'a'));
    expect(resolveInRoot(root, '/../../../etc')).toBe(join(root, 'etc'));
    expect(resolveInRoot(root, '/a/../../..')).toBe(root);
  });
});

describe('resolveInRoot: symbolic links in the image', () => {
  test('an absolute link resolves inside the root, never on the host', () => {
    dirs('etc');
    link('data', '/etc');
    const resolved = resolveInRoot(root, '/data');
    expect(resolved).toBe(join(root, 'etc'));
    expect(resolved.startsWith(root)).toBe(true);
  });

  test('an absolute link in the middle of the path restarts at the root', () => {
    dirs('opt/real/x', 'a');
    link('a/lnk', '/opt/real');
    expect(resolveInRoot(root, '/a/lnk/x')).toBe(join(root, 'opt/real/x'));
  });

  test('creating through a link to /etc writes in the image, not on the host', () => {
    link('data', '/etc/strata-test-never-on-host');
    const resolved = resolveInRoot(root, '/data/hosts', 'file');
    expect(resolved).toBe(join(root, 'etc/strata-test-never-on-host/hosts'));
    expect(lstatSync(resolved).isFile()).toBe(true);
    expect(existsSync('/etc/strata-test-never-on-host')).toBe(false);
  });

  test('a relative link is followed from the directory holding it', () => {
    dirs('a', 'b/x');
    link('a/lnk', '../b');
    expect(resolveInRoot(root, '/a/lnk/x')).toBe(join(root, 'b/x'));
  });

  test('a relative link with ".." beyond the root is clamped at the root', () => {
    dirs('etc', 'a/b');
    link('a/b/up', '../../../../../../etc');
    expect(resolveInRoot(root, '/a/b/up')).toBe(join(root, 'etc'));
  });

  test('".." after a link applies to where the link points', () => {
    dirs('real/inner', 'a');
    link('a/lnk', '/real/inner');
    expect(resolveInRoot(root, '/a/lnk/..')).toBe(join(root, 'real'));
  });

  test('a chain of links is followed', () => {
    dirs('target');
    link('l1', 'l2');
    link('l2', '/l3');
    link('l3', 'target');
    expect(resolveInRoot(root, '/l1')).toBe(join(root, 'target'));
  });

  test('a link loop is a user error naming the path', () => {
    link('a', 'b');
    link('b', '/a');
    const error = refused(() => resolveInRoot(root, '/a/x', 'dir'));
    expect(error.message).toContain('/a/x');
    expect(error.message).toContain('symbolic links');
  });

  test('a link to itself is a user error', () => {
    link('self', 'self');
    refused(() => resolveInRoot(root, '/self'));
  });

  test('40 links in a row are followed, 41 are too many', () => {
    dirs('end');
    const chain = (prefix: string, count: number) => {
      for (let i = 0; i < count; i++) link(`${prefix}${i}`, i === count - 1 ? 'end' : `${prefix}${i + 1}`);
    };
    chain('ok', 40);
    chain('long', 41);
    expect(resolveInRoot(root, '/ok0')).toBe(join(root, 'end'));
    refused(() => resolveInRoot(root, '/long0'));
  });
});

describe('resolveInRoot: creating missing components', () => {
  test('with "dir", every missing component becomes a directory', () => {
    const resolved = resolveInRoot(root, '/new/deep/dir', 'dir');
    expect(resolved).toBe(join(root, 'new/deep/dir'));
    expect(lstatSync(join(root, 'new/deep')).isDirectory()).toBe(true);
    expect(lstatSync(resolved).isDirectory()).toBe(true);
  });

  test('with "file", the parents become directories and the last an empty file', () => {
    const resolved = resolveInRoot(root, '/new/deep/file.txt', 'file');
    expect(resolved).toBe(join(root, 'new/deep/file.txt'));
    expect(lstatSync(join(root, 'new/deep')).isDirectory()).toBe(true);
    expect(lstatSync(resolved).isFile()).toBe(true);
    expect(readFileSync(resolved, 'utf8')).toBe('');
  });

  test('an existing file is left as it is', () => {
    dirs('etc');
    file('etc/resolv.conf', 'nameserver 10.0.0.1\n');
    expect(resolveInRoot(root, '/etc/resolv.conf', 'file')).toBe(join(root, 'etc/resolv.conf'));
    expect(readFileSync(join(root, 'etc/resolv.conf'), 'utf8')).toBe('nameserver 10.0.0.1\n');
  });

  test('a dangling link is created where it points, inside the root', () => {
    link('scratch', '/mnt/scratch');
    expect(resolveInRoot(root, '/scratch', 'dir')).toBe(join(root, 'mnt/scratch'));
    expect(lstatSync(join(root, 'mnt/scratch')).isDirectory()).toBe(true);
    expect(lstatSync(join(root, 'scratch')).isSymbolicLink()).toBe(true);
  });

  test('without create, a missing path throws and creates nothing', () => {
    dirs('a');
    expect(() => resolveInRoot(root, '/a/missing/x')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(existsSync(join(root, 'a/missing'))).toBe(false);
  });

  test('a file in the middle of the path is a user error naming it', () => {
    dirs('data');
    file('data/blob', 'x');
    const error = refused(() => resolveInRoot(root, '/data/blob/x', 'dir'));
    expect(error.message).toContain('/data/blob/x');
    expect(error.message).toContain('/data/blob is not a directory');
    expect(readFileSync(join(root, 'data/blob'), 'utf8')).toBe('x');
  });

  test('a link to a file in the middle of the path is a user error', () => {
    file('f', 'x');
    link('lnk', '/f');
    refused(() => resolveInRoot(root, '/lnk/sub', 'file'));
  });
});
