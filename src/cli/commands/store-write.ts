// Store writes from the command line: which route a write takes (store/write/route.ts), the
// caller's half that hands it to the owner's writer, and `strata _store-write`, the writer itself
// (started by sudo or setpriv, never by hand: see host/store-writer.ts).

import { lstat, stat } from 'node:fs/promises';
import type { Config } from '../../config/types.js';
import { errnoCode, userError } from '../../errors.js';
import { startStoreWriter, strataExecutable, writerCommand } from '../../host/store-writer.js';
import { userNameOf } from '../../host/passwd.js';
import { relayWrite, type LayerBytes } from '../../store/write/relay/caller.js';
import { WriterChannel, relayRequestError, type WriteRequest } from '../../store/write/relay/writer.js';
import { Store } from '../../store/store.js';
import { planStoreWrite, type Account, type WriteRoute } from '../../store/write/route.js';
import { configSource, loadConfig } from '../../config/load.js';

/** The owner of the store's root directory, or undefined while there is no store yet. */
async function storeOwner(root: string): Promise<Account | undefined> {
  // The directory the (admin-configured) path leads to, also through a symlink: its owner writes.
  const info = await stat(root).catch((error: unknown) => {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  });
  if (!info) return undefined;
  return { uid: info.uid, gid: info.gid, name: (await userNameOf(info.uid)) ?? `uid ${info.uid}` };
}

async function currentAccount(): Promise<Account> {
  const uid = process.getuid!();
  return { uid, gid: process.getgid!(), name: (await userNameOf(uid)) ?? String(uid) };
}

/**
 * How this process's write to the store goes. A direct write gets umask 022 here, whatever the
 * admin's shell has: every store file must be readable by all users and by every node.
 */
export async function storeWriteRoute(config: Config): Promise<WriteRoute> {
  const route = planStoreWrite({ caller: await currentAccount(), owner: await storeOwner(config.store.path), root: config.store.path, userImports: config.import.userImports });
  if (route.how === 'direct') process.umask(0o022);
  return route;
}

/** Hands `request` to the store owner's writer; resolves with the digest it published, if any. */
export async function writeThroughOwner(route: Extract<WriteRoute, { how: 'relay' }>, request: WriteRequest, layerBytes?: LayerBytes): Promise<{ status: number; ready: boolean; digest?: string }> {
  const writer = startStoreWriter(route.launch);
  const outcome = await relayWrite(writer, request, layerBytes);
  if (!outcome.ready && outcome.status !== 0 && route.launch.how === 'sudo') {
    throw userError('E_STORE_DENIED', `sudo did not run strata's store writer as ${route.owner.name}, so user imports cannot work here`, {
      hint: `ask your admin to install the sudoers rule from docs/install.md: ALL ALL=(${route.owner.name}) NOPASSWD: ${strataExecutable()} _store-write`,
      detail: writerCommand(route.launch).join(' '),
    });
  }
  return outcome;
}

/** `strata _store-write`: the writing half, as the store's owner. The request is on stdin. */
export async function storeWriteCommand(): Promise<number> {
  process.umask(0o022);
  const channel = new WriterChannel(process.stdin, process.stdout);
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
    const { runStoreRequest } = await import('../../store/write/requests.js');
    const digest = await runStoreRequest({ config, store, user, request, channel });
    channel.send({ result: { digest } });
  } finally {
    channel.close();
  }
  return 0;
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

