// Resolving an image reference for a job at submit time, importing it on first use where the site
// allows it (import.on_demand): a registry image in Pyxis's syntax, or a squashfs file, that the
// store does not have yet goes, as the submitting user, into their own ~USER/ namespace through
// the store owner's writer like any user import (within import.user_quota). Concurrent resolves
// of the same image by the same user on this node take a lock on node-local storage: the first
// imports, the others wait and then find it in the store.

import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import type { Config } from '../../config/types.js';
import { errnoCode, isStrataError, userError } from '../../errors.js';
import { acquireNodeLock } from '../../host/node-lock.js';
import { parseImageArgument, type ImageArgument } from '../../registry/image-arg.js';
import { RegistrySource } from '../../registry/source.js';
import { hasSquashfsMagic, readSavedMarker, squashfsAsTar } from '../import/squashfs-file.js';
import { savedLayerBase } from './saved-file-base.js';
import { hostPlatform } from '../sources/manifest.js';
import type { SourceImage } from '../sources/types.js';
import type { Store } from '../store.js';
import type { LayerBytes } from './relay/caller.js';
import { storeWriteRoute } from './route.js';
import { relaySourceImage, writeThroughOwner } from './through-owner.js';

/** How long a resolve waits for another one's import of the same image (an import's own limit). */
const IMPORT_WAIT_MS = 3 * 3600 * 1000;

/** What the submitting user sees of an import on first use (the command line draws it). */
export interface FirstUseReport {
  /** "importing ..." / "imported ..." (without the "strata: " prefix). */
  say(line: string): void;
  /** Counts the layers' bytes for a progress display, where there is one to draw. */
  countLayers?(image: SourceImage, label: string): { layerBytes: LayerBytes; stop(): void } | undefined;
}

export async function resolveOrImport(config: Config, store: Store, text: string, options: { recheck: boolean; report: FirstUseReport }): Promise<string> {
  const { report } = options;
  const arg = parseImageArgument(text);
  if (arg.kind === 'file') return resolveFile(config, store, arg.path, text, report);
  if (arg.kind === 'store') return store.resolve(text);
  const stored = await storedDigest(store, text);
  const recheck = options.recheck || config.import.recheckTags === 'always';
  if (stored && (!recheck || !config.import.onDemand)) return stored;
  if (!config.import.onDemand) throw await notOnDemand(config, store, arg, text);
  let route;
  try {
    route = await userImportRoute(config, text, `strata import ${arg.source} --tag ${arg.storeName}`);
  } catch (error) {
    if (stored) return stored; // root (the PBS hook) or the owner: a recheck cannot import, the stored image stands
    throw error;
  }
  const announce = () => report.say(`importing ${text} (${arg.source}) into ~${route.user}/${arg.storeName}`);
  // Before waiting for another resolve's import: the SPANK plugin then allows import_timeout.
  if (!stored) announce();
  const lock = await acquireNodeLock(lockFile(arg.storeName), IMPORT_WAIT_MS);
  try {
    // Someone else may have imported it while we waited: then there is nothing left to do.
    const now = await storedDigest(store, text);
    if (now && (!recheck || now !== stored)) return now;
    const source = new RegistrySource(arg.source.slice('docker://'.length), hostPlatform(), { login: arg.login });
    try {
      const image = await source.resolve();
      if (now && (await sourceManifestOf(store, now)) === image.manifestDigest) return now;
      if (stored) announce(); // a recheck found the tag moved
      const counted = report.countLayers?.(image, source.description);
      const outcome = await relaySourceImage(route, source, image, { sourceText: arg.source, tag: `~/${arg.storeName}` }, counted?.layerBytes).finally(() => counted?.stop());
      if (outcome.status !== 0 || !outcome.digest) {
        // The writer said why on stderr (ours); this line is for the exit status.
        throw userError('E_IMPORT_FAILED', `the import of ${text} on first use failed`, { hint: 'see the message above' });
      }
      report.say(`imported ${text} as ~${route.user}/${arg.storeName} (${outcome.digest})`);
      return outcome.digest;
    } finally {
      await source.close();
    }
  } finally {
    await lock.release();
  }
}

async function storedDigest(store: Store, text: string): Promise<string | undefined> {
  try {
    return await store.resolve(text);
  } catch (error) {
    if (isStrataError(error) && error.code === 'E_UNKNOWN_IMAGE') return undefined;
    throw error;
  }
}

/** The registry manifest a stored image was imported from (recorded by the import). */
async function sourceManifestOf(store: Store, digest: string): Promise<string | undefined> {
  return (await store.readManifest(digest)).annotations?.['org.strata.source.manifest'];
}

/** The store's own "unknown image" (with its close matches: most often a typo), and how to get it. */
async function notOnDemand(config: Config, store: Store, arg: Extract<ImageArgument, { kind: 'registry' }>, text: string) {
  const unknown = await store.resolve(text).then(
    () => undefined,
    (error: unknown) => (isStrataError(error) && error.code === 'E_UNKNOWN_IMAGE' ? error.message : undefined),
  );
  const yourself = config.import.userImports ? ` or import it yourself: strata import ${arg.source} --tag ~/${arg.storeName}` : '';
  return userError('E_UNKNOWN_IMAGE', `${unknown ?? `image ${text} is not in the store`}; this site does not import images on first use`, {
    hint: `ask your admin to import it (strata import ${arg.source} --tag ${arg.storeName})${yourself}`,
  });
}

