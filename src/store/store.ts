// Reading the store: resolve a reference to a manifest digest, read manifests and configs, list
// images. This runs in every prolog, so it touches as few files on the shared filesystem as it can
// (a pinned digest costs one open for the manifest and one for the config, and a stat each once
// they were read: text-cache.ts).

import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, isStrataError, nodeError, userError } from '../errors.js';
import { DIFF_ID_ANNOTATION, type ImageConfig, type Manifest } from './image.js';
import { StoreLayout, layerFormatOf, type LayerFormat } from './layout.js';
import { storeNamesFor } from '../registry/image-arg.js';
import { formatRef, parseImageRef } from './ref.js';
import { readStoreText } from './text-cache.js';

export interface StoredLayer {
  digest: string;
  size: number;
  format: LayerFormat;
  path: string;
  diffId?: string;
}

export interface ResolvedImage {
  /** What the user asked for, for messages. */
  ref: string;
  manifestDigest: string;
  manifest: Manifest;
  config: ImageConfig;
  /** Base layer first, as in the manifest. */
  layers: StoredLayer[];
}

export interface TagEntry {
  name: string;
  tag: string;
  digest: string;
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export class Store {
  readonly layout: StoreLayout;

  /** `self`: whom `~/NAME:TAG` means (the caller, or the job's user). */
  constructor(root: string, readonly self?: string) {
    this.layout = new StoreLayout(root);
  }

  /**
   * Resolve a reference to a manifest digest (a digest resolves to itself if the manifest exists).
   * A registry image in Pyxis's syntax (`nvcr.io#nvidia/pytorch:24.05-py3`) is looked up under the
   * name an import gives it, first among the site's names, then among `self`'s own (where an
   * import on first use puts it): a site image is never shadowed by a user's.
   */
  async resolve(refText: string): Promise<string> {
    const names = storeNamesFor(refText, this.self);
    for (const name of names) {
      const digest = await this.resolveName(name, refText);
      if (digest) return digest;
    }
    throw await this.unknownImage(refText, names[0] ?? refText);
  }

  /** One store name's digest, or undefined when the store has no such image. */
  private async resolveName(name: string, refText: string): Promise<string | undefined> {
    const ref = parseImageRef(name, this.self);
    if (ref.digest) {
      try {
        await this.readManifest(ref.digest, refText);
      } catch (error) {
        if (isStrataError(error) && error.code === 'E_UNKNOWN_IMAGE') return undefined;
        throw error;
      }
      return ref.digest;
    }
    const tagFile = this.layout.tagPath(ref.name!, ref.tag!);
    let text: string;
    try {
      text = await readStoreText(tagFile, { noFollow: false });
    } catch (error) {
      if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
      throw this.unreachable(error);
    }
    const digest = text.trim();
    if (!DIGEST_RE.test(digest)) {
      // One damaged tag fails the jobs that use it, not every node they land on.
      throw userError('E_IMAGE_BROKEN', `image ${refText} is damaged in the store (its tag does not hold a digest)`, {
        hint: 'ask your admin to re-import it',
        detail: `tag file ${tagFile}`,
      });
    }
    return digest;
  }

  /** Resolve and read everything a node needs to set the image up. */
  async open(refText: string, pinnedDigest?: string): Promise<ResolvedImage> {
    const manifestDigest = pinnedDigest ?? (await this.resolve(refText));
    const manifest = await this.readManifest(manifestDigest, refText);
    const config = await this.readJson<ImageConfig>(manifest.config.digest, `config of ${refText}`);
    const layers = manifest.layers.map((descriptor): StoredLayer => {
      const format = layerFormatOf(descriptor.mediaType)!;
      return {
        digest: descriptor.digest,
        size: descriptor.size,
        format,
        path: this.layout.layerPath(descriptor.digest, format),
        diffId: descriptor.annotations?.[DIFF_ID_ANNOTATION],
      };
    });
    return { ref: refText || manifestDigest, manifestDigest, manifest, config, layers };
  }

  async readManifest(digest: string, forRef = digest): Promise<Manifest> {
    const manifest = await this.readJson<Manifest>(digest, forRef);
    const broken = (why: string) =>
      userError('E_IMAGE_BROKEN', `image ${forRef} (${digest}) is damaged in the store: ${why}`, {
        hint: 'ask your admin to re-import it',
      });
    if (!manifest || !Array.isArray(manifest.layers) || !manifest.config || !DIGEST_RE.test(manifest.config.digest)) {
      throw broken('not an image manifest');
    }
    for (const layer of manifest.layers) {
      if (!DIGEST_RE.test(layer?.digest)) throw broken('a layer has no valid digest');
      if (!layerFormatOf(layer.mediaType)) throw broken(`layer ${layer.digest} has unsupported type ${layer.mediaType}`);
    }
    return manifest;
  }

  private async readJson<T>(digest: string, forRef: string): Promise<T> {
    let text: string;
    try {
      text = await readStoreText(this.layout.blobPath(digest), { noFollow: true });
    } catch (error) {
      if (errnoCode(error) === 'ELOOP') {
        throw userError('E_IMAGE_UNSAFE', `image ${forRef}: ${digest} in the store is a symbolic link; strata does not follow links in the store`, {
          hint: 'ask your admin to check the store',
        });
      }
      if (errnoCode(error) !== 'ENOENT') throw this.unreachable(error);
      await this.checkReachable();
      throw userError('E_UNKNOWN_IMAGE', `image ${forRef} is not in the store (${digest} is missing)`, {
        hint: 'it may have been removed; resubmit with an image from `strata images`',
      });
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw userError('E_IMAGE_BROKEN', `image ${forRef}: ${digest} is not valid JSON`, { hint: 'ask your admin to re-import it' });
    }
  }

  async listTags(): Promise<TagEntry[]> {
    const entries: TagEntry[] = [];
    const walk = async (dir: string, nameParts: string[]): Promise<void> => {
      let children;
      try {
        children = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') return;
        throw this.unreachable(error);
      }
      for (const child of children) {
        if (child.isDirectory()) await walk(join(dir, child.name), [...nameParts, child.name]);
        else if (child.name.startsWith('@') && nameParts.length) {
          const digest = (await readFile(join(dir, child.name), 'utf8').catch(() => '')).trim();
          if (DIGEST_RE.test(digest)) entries.push({ name: nameParts.join('/'), tag: child.name.slice(1), digest });
        }
      }
    };
    await walk(this.layout.tagsDir, []);
    // The site's names first, then users' ~USER/ namespaces.
    const key = (entry: TagEntry) => `${entry.name.startsWith('~') ? 1 : 0}${entry.name}:${entry.tag}`;
    return entries.sort((a, b) => key(a).localeCompare(key(b)));
  }

  async checkReachable(): Promise<void> {
    try {
      await stat(this.layout.root);
    } catch (error) {
      throw this.unreachable(error);
    }
    // An empty directory where the store should be is an unmounted shared filesystem (its mount
    // point), not an image the user got wrong: every job would fail on this node.
    const layers = await stat(join(this.layout.root, 'layers')).catch((error: unknown) => error);
    if (layers instanceof Error) {
      if (errnoCode(layers) !== 'ENOENT') throw this.unreachable(layers);
      throw nodeError('E_STORE_UNREACHABLE', `image store ${this.layout.root} holds no layers: the shared filesystem is not mounted, or store.path is wrong`, {
        hint: 'check that the shared filesystem is mounted on this node and store.path in strata.yaml',
      });
    }
  }

  private unreachable(error: unknown) {
    return nodeError('E_STORE_UNREACHABLE', `image store ${this.layout.root} is not reachable: ${(error as Error).message}`, {
      hint: 'check that the shared filesystem is mounted on this node and store.path in strata.yaml',
      cause: error,
    });
  }

  private async unknownImage(refText: string, name = refText) {
    await this.checkReachable();
    const ref = parseImageRef(name, this.self);
    const wanted = formatRef({ name: ref.name, tag: ref.tag });
    const close = closeMatches(wanted, (await this.listTags()).map((entry) => `${entry.name}:${entry.tag}`));
    return userError('E_UNKNOWN_IMAGE', `unknown image "${refText}"${close.length ? ` (did you mean ${close.map((c) => `"${c}"`).join(', ')}?)` : ''}`, {
      hint: 'list images with `strata images`; an admin adds one with `strata import docker://REPO:TAG --tag NAME:TAG`',
    });
  }
}

/** Up to three known names close to `wanted`: same name with another tag, or a small edit distance. */
export function closeMatches(wanted: string, known: string[]): string[] {
  const nameOf = (ref: string) => ref.slice(0, ref.lastIndexOf(':') > ref.lastIndexOf('/') ? ref.lastIndexOf(':') : ref.length);
  const name = nameOf(wanted);
  return known
    .map((candidate) => ({ candidate, distance: nameOf(candidate) === name ? 0.5 : editDistance(wanted, candidate) }))
    .filter(({ distance }) => distance <= Math.max(2, Math.floor(wanted.length / 4)))
    .sort((a, b) => a.distance - b.distance)
    .slice(0, 3)
    .map(({ candidate }) => candidate);
}

export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length];
}
