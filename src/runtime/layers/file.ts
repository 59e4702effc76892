// Checks on a layer file before the kernel parses it as root: it must be a regular file (a planted
// symlink is not followed), owned by the store's owner (the owner of its directory, which only
// `strata import` writes) and writable by nobody else. A file that cannot even be looked up or
// read is the store failing (I/O error, shared filesystem gone): a node fault, not a bad image.

import { closeSync, lstatSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { errnoCode, nodeError, userError } from '../../errors.js';
import { perRun } from '../../host/job-context.js';

const storeIoError = (file: string, error: unknown) =>
  nodeError('E_STORE_IO', `cannot read layer file ${file} from the image store: ${errnoCode(error) ?? (error as Error).message}`, {
    hint: 'check the shared filesystem on this node (mounted? I/O errors in dmesg?)',
    cause: error,
  });

function lstatOrThrow(path: string) {
  try {
    return lstatSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
    throw storeIoError(path, error);
  }
}

// All layers of an image share one store directory: look it up once per process, since every
// lookup is a metadata operation on the shared filesystem's servers.
// (One lookup per run in the node agent, which serves many jobs: perRun.)
const DIR_STATS = {};
function storeDirStat(dir: string) {
  const dirStats = perRun(DIR_STATS, () => new Map<string, ReturnType<typeof lstatOrThrow>>());
  if (!dirStats.has(dir)) dirStats.set(dir, lstatOrThrow(dir));
  return dirStats.get(dir);
}

/** Refuse a layer file that is missing, not a regular file, or not the store owner's alone. */
export function checkLayerFile(file: string, digest: string): void {
  const stat = lstatOrThrow(file);
  if (!stat) {
    throw userError('E_IMAGE_BROKEN', `layer ${digest} of this image is missing from the store`, {
      hint: 'the image is damaged or was removed; ask your admin to re-import it',
      detail: `missing ${file}`,
    });
  }
  const unsafe = (why: string) =>
    userError('E_IMAGE_UNSAFE', `layer ${digest} of this image is not safe to mount: ${why}`, {
      hint: 'ask your admin to check the store (files must belong to the store owner and be writable by nobody else)',
      detail: file,
    });
  if (stat.isSymbolicLink()) throw unsafe('it is a symbolic link');
  if (!stat.isFile()) throw unsafe('it is not a regular file');
  const dir = storeDirStat(dirname(file));
  if (dir && stat.uid !== dir.uid) throw unsafe(`owned by uid ${stat.uid}, not by the store's owner (uid ${dir.uid})`);
  if (stat.mode & 0o022) throw unsafe(`writable by ${stat.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(stat.mode & 0o7777).toString(8)})`);
}

/** After a failed mount: throw a node fault if the file cannot even be read (the store is failing). */
export function probeLayerRead(file: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    readSync(fd, Buffer.alloc(4096), 0, 4096, 0);
  } catch (error) {
    throw storeIoError(file, error);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
