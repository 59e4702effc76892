// `strata _store-write`: the writing half of a store write, run as the store's owner (started by
// sudo or setpriv, never by hand: see host/store-writer.ts). The request arrives on `input`; who
// asked is what sudo says, and decides the namespace the write may touch.

import { lstat } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { configSource, loadConfig } from '../../config/load.js';
import { userError } from '../../errors.js';
import { Store } from '../store.js';
import { WriterChannel, relayRequestError } from './relay/writer.js';
import { runStoreRequest, type WriteReport } from './requests.js';
import { storeOwner } from './route.js';

export async function serveStoreWrite(input: Readable, output: Writable, report: WriteReport): Promise<void> {
  process.umask(0o022);
  const channel = new WriterChannel(input, output);
  channel.send({ ready: true });
  try {
    const caller = sudoCaller(process.env);
    if (caller) await checkConfigTrusted();
    const config = await loadConfig();
    const root = config.store.path;
    const owner = await storeOwner(root);
    if (!owner) throw userError('E_STORE_DENIED', `there is no image store at ${root} yet`, { hint: 'an admin creates it with the first import' });
    if (owner.uid !== process.getuid!()) {
      throw userError('E_STORE_DENIED', `strata's store writer runs as uid ${process.getuid!()}, but the store ${root} belongs to ${owner.name}`, {
        hint: `the sudoers rule must run it as the store's owner: (${owner.name})`,
      });
    }
    // Root and the owner write the site's names; anyone else (through sudo) only their own.
    const user = caller && caller.uid !== 0 && caller.uid !== owner.uid ? caller.name : undefined;
    if (user && !config.import.userImports) {
      throw userError('E_STORE_DENIED', `user imports are not enabled on this site, so ${user} cannot write the image store`, { hint: 'ask an admin to import the image (or to set import.user_imports)' });
    }
    const store = new Store(root, user);
    const request = await channel.readRequest();
    const digest = await runStoreRequest({ config, store, user, request, channel, report });
    channel.send({ result: { digest } });
  } finally {
    channel.close();
  }
}

/** The user sudo ran us for (sudo sets these; nobody else can start us as the owner). */
function sudoCaller(env: NodeJS.ProcessEnv): { uid: number; name: string } | undefined {
  if (!env.SUDO_UID) return undefined;
  if (!/^\d+$/.test(env.SUDO_UID) || !env.SUDO_USER) throw relayRequestError('sudo gave no caller');
  return { uid: Number(env.SUDO_UID), name: env.SUDO_USER };
}

/**
 * A user must not point the writer at a configuration of their own (a sudoers env_keep of
 * STRATA_CONFIG would let them): the file must be root's or the owner's, and writable by no one else.
 */
async function checkConfigTrusted(): Promise<void> {
  const { path, explicit } = configSource();
  if (!explicit) return;
  const info = await lstat(path).catch(() => undefined);
  if (!info) return; // loadConfig reports a missing file
  if (!info.isFile() || (info.uid !== 0 && info.uid !== process.getuid!()) || info.mode & 0o022) {
    throw userError('E_STORE_DENIED', `refusing configuration ${path} for a store write: it must be a file of root or the store owner that nobody else can write`, {
      hint: 'use the site configuration (unset STRATA_CONFIG)',
    });
  }
}