/**
 * The route of an import on first use: a user's, through the store owner's writer into ~USER/.
 * Root's would become a site image (the PBS queuejob hook runs as root), and the owner imports
 * site images with `strata import` (`adminImport`).
 */
async function userImportRoute(config: Config, text: string, adminImport: string) {
  if (process.getuid?.() === 0) {
    throw userError('E_IMPORT_DENIED', `image ${text} is not in the store, and strata does not import on first use as root (it would become a site image)`, {
      hint: `an admin imports it with \`${adminImport}\`; a user can run \`strata resolve ${text}\` once to import it into their own namespace`,
    });
  }
  const route = await storeWriteRoute(config);
  if (route.how !== 'relay' || !route.user) {
    throw userError('E_IMPORT_DENIED', `image ${text} is not in the store; as the store's owner, import it with: ${adminImport}`, {
      hint: 'imports on first use are for users (they go into ~USER/)',
    });
  }
  return { ...route, user: route.user };
}

/**
 * A squashfs file (Pyxis's PATH form), e.g. one `enroot import` made: read here as the user,
 * turned into a layer tar by sqfs2tar (in user space: the kernel never parses a user's squashfs)
 * and imported on first use as one layer under ~USER/sqsh/ (on top of its base image, for a file
 * --container-save wrote: saved-file-base.ts). Its store name comes from the path
 * and the file's identity (device, inode, size, modification time): the same unchanged file is
 * imported once, a rewritten one again.
 */
async function resolveFile(config: Config, store: Store, pathText: string, text: string, report: FirstUseReport): Promise<string> {
  const path = resolvePath(pathText);
  const info = await stat(path).catch((error: unknown) => {
    throw userError('E_BAD_REF', `squashfs file ${path} cannot be read: ${errnoCode(error) === 'ENOENT' ? 'it does not exist' : (error as Error).message}`, {
      hint: 'check the path (a relative one starts from the directory you submit from)',
    });
  });
  if (!info.isFile() || !(await hasSquashfsMagic(path))) {
    throw userError('E_BAD_REF', `${path} is not a squashfs file`, { hint: 'give a squashfs image (as enroot import or mksquashfs make), or a NAME:TAG from `strata images`' });
  }
  const hash = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 16);
  const name = `sqsh/${hash(path)}:${hash(`${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`)}`;
  const stored = await storedDigest(store, `~/${name}`);
  if (stored) return stored;
  if (!config.import.onDemand) {
    throw userError('E_UNKNOWN_IMAGE', `squashfs file ${path} is not in the store, and this site does not import images on first use`, {
      hint: `import its contents yourself (unsquashfs -d DIR ${path} && strata import dir:DIR --tag ~/NAME:TAG; a file --container-save wrote holds only changes: sqfs2tar ${path} > changes.tar && strata import tar:changes.tar --base IMAGE --tag ~/NAME:TAG) and use ~/NAME:TAG`,
    });
  }
  const route = await userImportRoute(config, text, `strata import dir:DIR --tag NAME:TAG (from unsquashfs -d DIR ${path})`);
  // A file --container-save wrote holds a layer: the image is its recorded base plus the layer.
  const base = await savedLayerBase(store, path, await readSavedMarker(path));
  report.say(`importing ${text}${base ? ` (the changes a job saved, on ${base})` : ''} into ~${route.user}/${name}`);
  const lock = await acquireNodeLock(lockFile(name), IMPORT_WAIT_MS);
  try {
    const now = await storedDigest(store, `~/${name}`);
    if (now) return now;
    const outcome = await writeThroughOwner(route, { op: 'import-layer', sourceText: `tar:${path}`, what: `squashfs file ${path}`, tag: `~/${name}`, base }, async () => squashfsAsTar(path));
    if (outcome.status !== 0 || !outcome.digest) throw userError('E_IMPORT_FAILED', `the import of ${text} on first use failed`, { hint: 'see the message above' });
    report.say(`imported ${text} as ~${route.user}/${name} (${outcome.digest})`);
    return outcome.digest;
  } finally {
    await lock.release();
  }
}

/**
 * The lock of one image's import by this user on this node: in their own runtime directory
 * ($XDG_RUNTIME_DIR, a per-user tmpfs), else in a directory of their own under /tmp that must be
 * theirs alone (another user could otherwise hold the lock, or plant a link where it is created).
 */
function lockFile(storeName: string): string {
  const uid = process.getuid!();
  const runtime = process.env.XDG_RUNTIME_DIR;
  const base = runtime && ownedPrivateDir(runtime, uid, false) ? join(runtime, 'strata') : `/tmp/strata-${uid}`;
  try {
    mkdirSync(base, { mode: 0o700 });
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw error;
  }
  if (!ownedPrivateDir(base, uid, true)) {
    throw userError('E_IMPORT_LOCK', `${base} is not a directory of yours that only you can use, so strata cannot lock the import there`, {
      hint: `remove it (or ask your admin to) and submit again`,
    });
  }
  const key = createHash('sha256').update(storeName).digest('hex').slice(0, 32);
  return join(base, `import-${key}.lock`);
}

function ownedPrivateDir(path: string, uid: number, strict: boolean): boolean {
  try {
    const info = lstatSync(path);
    return info.isDirectory() && info.uid === uid && (!strict || (info.mode & 0o077) === 0);
  } catch {
    return false;
  }
}
