// How much of the store a user's own images (`~USER/`) take, for import.user_quota: the layer
// files their tags use that no site tag uses (a layer shared with a site image costs them nothing).
// Reads tags and manifests only (metadata), once per user import. Store policy: the writer
// checks it for every user write, whichever command asked.

import type { Compression, Config } from '../../config/types.js';
import { userError } from '../../errors.js';
import { humanBytes } from '../../format.js';
import { storedLayerFor } from '../import/stored-layer.js';
import { layerFormatFor } from '../layout.js';
import { namespaceOf } from '../ref.js';
import { configDiffIds } from '../sources/manifest.js';
import type { SourceImage } from '../sources/types.js';
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

/**
 * A user's import must fit in import.user_quota. Checked before anything is downloaded, by the
 * source's layer sizes (a layer already in the store counts with its stored size, and nothing when
 * a site image or another of theirs has it); a source without sizes is held to what is used already.
 */
export async function checkUserQuota(config: Config, store: Store, user: string | undefined, image?: SourceImage, compression: Compression = config.import.compression): Promise<void> {
  const quota = config.import.userQuota;
  if (!user || quota === 0) return;
  const usage = await userUsage(store, user);
  let adding = 0;
  if (image) {
    const diffIds = configDiffIds(image.configBytes, image.layers.length, 'the image');
    for (const [index, layer] of image.layers.entries()) {
      const stored = await storedLayerFor(store, diffIds[index], layerFormatFor(compression));
      if (!stored) adding += layer.size ?? 0;
      else if (!usage.site.has(stored.digest) && !usage.charged.has(stored.digest)) adding += stored.size;
    }
  }
  if (usage.bytes >= quota || usage.bytes + adding > quota) {
    throw userError('E_QUOTA', `your images (~${user}/) would take ${humanBytes(usage.bytes + adding)} of the store, more than your quota of ${humanBytes(quota)}`, {
      hint: 'remove some of yours with `strata rm ~/NAME:TAG` (`strata images` lists them), or ask an admin for more (import.user_quota)',
    });
  }
}
