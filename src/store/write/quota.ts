// How much of the store a user's own images (`~USER/`) take, for import.user_quota: the layer
// files their tags use that no site tag uses (a layer shared with a site image costs them nothing).
// Reads tags and manifests only (metadata), once per user import.

import { namespaceOf } from '../ref.js';
import type { Store } from '../store.js';

export interface UserUsage {
  bytes: number;
  /** Layer digests the user is charged for. */
  charged: Set<string>;
  /** Layer digests site images use (free for users). */
  site: Set<string>;
}

export async function userUsage(store: Store, user: string): Promise<UserUsage> {
  const own = new Map<string, number>();
  const site = new Set<string>();
  for (const entry of await store.listTags()) {
    const namespace = namespaceOf(entry.name);
    if (namespace !== undefined && namespace !== user) continue;
    const manifest = await store.readManifest(entry.digest, `${entry.name}:${entry.tag}`).catch(() => undefined);
    for (const layer of manifest?.layers ?? []) {
      if (namespace === undefined) site.add(layer.digest);
      else own.set(layer.digest, layer.size);
    }
  }
  const charged = new Set([...own.keys()].filter((digest) => !site.has(digest)));
  return { bytes: [...charged].reduce((sum, digest) => sum + own.get(digest)!, 0), charged, site };
}
