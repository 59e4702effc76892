// `*.partial` files: what an import writes before it publishes. Their names say who writes them
// (`<what>~<host>~<pid>~<random>.partial`), so a later import or gc can tell a stale one (its
// writer on this host is gone, or it is older than PARTIAL_MAX_AGE_MS) from one a concurrent
// import is still writing, without any lock on the store.

import { randomBytes } from 'node:crypto';
import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import type { StoreLayout } from './layout.js';

/** A partial from another host (whose processes we cannot see) is stale after this long untouched. */
export const PARTIAL_MAX_AGE_MS = 24 * 60 * 60 * 1000;

const HOST = hostname().replace(/[~/]/g, '_');

export function partialName(hint: string, host = HOST, pid = process.pid): string {
  return `${hint.replace(/[^\w.-]/g, '_')}~${host}~${pid}~${randomBytes(6).toString('hex')}.partial`;
}

export async function newPartialPath(layout: StoreLayout, hint: string): Promise<string> {
  await mkdir(layout.tmpDir, { recursive: true, mode: 0o755 });
  return join(layout.tmpDir, partialName(hint));
}

export interface PartialInfo {
  host?: string;
  pid?: number;
}

/** Writer of a partial from its name; nothing for names of another form (older strata). Pure. */
export function partialWriter(name: string): PartialInfo {
  const match = /^[^~]*~([^~]+)~(\d+)~[0-9a-f]+\.partial$/.exec(name);
  return match ? { host: match[1], pid: Number(match[2]) } : {};
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
};

/**
 * Is this partial abandoned? Written on this host: when its process is gone (or the file is older
 * than the age limit, against pid reuse). Elsewhere: only by age. Pure but for the pid check.
 */
export function isStalePartial(name: string, ageMs: number, host = HOST): boolean {
  if (ageMs > PARTIAL_MAX_AGE_MS) return true;
  const writer = partialWriter(name);
  return writer.host === host && writer.pid !== undefined && writer.pid !== process.pid && !alive(writer.pid);
}

/** Removes stale partials (and lists them); `dryRun` only lists. */
export async function sweepPartials(layout: StoreLayout, dryRun = false): Promise<{ path: string; size: number }[]> {
  let names: string[];
  try {
    names = await readdir(layout.tmpDir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
  const removed: { path: string; size: number }[] = [];
  const now = Date.now();
  for (const name of names) {
    if (!name.endsWith('.partial')) continue;
    const path = join(layout.tmpDir, name);
    const info = await stat(path).catch(() => undefined);
    if (!info || !isStalePartial(name, now - info.mtimeMs)) continue;
    if (!dryRun) {
      try {
        await unlink(path);
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') continue;
        throw error;
      }
    }
    removed.push({ path, size: info.size });
  }
  return removed;
}
