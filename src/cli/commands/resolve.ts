// `strata resolve REF`: the manifest digest a job will run, as the SPANK plugin and the PBS hook ask
// for it at submit time. A registry image in Pyxis's syntax that the store does not have yet is
// imported on first use, where the site allows it (import.on_demand): as the submitting user, into
// their own ~USER/ namespace, through the store owner's writer like any user import (within
// import.user_quota). Concurrent resolves of the same image by the same user on this node take a
// lock on node-local storage: the first imports, the others wait and then find it in the store.

import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { isatty, WriteStream } from 'node:tty';
import type { Config } from '../../config/types.js';
import { errnoCode, firstLine, isStrataError, userError } from '../../errors.js';
import { acquireNodeLock } from '../../host/node-lock.js';
import { parseImageArgument, type ImageArgument } from '../../registry/image-arg.js';
import { RegistrySource } from '../../registry/source.js';
import { parseMountRequests } from '../../runtime/job/request.js';
import { hostPlatform } from '../../store/sources/manifest.js';
import type { SourceImage } from '../../store/sources/types.js';
import type { Store } from '../../store/store.js';
import { progressLine } from '../progress.js';
import { openStore } from '../open-store.js';
import { storeWriteRoute } from '../../store/write/route.js';
import { relaySourceImage, writeThroughOwner } from '../../store/write/through-owner.js';

/** squashfs-tools-ng, installed with tar2sqfs (the import's own converter). */
const SQFS2TAR = '/usr/bin/sqfs2tar';

/** How long a resolve waits for another one's import of the same image (an import's own limit). */
const IMPORT_WAIT_MS = 3 * 3600 * 1000;

export async function resolveCommand(args: { ref: string; recheck?: boolean; mounts?: string }): Promise<number> {
  // The SPANK plugin hands the mount list over at submit: a bad one fails sbatch, not the job.
  if (args.mounts !== undefined) parseMountRequests(args.mounts, { relativeTo: process.cwd() });
  const { config, store } = await openStore();
  const recheck = args.recheck === true || isTrue(process.env.STRATA_IMPORT_RECHECK);
  process.stdout.write(`${await resolveOrImport(config, store, args.ref, { recheck })}\n`);
  return 0;
}

const isTrue = (value: string | undefined) => value !== undefined && /^(1|true|yes|y)$/i.test(value.trim());

export async function resolveOrImport(config: Config, store: Store, text: string, options: { recheck: boolean }): Promise<string> {
  const arg = parseImageArgument(text);
  if (arg.kind === 'file') return resolveFile(config, store, arg.path, text);
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
  const progress = progressStream();
  const announce = () => say(progress, `importing ${text} (${arg.source}) into ~${route.user}/${arg.storeName}`);
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
      const counted = countingLayers(image, progress, source.description);
      const outcome = await relaySourceImage(route, source, image, { sourceText: arg.source, tag: `~/${arg.storeName}` }, counted?.layerBytes).finally(() => counted?.stop());
      if (outcome.status !== 0 || !outcome.digest) {
        // The writer said why on stderr (ours); this line is for the exit status.
        throw userError('E_IMPORT_FAILED', `the import of ${text} on first use failed`, { hint: 'see the message above' });
      }
      say(progress, `imported ${text} as ~${route.user}/${arg.storeName} (${outcome.digest})`);
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
 * and imported on first use as one layer under ~USER/sqsh/. Its store name comes from the path
 * and the file's identity (device, inode, size, modification time): the same unchanged file is
 * imported once, a rewritten one again.
 */
async function resolveFile(config: Config, store: Store, pathText: string, text: string): Promise<string> {
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
      hint: `import its contents yourself (unsquashfs -d DIR ${path} && strata import dir:DIR --tag ~/NAME:TAG) and use ~/NAME:TAG`,
    });
  }
  const route = await userImportRoute(config, text, `strata import dir:DIR --tag NAME:TAG (from unsquashfs -d DIR ${path})`);
  const progress = progressStream();
  say(progress, `importing ${text} into ~${route.user}/${name}`);
  const lock = await acquireNodeLock(lockFile(name), IMPORT_WAIT_MS);
  try {
    const now = await storedDigest(store, `~/${name}`);
    if (now) return now;
    const outcome = await writeThroughOwner(route, { op: 'import-layer', sourceText: `tar:${path}`, what: `squashfs file ${path}`, tag: `~/${name}` }, async () => squashfsAsTar(path));
    if (outcome.status !== 0 || !outcome.digest) throw userError('E_IMPORT_FAILED', `the import of ${text} on first use failed`, { hint: 'see the message above' });
    say(progress, `imported ${text} as ~${route.user}/${name} (${outcome.digest})`);
    return outcome.digest;
  } finally {
    await lock.release();
  }
}

