// Who may write the store, and how. The store is written only by its owner (the owner of its root
// directory): nodes mount a layer file only when it belongs to the owner of its directory
// (runtime/layers/file.ts), and everything is readable by all and writable by nobody else.
//   - the owner writes directly;
//   - root writes through a writer running as the owner (files owned by root would be refused);
//   - any other user, where the site enables user imports, writes through sudo into `~USER/`.
// Planning is pure (planStoreWrite, userTag); storeWriteRoute reads who owns the store and who
// calls. The writer is started by host/store-writer.ts.

import { stat } from 'node:fs/promises';
import type { Config } from '../../config/types.js';
import { errnoCode, userError } from '../../errors.js';
import { userNameOf } from '../../host/passwd.js';
import type { WriterLaunch } from '../../host/store-writer.js';
import { USER_NAME_RE, namespaceOf, parseTagRef } from '../ref.js';

export interface Account {
  uid: number;
  gid: number;
  /** For messages; the uid when the name is unknown. */
  name: string;
}

export type WriteRoute =
  | { how: 'direct' }
  | { how: 'relay'; launch: WriterLaunch; owner: Account; /** tags go under ~user/ */ user?: string };

export function planStoreWrite(options: { caller: Account; owner?: Account; root: string; userImports: boolean }): WriteRoute {
  const { caller, owner, root } = options;
  // No store yet: the first import creates it, owned by whoever runs it.
  if (!owner || caller.uid === owner.uid) return { how: 'direct' };
  if (caller.uid === 0) return { how: 'relay', launch: { how: 'setpriv', ownerUid: owner.uid, ownerGid: owner.gid }, owner };
  if (!options.userImports) {
    throw userError('E_STORE_DENIED', `you (${caller.name}) cannot write the image store ${root}: it belongs to ${owner.name}`, {
      hint: `ask an admin to import the image; a site can let users import into their own ~USER/ namespace (import.user_imports in strata.yaml)`,
    });
  }
  if (!USER_NAME_RE.test(caller.name)) {
    throw userError('E_STORE_DENIED', `user imports need a login name of letters, digits, . _ -; yours is "${caller.name}"`, { hint: 'ask your admin to import the image for you' });
  }
  return { how: 'relay', launch: { how: 'sudo', ownerUid: owner.uid }, owner, user: caller.name };
}

/**
 * The tag a user's write goes to: their own namespace, whatever they typed (`x:1`, `~/x:1` and
 * `~alice/x:1` are all `~alice/x:1` for alice). Another user's namespace is refused.
 */
export function userTag(text: string, user: string): { name: string; tag: string } {
  const target = parseTagRef(text, user);
  const namespace = namespaceOf(target.name);
  if (namespace === undefined) return { name: `~${user}/${target.name}`, tag: target.tag };
  if (namespace !== user) {
    throw userError('E_STORE_DENIED', `you (${user}) can only write tags in your own namespace ~${user}/, not in ~${namespace}/`, { hint: `name it ~/NAME:TAG (or just NAME:TAG)` });
  }
  return target;
}

/** The owner of the store's root directory, or undefined while there is no store yet. */
export async function storeOwner(root: string): Promise<Account | undefined> {
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
