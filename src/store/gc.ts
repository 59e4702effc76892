// `strata gc`: mark and sweep. Roots: every tag; every manifest that lost its last tag less than
// `store.gc_grace` ago (tags.ts records when) or was written less than that ago; the manifests
// pinned by jobs on this node and the layer files loop-mounted on it (`NodeUse`, read by the
// caller: the store never reads the node's runtime state). From the roots: configs and layers. Anything else older than the grace period goes, as do stale
// `*.partial` files. Deciding is pure (planGc); only applyGc deletes.

import { constants } from 'node:fs';
import { open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { MANIFEST_MEDIA_TYPE } from './image.js';
import { LAYER_SUFFIXES, nameWithoutSuffix } from './layout.js';
import { sweepPartials } from './partials.js';
import { untaggedPath } from './tags.js';
import type { Store } from './store.js';

const HEX_RE = /^[0-9a-f]{64}$/;

export interface StoredFile {
  digest: string;
  path: string;
  size: number;
  /** ms since the epoch: when it was last written or reused. */
  mtimeMs: number;
}

export interface GcInventory {
  now: number;
  graceMs: number;
  tagged: string[];
  /** Manifests pinned by jobs on this node, and layer files mounted here. */
  pinnedManifests: string[];
  mountedLayers: string[];
  blobs: StoredFile[];
  layers: StoredFile[];
  /** diff_id → layer digest pointers. */
  diffIds: { diffId: string; layer: string; path: string }[];
  /** Manifest digest → when it lost a tag. */
  untaggedAt: Map<string, number>;
  /** The parsed manifests among the blobs: digest → referenced config and layers. */
  manifests: Map<string, { config: string; layers: string[] }>;
}

export interface GcPlan {
  keptImages: number;
  removeBlobs: StoredFile[];
  removeLayers: StoredFile[];
  removePointers: string[];
  /** Untagged records of manifests that are gone. */
  removeRecords: string[];
}

/** What to delete. Pure. */
export function planGc(inv: GcInventory): GcPlan {
  const recent = (ms: number) => inv.now - ms < inv.graceMs;
  const blobByDigest = new Map(inv.blobs.map((b) => [b.digest, b]));
  const roots = new Set<string>([...inv.tagged, ...inv.pinnedManifests]);
  for (const digest of inv.manifests.keys()) {
    const untagged = inv.untaggedAt.get(digest);
    const blob = blobByDigest.get(digest);
    if ((untagged !== undefined && recent(untagged)) || (blob && recent(blob.mtimeMs))) roots.add(digest);
  }
  const liveBlobs = new Set<string>();
  const liveLayers = new Set<string>(inv.mountedLayers);
  let keptImages = 0;
  for (const digest of roots) {
    const manifest = inv.manifests.get(digest);
    if (!manifest) continue;
    keptImages++;
    liveBlobs.add(digest);
    liveBlobs.add(manifest.config);
    for (const layer of manifest.layers) liveLayers.add(layer);
  }
  // Files nothing refers to are kept while recent: an import publishes layers and the config
  // before the manifest that refers to them.
  const removeBlobs = inv.blobs.filter((b) => !liveBlobs.has(b.digest) && !recent(b.mtimeMs));
  const removeLayers = inv.layers.filter((l) => !liveLayers.has(l.digest) && !recent(l.mtimeMs));
  const gone = new Set(removeLayers.map((l) => l.digest));
  const present = new Set(inv.layers.map((l) => l.digest));
  const removePointers = inv.diffIds.filter((p) => gone.has(p.layer) || !present.has(p.layer)).map((p) => p.path);
  const goneBlobs = new Set(removeBlobs.map((b) => b.digest));
  const removeRecords = [...inv.untaggedAt.keys()].filter((d) => goneBlobs.has(d) || !blobByDigest.has(d));
  return { keptImages, removeBlobs, removeLayers, removePointers, removeRecords };
}

/** The files of `dir` named by a sha256 hex digest, followed by one of `suffixes` when given. */
async function listDigests(dir: string, suffixes: readonly string[] = []): Promise<StoredFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
  const out: StoredFile[] = [];
  for (const name of names) {
    const hex = nameWithoutSuffix(name, suffixes);
    if ((suffixes.length > 0 && hex === name) || !HEX_RE.test(hex)) continue;
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile()) out.push({ digest: `sha256:${hex}`, path, size: info.size, mtimeMs: info.mtimeMs });
  }
  return out;
}