/**
 * The file as a tar stream, from a sqfs2tar of its own for each time the writer asks (it may read
 * a layer more than once); a sqfs2tar that fails ends the stream with its message.
 */
async function* squashfsAsTar(path: string): AsyncGenerator<Buffer> {
  const reader = spawn(SQFS2TAR, ['--no-skip', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let errors = '';
  reader.stderr.on('data', (chunk: Buffer) => (errors = (errors + chunk.toString()).slice(-2000)));
  const exited = new Promise<number>((resolve) => reader.on('close', (code) => resolve(code ?? 1)));
  try {
    for await (const chunk of reader.stdout) yield chunk as Buffer;
  } finally {
    // A writer that gave up (quota, a bad entry) reads no more: sqfs2tar must not wait on the pipe.
    if (reader.exitCode === null) reader.stdout.destroy();
  }
  const status = await exited;
  if (status !== 0) {
    throw userError('E_BAD_REF', `cannot read squashfs file ${path}: ${firstLine(errors) || `sqfs2tar exit status ${status}`}`, { hint: 'check the file (unsquashfs -l lists it)' });
  }
}

async function hasSquashfsMagic(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    return bytesRead === 4 && buffer.toString('latin1') === 'hsqs';
  } finally {
    await handle.close();
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

/**
 * Where progress goes: the terminal the SPANK plugin hands over as STRATA_PROGRESS_FD (our stderr
 * is its pipe then), else nowhere: run from a terminal by hand, the writer draws progress itself on
 * the stderr we share; in a pipe or a log, nothing but the one summary line.
 */
function progressStream(): WriteStream | undefined {
  const fd = Number(process.env.STRATA_PROGRESS_FD);
  if (!Number.isInteger(fd) || fd < 3 || !isatty(fd)) return undefined;
  const stream = new WriteStream(fd);
  // Writes to a terminal are synchronous: nothing is lost, and the open stream must not keep us running.
  stream.unref();
  return stream;
}

function say(out: WriteStream | undefined, line: string): void {
  // To stderr as well: the SPANK plugin allows an import more time once it reads "strata: importing".
  if (line.startsWith('importing')) process.stderr.write(`strata: ${line}\n`);
  out?.write(`strata: ${line}\n`);
}

/** The layers' bytes as the writer asks for them, counted for the progress line. */
function countingLayers(image: SourceImage, out: WriteStream | undefined, label: string) {
  if (!out) return undefined;
  const display = progressLine(`importing ${label}`, out);
  display.progress.resolved?.({ layers: image.layers.length, bytes: image.layers.reduce((sum, layer) => sum + (layer.size ?? 0), 0) || undefined });
  const layerBytes = async (index: number) => {
    const stream = await image.layers[index].open();
    return (async function* () {
      for await (const chunk of stream) {
        display.progress.bytes?.(chunk.length);
        yield chunk;
      }
      display.progress.layerDone?.({ index, reused: false });
    })();
  };
  return { layerBytes, stop: () => display.stop() };
}
