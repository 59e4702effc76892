// `strata verify`: re-hash every layer file and blob against its name, check that every tag
// leads to a manifest whose config and layers are present, and that every file belongs to the
// store's owner and is readable by all (permission-check.ts). Reads only; reports every problem.

import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { permissionProblems } from './permission-check.js';
import { LAYER_SUFFIXES, nameWithoutSuffix } from './layout.js';
import { sha256OfFile } from './publish.js';
import type { Store } from './store.js';

export interface VerifyReport {
  checked: { layers: number; blobs: number; tags: number; bytes: number };
  problems: string[];
}

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
}

export async function verifyStore(store: Store, onFile?: (path: string) => void): Promise<VerifyReport> {
  const { layout } = store;
  const report: VerifyReport = { checked: { layers: 0, blobs: 0, tags: 0, bytes: 0 }, problems: [] };
  const check = async (dir: string, suffixes: readonly string[], kind: 'layers' | 'blobs') => {
    for (const name of await names(dir)) {
      const hex = nameWithoutSuffix(name, suffixes);
      const path = join(dir, name);
      if (!/^[0-9a-f]{64}$/.test(hex)) {
        report.problems.push(`${path}: not a content address (stray file)`);
        continue;
      }
      // Only regular files are hashed: a directory fails to read, a fifo would block forever, and a
      // symlink (reported by the permission check) must not be followed.
      const info = await lstat(path);
      if (info.isSymbolicLink()) continue; // permissionProblems reports it
      if (!info.isFile()) {
        const what = info.isDirectory() ? 'a directory' : 'a special file';
        report.problems.push(`${path}: ${what}, not a ${kind === 'layers' ? 'layer file' : 'blob'} (stray entry); remove it`);
        continue;
      }
      onFile?.(path);
      const { digest, size } = await sha256OfFile(path);
      report.checked[kind]++;
      report.checked.bytes += size;
      if (digest !== `sha256:${hex}`) report.problems.push(`${path}: corrupt (its content hashes to ${digest})`);
    }
  };
  report.problems.push(...(await permissionProblems(layout.root)));
  await check(join(layout.root, 'layers', 'sha256'), LAYER_SUFFIXES, 'layers');
  await check(join(layout.root, 'blobs', 'sha256'), [], 'blobs');
  for (const tag of await store.listTags()) {
    report.checked.tags++;
    const ref = `${tag.name}:${tag.tag}`;
    try {
      const image = await store.open(ref);
      const missing: string[] = [];
      for (const layer of image.layers) {
        if (!(await stat(layer.path).catch(() => undefined))) missing.push(layer.digest);
      }
      for (const digest of missing) report.problems.push(`${ref}: layer ${digest} is missing`);
    } catch (error) {
      report.problems.push(`${ref}: ${(error as Error).message}`);
    }
  }
  return report;
}
