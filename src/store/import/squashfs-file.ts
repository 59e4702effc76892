// A squashfs file (Pyxis's PATH form, e.g. one `enroot import` made) read as a layer tar, in user
// space by sqfs2tar (squashfs-tools-ng, installed with tar2sqfs): the kernel never parses a
// user's squashfs.

import { execFile, spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { firstLine, userError } from '../../errors.js';
import { parseSavedMarker, type SavedMarker } from './saved-marker.js';

/** squashfs-tools-ng, installed with tar2sqfs (the import's own converter). */
const SQFS2TAR = '/usr/bin/sqfs2tar';
const RDSQUASHFS = '/usr/bin/rdsquashfs';

/**
 * The file as a tar stream, from a sqfs2tar of its own for each time the writer asks (it may read
 * a layer more than once); a sqfs2tar that fails ends the stream with its message.
 */
export async function* squashfsAsTar(path: string): AsyncGenerator<Buffer> {
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

export async function hasSquashfsMagic(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    return bytesRead === 4 && buffer.toString('latin1') === 'hsqs';
  } finally {
    await handle.close();
  }
}

/**
 * What the file's root directory says of it (saved-marker.ts): read by rdsquashfs in user space,
 * as whoever calls this (the submitting user), bounded in output and time.
 */
export function readSavedMarker(path: string): Promise<SavedMarker> {
  return new Promise((resolve, reject) => {
    execFile(RDSQUASHFS, ['--xattr', '/', path], { encoding: 'utf8', maxBuffer: 1 << 20, timeout: 60_000, env: { LC_ALL: 'C' } }, (error, stdout, stderr) => {
      if (error) {
        const why = (error as { code?: unknown }).code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER' ? 'its root directory has too many extended attributes' : firstLine(stderr) || error.message;
        reject(userError('E_BAD_REF', `cannot read squashfs file ${path}: ${firstLine(why)}`, { hint: 'check the file (unsquashfs -l lists it)' }));
      } else resolve(parseSavedMarker(stdout));
    });
  });
}
