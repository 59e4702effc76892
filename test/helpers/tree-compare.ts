// Compares two directory trees the way a user of the container would notice a difference: paths,
// types, modes (setuid included), owners, sizes, contents, symlink targets, device numbers, hard
// link counts and xattrs. Returns the first difference, or undefined when they are equal.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';

const typeOf = (s: Stats) =>
  s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isCharacterDevice() ? 'char' : s.isBlockDevice() ? 'block' : s.isFIFO() ? 'fifo' : 'socket';

function describe(root: string, path: string): string {
  const full = join(root, path);
  const s = lstatSync(full);
  const parts = [typeOf(s), `mode=${(s.mode & 0o7777).toString(8)}`, `owner=${s.uid}:${s.gid}`];
  if (s.isFile()) parts.push(`size=${s.size}`, `nlink=${s.nlink}`, `sha=${createHash('sha256').update(readFileSync(full)).digest('hex').slice(0, 16)}`);
  if (s.isSymbolicLink()) parts.push(`-> ${readlinkSync(full)}`);
  if (s.isCharacterDevice() || s.isBlockDevice()) parts.push(`rdev=${s.rdev}`);
  return parts.join(' ');
}

/** path → "name=value,..." for every xattr (getfattr dump; SELinux labels ignored). */
function xattrs(root: string, top: string[]): Map<string, string> {
  // Only the compared top-level entries: it must not wander into the job's /proc or /sys.
  const run = spawnSync('/usr/bin/getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', ...top], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (run.status !== 0 && run.stderr.trim()) throw new Error(`getfattr in ${root}: ${run.stderr.trim()}`);
  const dump = run.stdout;
  const out = new Map<string, string>();
  for (const block of dump.split('\n\n')) {
    const lines = block.split('\n').filter(Boolean);
    if (!lines[0]?.startsWith('# file: ')) continue;
    const path = lines[0].slice(8).replace(/^\.\//, '');
    const values = lines.slice(1).filter((l) => !l.startsWith('security.selinux')).sort();
    if (values.length) out.set(path, values.join(','));
  }
  return out;
}

export function compareTrees(expected: string, actual: string, options: { skip?: string[] } = {}): string | undefined {
  const skip = new Set(options.skip ?? []);
  const walk = (path: string): string | undefined => {
    const left = describe(expected, path);
    const right = describe(actual, path);
    // The container's `/` itself is the job's upper (owned by the job's user, 0700 by design), not
    // the image's: only what is below it comes from the image.
    if (path !== '' && left !== right) return `/${path}: expected ${left}, got ${right}`;
    if (!lstatSync(join(expected, path)).isDirectory()) return undefined;
    const names = (root: string) => readdirSync(join(root, path)).filter((name) => !skip.has(join(path, name))).sort();
    const a = names(expected);
    const b = names(actual);
    const missing = a.find((name) => !b.includes(name));
    if (missing) return `/${join(path, missing)}: missing`;
    const extra = b.find((name) => !a.includes(name));
    if (extra) return `/${join(path, extra)}: unexpected (${describe(actual, join(path, extra))})`;
    for (const name of a) {
      const difference = walk(join(path, name));
      if (difference) return difference;
    }
    return undefined;
  };
  const difference = walk('');
  if (difference) return difference;
  const top = readdirSync(expected).filter((name) => !skip.has(name));
  const ax = xattrs(expected, top);
  const bx = xattrs(actual, top);
  for (const path of new Set([...ax.keys(), ...bx.keys()])) {
    if ([...skip].some((s) => path === s || path.startsWith(`${s}/`))) continue;
    if (ax.get(path) !== bx.get(path)) return `/${path}: xattrs expected ${ax.get(path) ?? 'none'}, got ${bx.get(path) ?? 'none'}`;
  }
  return undefined;
}

/** What a job's rootfs has that the image does not: the node's and strata's per-job mounts. */
export const PER_JOB_PATHS = ['proc', 'sys', 'dev', 'root', 'tmp', 'etc/passwd', 'etc/group', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'etc/localtime'];
