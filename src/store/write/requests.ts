// What each store write does, whichever route it took (store/write/route.ts): done here directly
// by the store's owner, or by the owner's writer for root or a user (`user`: tags go under
// ~user/). Messages and progress go to stderr; stdout is the caller's (or the relay's).

import type { Config } from '../../config/types.js';
import { userError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { importFromSource, storedLayerFor } from '../import/source-image.js';
import { importImage } from '../import/layer-image.js';
import type { LayerSource } from '../import/layer-source.js';
import { parseImageRef, parseTagRef } from '../ref.js';
import type { WriterChannel, WriteRequest } from './relay/writer.js';
import { relayRequestError, relayedImageSource, relayedLayerSource } from './relay/writer.js';
import { configDiffIds } from '../sources/manifest.js';
import type { ImageSource, SourceImage } from '../sources/types.js';
import { userUsage } from './quota.js';
import type { Store } from '../store.js';
import { removeTag, setTag } from '../tags.js';
import { userTag } from './route.js';
import { importProgressDisplay } from '../../cli/progress.js';
import { humanBytes } from '../../format.js';

/** The NAME:TAG a write goes to: as typed for the site's names, in the user's namespace for a user. */
const targetTag = (text: string, user?: string) => (user ? userTag(text, user) : parseTagRef(text));
const tagText = (target: { name: string; tag: string }) => `${target.name}:${target.tag}`;

/** An image source into the store, with progress on a terminal and one summary line. */
export async function importImageSource(config: Config, store: Store, source: ImageSource, options: { sourceText: string; tag?: string; flatten?: boolean; user?: string }): Promise<string> {
  // No log file configured: the summary line on stderr is the record (no JSON on the terminal).
  const log = config.log.file ? createLogger(config, { phase: 'import' }) : undefined;
  const display = importProgressDisplay(`importing ${source.description}`);
  let result;
  try {
    result = await importFromSource(store, source, {
      sourceText: options.sourceText,
      tag: options.tag,
      placeTag: (text) => targetTag(text, options.user),
      compression: config.import.compression,
      parallelLayers: config.import.parallelLayers,
      flatten: options.flatten,
      flattenAbove: config.import.flattenAbove,
      lustreStripeCount: config.import.lustreStripeCount,
      progress: display.progress,
    });
  } catch (error) {
    display.stop();
    log?.error('import failed', { source: options.sourceText, user: options.user, error: (error as Error).message });
    throw error;
  }
  display.stop();
  const seconds = (result.durationMs / 1000).toFixed(2);
  process.stderr.write(`imported ${result.tag} (${result.digest}) from ${source.description}: ${result.flattened ? 'flattened to 1 layer' : `${result.layers} layers`} (${result.reusedLayers} already stored), ${humanBytes(result.bytesRead)} read, in ${seconds}s\n`);
  log?.info('image imported', { source: options.sourceText, user: options.user, tag: result.tag, digest: result.digest, layers: result.layers, reused: result.reusedLayers, bytes: result.bytesRead, durationMs: Math.round(result.durationMs) });
  return result.digest;
}

/** A `dir:`/`tar:` layer (read here, or relayed as `layer`) on top of `base`. */
export async function importLayer(config: Config, store: Store, options: { sourceText: string; tag: string; base?: string; layer?: LayerSource; user?: string }): Promise<string> {
  const tag = tagText(targetTag(options.tag, options.user));
  const result = await importImage(store, { source: options.sourceText, layer: options.layer, tag, base: options.base, compression: config.import.compression });
  process.stderr.write(`imported ${tag}: ${result.layers} layers, new layer ${humanBytes(result.layerSize)}, in ${(result.durationMs / 1000).toFixed(2)}s\n`);
  return result.digest;
}

export async function tagImage(store: Store, source: string, targetText: string, user?: string): Promise<string> {
  const digest = await store.resolve(source);
  const target = targetTag(targetText, user);
  await setTag(store.layout, target.name, target.tag, digest);
  process.stderr.write(`tagged ${tagText(target)} → ${digest}\n`);
  return digest;
}

export async function removeTags(store: Store, refs: string[], user?: string): Promise<void> {
  for (const text of refs) {
    const ref = parseImageRef(text, user);
    if (!ref.name || ref.digest) throw userError('E_BAD_REF', `strata rm removes tags; "${text}" is not a NAME:TAG`, { hint: 'name the tag (see `strata images`); unreferenced images go at `strata gc`' });
    const target = targetTag(text, user);
    const digest = await removeTag(store.layout, target.name, target.tag);
    process.stderr.write(`removed tag ${tagText(target)} (was ${digest}; its layers go at gc if nothing else uses them)\n`);
  }
}

/**
 * A user's import must fit in import.user_quota. Checked before anything is downloaded, by the
 * source's layer sizes (a layer already in the store counts with its stored size, and nothing when
 * a site image or another of theirs has it); a source without sizes is held to what is used already.
 */
async function checkQuota(config: Config, store: Store, user: string | undefined, image?: SourceImage): Promise<void> {
  const quota = config.import.userQuota;
  if (!user || quota === 0) return;
  const usage = await userUsage(store, user);
  let adding = 0;
  if (image) {
    const diffIds = configDiffIds(image.configBytes, image.layers.length, 'the image');
    for (const [index, layer] of image.layers.entries()) {
      const stored = await storedLayerFor(store, diffIds[index]);
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

/** The writer's side of a relayed request. Every field came from the caller: checked before use. */
export async function runStoreRequest(context: { config: Config; store: Store; user?: string; request: WriteRequest; channel: WriterChannel }): Promise<string | undefined> {
  const { config, store, user, request, channel } = context;
  const text = (value: unknown, what: string) => {
    if (typeof value !== 'string' || !value || value.length > 4096) throw relayRequestError(`no valid ${what}`);
    return value;
  };
  const optional = (value: unknown, what: string) => (value === undefined ? undefined : text(value, what));
  switch (request?.op) {
    case 'import': {
      const source = relayedImageSource(channel, request);
      await checkQuota(config, store, user, await source.resolve());
      return importImageSource(config, store, source, { sourceText: text(request.sourceText, 'source'), tag: optional(request.tag, 'tag'), flatten: request.flatten === true, user });
    }
    case 'import-layer':
      if (!/^(dir|tar):/.test(text(request.sourceText, 'source'))) throw relayRequestError('a layer import names a dir: or tar: source');
      await checkQuota(config, store, user);
      return importLayer(config, store, { sourceText: request.sourceText, tag: text(request.tag, 'tag'), base: optional(request.base, 'base'), layer: relayedLayerSource(channel, request), user });
    case 'tag':
      return tagImage(store, text(request.source, 'source'), text(request.target, 'target'), user);
    case 'rm':
      if (!Array.isArray(request.refs) || request.refs.length > 1000) throw relayRequestError('no list of tags');
      await removeTags(store, request.refs.map((ref) => text(ref, 'tag')), user);
      return undefined;
    default:
      throw relayRequestError('unknown operation');
  }
}
