// removeTree's fast path for a job directory after its epilog (root-owned directories only root may
// write, holding files) and the fall-back to GNU rm for everything else. A symlink in the
// tree is removed, never followed.

import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeShallowRootTree, removeTree } from '../../src/host/remove-tree.js';

const isRoot = process.getuid?.() === 0;
let base: string;
let victim: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'strata-rm-'));
  victim = join(base, 'victim');
  mkdirSync(victim);
  writeFileSync(join(victim, 'keep'), 'host file\n');
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

/** A job directory as the epilog leaves it: records, empty mount points, a link someone planted. */
function jobDir(): string {
  const dir = join(base, 'job');
  mkdirSync(dir, { mode: 0o711 });
  chmodSync(dir, 0o711);
  for (const name of ['rootfs', 'upper', 'tmp']) mkdirSync(join(dir, name));
  writeFileSync(join(dir, 'journal'), '{}\n');
  symlinkSync(victim, join(dir, 'link'));
  return dir;
}

(isRoot ? test : test.skip)('a root-only job directory of files, links and empty dirs goes without following links', async () => {
  const dir = jobDir();
  expect(removeShallowRootTree(dir)).toBe(true);
  expect(existsSync(dir)).toBe(false);
  expect(readFileSync(join(victim, 'keep'), 'utf8')).toBe('host file\n');
  // Gone already: removing again is fine.
  expect(removeShallowRootTree(dir)).toBe(true);
  await expect(removeTree(dir)).resolves.toBeUndefined();
});

(isRoot ? test : test.skip)('nested root-only directories go too; a deeper tree, a directory others may write or own, is left to GNU rm, which removes it without following links', async () => {
  const nested = jobDir();
  mkdirSync(join(nested, 'upper', 'work'));
  symlinkSync(victim, join(nested, 'upper', 'work', 'link'));
  expect(removeShallowRootTree(nested)).toBe(true);
  expect(existsSync(nested)).toBe(false);

  const deep = jobDir();
  mkdirSync(join(deep, 'a/b/c/d/e'), { recursive: true });
  symlinkSync(victim, join(deep, 'a/b/c/d/e/link'));
  expect(removeShallowRootTree(deep)).toBe(false);
  await removeTree(deep);
  expect(existsSync(deep)).toBe(false);

  const upper = jobDir();
  mkdirSync(join(upper, 'upper', 'u'));
  chownSync(join(upper, 'upper', 'u'), 1000, 1000);
  symlinkSync(victim, join(upper, 'upper', 'u', 'link'));
  expect(removeShallowRootTree(upper)).toBe(false);
  expect(existsSync(join(upper, 'upper', 'u', 'link'))).toBe(true);
  await removeTree(upper);
  expect(existsSync(upper)).toBe(false);

  const shared = join(base, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  writeFileSync(join(shared, 'file'), 'x');
  expect(removeShallowRootTree(shared)).toBe(false);
  expect(existsSync(join(shared, 'file'))).toBe(true);

  const users = join(base, 'users');
  mkdirSync(users, { mode: 0o755 });
  chownSync(users, 1000, 1000);
  expect(removeShallowRootTree(users)).toBe(false);
  await removeTree(users);
  expect(existsSync(users)).toBe(false);
  expect(readFileSync(join(victim, 'keep'), 'utf8')).toBe('host file\n');
});

(isRoot ? test : test.skip)('a symlink given as the tree is not followed', async () => {
  const link = join(base, 'link-to-victim');
  symlinkSync(victim, link);
  expect(removeShallowRootTree(link)).toBe(false);
  await removeTree(link);
  expect(existsSync(link)).toBe(false);
  expect(readFileSync(join(victim, 'keep'), 'utf8')).toBe('host file\n');
});
