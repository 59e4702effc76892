// What each store write does, whichever route it took (route.ts): done directly by the store's
// owner, or by the owner's writer for root or a user (`user`: tags go under ~user/, within the
// user's quota). What the person at the terminal sees (progress, one summary line) goes through
// a WriteReport; the command line draws it on stderr (cli/write-report.ts). Stdout is the caller's.

import type { Compression, Config } from '../../config/types.js';
import { COMPRESSIONS } from '../../config/schema.js';
import { userError } from '../../errors.js';
import { humanBytes } from '../../format.js';
import { createLogger } from '../../log.js';
import { importLayerImage } from '../import/layer-image.js';
import type { LayerSource } from '../import/layer-source.js';
import { importSourceImage, type ImportProgress } from '../import/source-image.js';
import { parseImageRef, parseTagRef } from '../ref.js';
import type { ImageSource } from '../sources/types.js';
import type { Store } from '../store.js';
import { removeTag, setTag } from '../tags.js';
import { checkUserQuota } from './quota.js';
import { relayRequestError, relayedImageSource, relayedLayerSource, type WriteRequest, type WriterChannel } from './relay/writer.js';
import { userTag } from './route.js';

/** How a store write shows itself to the person who asked. */
export interface WriteReport {
  /** An image import starts: its progress goes to `progress`; `stop` ends the display before any line. */
  importing(label: string): { progress: ImportProgress; stop(): void };
  /** One line for the person (a summary, what was tagged or removed). */
  say(line: string): void;
}

/** The NAME:TAG a write goes to: as typed for the site's names, in the user's namespace for a user. */
const targetTag = (text: string, user?: string) => (user ? userTag(text, user) : parseTagRef(text));
const tagText = (target: { name: string; tag: string }) => `${target.name}:${target.tag}`;

/** An image source into the store, with progress and one summary line. */
export async function writeSourceImage(config: Config, store: Store, report: WriteReport, source: ImageSource, options: { sourceText: string; tag?: string; flatten?: boolean; compression?: Compression; user?: string }): Promise<string> {
  // No log file configured: the summary line on stderr is the record (no JSON on the terminal).
  const log = config.log.file ? createLogger(config, { phase: 'import' }) : undefined;
  const display = report.importing(`importing ${source.description}`);
  let result;
  try {
    result = await importSourceImage(store, source, {
      sourceText: options.sourceText,
      tag: options.tag,
      placeTag: (text) => targetTag(text, options.user),
      compression: options.compression ?? config.import.compression,
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
  report.say(`imported ${result.tag} (${result.digest}) from ${source.description}: ${result.flattened ? 'flattened to 1 layer' : `${result.layers} layers`} (${result.reusedLayers} already stored), ${humanBytes(result.bytesRead)} read, in ${seconds}s`);
  log?.info('image imported', { source: options.sourceText, user: options.user, tag: result.tag, digest: result.digest, layers: result.layers, reused: result.reusedLayers, bytes: result.bytesRead, durationMs: Math.round(result.durationMs) });
  return result.digest;
}

/** A `dir:`/`tar:` layer (read here, or relayed as `layer`) on top of `base`. */
export async function writeLayerImage(config: Config, store: Store, report: WriteReport, options: { sourceText: string; tag: string; base?: string; compression?: Compression; layer?: LayerSource; user?: string }): Promise<string> {
  const tag = tagText(targetTag(options.tag, options.user));
  const result = await importLayerImage(store, { source: options.sourceText, layer: options.layer, tag, base: options.base, compression: options.compression ?? config.import.compression });
  report.say(`imported ${tag}: ${result.layers} layers, new layer ${humanBytes(result.layerSize)}, in ${(result.durationMs / 1000).toFixed(2)}s`);
  return result.digest;
}

export async function tagImage(store: Store, report: WriteReport, source: string, targetText: string, user?: string): Promise<string> {
  const digest = await store.resolve(source);
  const target = targetTag(targetText, user);
  await setTag(store.layout, target.name, target.tag, digest);
  report.say(`tagged ${tagText(target)} → ${digest}`);
  return digest;
}

export async function removeTags(store: Store, report: WriteReport, refs: string[], user?: string): Promise<void> {
  for (const text of refs) {
    const ref = parseImageRef(text, user);
    if (!ref.name || ref.digest) throw userError('E_BAD_REF', `strata rm removes tags; "${text}" is not a NAME:TAG`, { hint: 'name the tag (see `strata images`); unreferenced images go at `strata gc`' });
    const target = targetTag(text, user);
    const digest = await removeTag(store.layout, target.name, target.tag);
    report.say(`removed tag ${tagText(target)} (was ${digest}; its layers go at gc if nothing else uses them)`);
  }
}

/** The writer's side of a relayed request. Every field came from the caller: checked before use. */
export async function runStoreRequest(context: { config: Config; store: Store; user?: string; request: WriteRequest; channel: WriterChannel; report: WriteReport }): Promise<string | undefined> {
  const { config, store, user, request, channel, report } = context;
  const text = (value: unknown, what: string) => {
    if (typeof value !== 'string' || !value || value.length > 4096) throw relayRequestError(`no valid ${what}`);
    return value;
  };
  const optional = (value: unknown, what: string) => (value === undefined ? undefined : text(value, what));
  const compression = (value: unknown): Compression | undefined => {
    if (value === undefined) return undefined;
    if (!COMPRESSIONS.includes(value as Compression)) throw relayRequestError('no valid compression');
    return value as Compression;
  };
  switch (request?.op) {
    case 'import': {
      const source = relayedImageSource(channel, request);
      const asked = compression(request.compression);
      await checkUserQuota(config, store, user, await source.resolve(), asked);
      return writeSourceImage(config, store, report, source, { sourceText: text(request.sourceText, 'source'), tag: optional(request.tag, 'tag'), flatten: request.flatten === true, compression: asked, user });
    }
    case 'import-layer':
      if (!/^(dir|tar):/.test(text(request.sourceText, 'source'))) throw relayRequestError('a layer import names a dir: or tar: source');
      await checkUserQuota(config, store, user);
      return writeLayerImage(config, store, report, { sourceText: request.sourceText, tag: text(request.tag, 'tag'), base: optional(request.base, 'base'), compression: compression(request.compression), layer: relayedLayerSource(channel, request), user });
    case 'tag':
      return tagImage(store, report, text(request.source, 'source'), text(request.target, 'target'), user);
    case 'rm':
      if (!Array.isArray(request.refs) || request.refs.length > 1000) throw relayRequestError('no list of tags');
      await removeTags(store, report, request.refs.map((ref) => text(ref, 'tag')), user);
      return undefined;
    default:
      throw relayRequestError('unknown operation');
  }
}
