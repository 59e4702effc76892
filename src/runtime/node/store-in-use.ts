// What this node holds of an image store, for `strata gc`: the manifests its jobs pinned (their
// entry.json) and the layer files it has mounted (through loop devices, or erofs on the file). Node state, read here so that
// the store's mark and sweep (store/gc.ts) takes it as data and never reads the runtime itself.

import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { listLoopDevices } from '../../host/loop.js';
import { readMountinfo } from '../../host/mountinfo.js';
import { LAYER_SUFFIXES, nameWithoutSuffix } from '../../store/layout.js';
import { RuntimePaths } from '../paths.js';
import { parseEntry } from '../job/records.js';
import type { NodeUse } from '../../store/gc.js';

/** A job directory's entry file, or undefined for a name that is no job id. */
function jobEntryPath(runtime: RuntimePaths, name: string): string | undefined {
  try {
    return runtime.job(name).entry;
  } catch {
    return undefined;
  }
}

async function pinnedOnThisNode(runtimeDir: string): Promise<string[]> {
  const runtime = new RuntimePaths(runtimeDir);
  const names = await readdir(runtime.jobsDir).catch(() => [] as string[]);
  const pins: string[] = [];
  for (const name of names) {
    const path = jobEntryPath(runtime, name);
    const entry = path ? await readFile(path, 'utf8').then((text) => parseEntry(text, path), () => undefined) : undefined;
    if (entry?.manifestDigest) pins.push(entry.manifestDigest);
  }
  return pins;
}

function mountedLayers(storeRoot: string): string[] {
  const prefix = join(storeRoot, 'layers', 'sha256') + '/';
  // A layer file replaced while attached (" (deleted)") still pins its digest. erofs layers
  // backed by their file have no loop device: mountinfo names the file.
  const erofsFiles = readMountinfo().filter((entry) => entry.fsType === 'erofs').map((entry) => entry.source);
  return [...listLoopDevices().map((loop) => loop.backingFile), ...erofsFiles]
    .filter((backing) => backing.startsWith(prefix))
    .map((backing) => `sha256:${nameWithoutSuffix(backing.slice(prefix.length), LAYER_SUFFIXES)}`);
}

/** This node's uses of the store at `storeRoot`, with jobs recorded under `runtimeDir`. */
export async function storeInUse(storeRoot: string, runtimeDir: string): Promise<NodeUse> {
  return { pinnedManifests: await pinnedOnThisNode(runtimeDir), mountedLayers: mountedLayers(storeRoot) };
}