/**
 * A store file's text, or undefined: never through a symlink (a planted link would make root read
 * and print a host file), never from a fifo or device (O_NONBLOCK, regular files only).
 */
async function readPlainFile(path: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    if (!(await handle.stat()).isFile()) return undefined;
    return await handle.readFile('utf8');
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

const parseJson = (text: string | undefined): unknown => {
  try {
    return text === undefined ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
};

/** What this node holds of the store: roots of the mark (runtime/node/store-in-use.ts reads them). */
export interface NodeUse {
  /** Manifest digests pinned by jobs set up on this node. */
  pinnedManifests: string[];
  /** Layer digests of this store a loop device on this node is attached to. */
  mountedLayers: string[];
}

export async function gcInventory(store: Store, graceSeconds: number, nodeUse: NodeUse): Promise<GcInventory> {
  const layout = store.layout;
  const blobs = await listDigests(join(layout.root, 'blobs', 'sha256'));
  const layers = await listDigests(join(layout.root, 'layers', 'sha256'), LAYER_SUFFIXES);
  const manifests = new Map<string, { config: string; layers: string[] }>();
  for (const blob of blobs) {
    if (blob.size > 4 * 1024 * 1024) continue;
    const doc = parseJson(await readPlainFile(blob.path)) as { mediaType?: string; config?: { digest?: string }; layers?: { digest?: string }[] } | undefined;
    if (doc?.mediaType === MANIFEST_MEDIA_TYPE && doc.config?.digest && Array.isArray(doc.layers)) {
      manifests.set(blob.digest, { config: doc.config.digest, layers: doc.layers.map((l) => String(l.digest)) });
    }
  }
  const diffIds = [];
  for (const pointer of await listDigests(join(layout.root, 'diffids', 'sha256'))) {
    const layer = ((await readPlainFile(pointer.path)) ?? '').trim();
    diffIds.push({ diffId: pointer.digest, layer, path: pointer.path });
  }
  const untaggedAt = new Map<string, number>();
  for (const record of await listDigests(join(layout.root, 'untagged', 'sha256'))) untaggedAt.set(record.digest, record.mtimeMs);
  return {
    now: Date.now(),
    graceMs: graceSeconds * 1000,
    tagged: (await store.listTags()).map((t) => t.digest),
    pinnedManifests: nodeUse.pinnedManifests,
    mountedLayers: nodeUse.mountedLayers,
    blobs,
    layers,
    diffIds,
    untaggedAt,
    manifests,
  };
}

export interface GcResult extends GcPlan {
  partials: { path: string; size: number }[];
  bytes: number;
}

/** Runs gc (or only reports, with dryRun). Pointers go before layers, so no pointer ever dangles. */
export async function runGc(store: Store, options: { graceSeconds: number; nodeUse: NodeUse; dryRun: boolean }): Promise<GcResult> {
  const plan = planGc(await gcInventory(store, options.graceSeconds, options.nodeUse));
  const partials = await sweepPartials(store.layout, options.dryRun);
  if (!options.dryRun) {
    const remove = (path: string) => unlink(path).catch((error) => {
      if (errnoCode(error) !== 'ENOENT') throw error;
    });
    for (const path of plan.removePointers) await remove(path);
    for (const layer of plan.removeLayers) await remove(layer.path);
    for (const blob of plan.removeBlobs) await remove(blob.path);
    for (const digest of plan.removeRecords) await remove(untaggedPath(store.layout, digest));
  }
  const bytes = [...plan.removeBlobs, ...plan.removeLayers, ...partials].reduce((sum, f) => sum + f.size, 0);
  return { ...plan, partials, bytes };
}

