// A squashfs file (Pyxis's PATH form, e.g. one `enroot import` made) read as a layer tar, in user
// space by sqfs2tar (squashfs-tools-ng, installed with tar2sqfs): the kernel never parses a
// user's squashfs.

import { open } from 'node:fs/promises';
import { firstLine, userError } from '../../errors.js';
import { startTool } from '../../host/tool-stream.js';
import { runTool } from '../../host/exec.js';
import { parseSavedMarker, type SavedMarker } from './saved-marker.js';

/** squashfs-tools-ng, installed with tar2sqfs (the import's own converter). */
const SQFS2TAR = '/usr/bin/sqfs2tar';

/**
 * The file as a tar stream, from a sqfs2tar of its own for each time the writer asks (it may read
 * a layer more than once); a sqfs2tar that fails ends the stream with its message.
 */
export async function* squashfsAsTar(path: string): AsyncGenerator<Buffer> {
  const reader = startTool(SQFS2TAR, ['--no-skip', path], ['ignore', 'pipe', 'pipe']);
  const stdout = reader.stdout!;
  try {
    for await (const chunk of stdout) yield chunk as Buffer;
  } finally {
    // A writer that gave up (quota, a bad entry) reads no more: sqfs2tar must not wait on the pipe.
    if (reader.process.exitCode === null) stdout.destroy();
  }
  const { code, error } = await reader.exit;
  if (code !== 0) {
    const why = firstLine(reader.stderr()) || error?.message || `sqfs2tar exit status ${code}`;
    throw userError('E_BAD_REF', `cannot read squashfs file ${path}: ${why}`, { hint: 'check the file (unsquashfs -l lists it)' });
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
 * as whoever calls this (the submitting user; the kernel never parses the file).
 */
export async function readSavedMarker(path: string): Promise<SavedMarker> {
  const listed = await runTool('rdsquashfs', ['--xattr', '/', path], { timeoutMs: 60_000 });
  if (listed.exitCode !== 0) {
    throw userError('E_BAD_REF', `cannot read squashfs file ${path}: ${firstLine(listed.stderr) || `rdsquashfs exit status ${listed.exitCode}`}`, { hint: 'check the file (unsquashfs -l lists it)' });
  }
  return parseSavedMarker(listed.stdout);
}
