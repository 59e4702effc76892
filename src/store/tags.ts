// Tags: the only mutable names in the store. Moving or removing a tag records when its old
// manifest lost it (`<store>/untagged/sha256/<hex>`, mtime = when), so that `strata gc` keeps that
// image for the grace period: jobs queued with it pinned can still start.

import { readFile, unlink, utimes, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode, nodeError, userError } from '../errors.js';
import { hexOf, type StoreLayout } from './layout.js';
import { writePointer } from './publish.js';

export const untaggedPath = (layout: StoreLayout, digest: string) => join(layout.root, 'untagged', 'sha256', hexOf(digest));

async function readTag(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** Notes that `digest` just lost a tag (gc's grace period starts now). */
export async function noteUntagged(layout: StoreLayout, digest: string): Promise<void> {
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) return;
  const path = untaggedPath(layout, digest);
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await writeFile(path, `${new Date().toISOString()}\n`, { mode: 0o644 });
}

/** Points NAME:TAG at `digest`; the manifest it pointed at before is noted as untagged. */
export async function setTag(layout: StoreLayout, name: string, tag: string, digest: string): Promise<void> {
  const path = layout.tagPath(name, tag);
  const previous = await readTag(path);
  await writePointer(layout, path, digest);
  if (previous && previous !== digest) await noteUntagged(layout, previous);
}

/** Removes NAME:TAG; returns the digest it pointed at. */
export async function removeTag(layout: StoreLayout, name: string, tag: string): Promise<string> {
  const path = layout.tagPath(name, tag);
  const previous = await readTag(path);
  if (previous === undefined) {
    throw userError('E_UNKNOWN_IMAGE', `there is no image ${name}:${tag} in the store`, { hint: 'list images with `strata images`' });
  }
  await noteUntagged(layout, previous);
  try {
    await unlink(path);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw nodeError('E_STORE_WRITE', `cannot remove ${path}: ${(error as Error).message}`, { cause: error });
  }
  return previous;
}

/** Marks a stored file as just used, so a concurrent gc's grace period covers it. */
export async function touch(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch(() => undefined);
}
