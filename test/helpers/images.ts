// Test images built the way an admin builds them: `strata import` of directory trees and of
// OCI-style layer tars (whiteouts included).

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { makeTree, type Site } from './site.js';

/** Write an OCI layer tar with python's tarfile: entries are [name, content | null for a dir]. */
export function writeLayerTar(path: string, entries: [string, string | null][]): string {
  const script = `
import tarfile, io, sys, json
entries = json.loads(sys.argv[2])
with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
    for name, content in entries:
        ti = tarfile.TarInfo(name)
        if content is None:
            ti.type = tarfile.DIRTYPE; ti.mode = 0o755
            t.addfile(ti)
        else:
            data = content.encode(); ti.size = len(data); ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
`;
  execFileSync('python3', ['-c', script, path, JSON.stringify(entries)]);
  return path;
}

async function mustImport(site: Site, args: string[]): Promise<string> {
  const result = await site.run(['import', ...args]);
  if (result.code !== 0) throw new Error(`strata import ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout.trim();
}

/**
 * A 3-layer image: base (busybox, /data/old.txt, /data/keep.txt, /opq/a), then a tar layer that
 * deletes /data/old.txt and makes /opq opaque (adding /opq/new), then a directory layer.
 */
export async function importThreeLayerImage(site: Site, tag = 'three:1'): Promise<string> {
  const base = makeTree(join(site.root, 'base'), { 'data/old.txt': 'old\n', 'data/keep.txt': 'keep\n', 'opq/a': 'a\n', 'opq/b': 'b\n' });
  await mustImport(site, [`dir:${base}`, '--tag', 'three-base:1']);
  const tar = writeLayerTar(join(site.root, 'l2.tar'), [
    ['data/.wh.old.txt', ''],
    ['opq/new', 'new\n'],
    ['opq/.wh..wh..opq', ''],
  ]);
  await mustImport(site, [`tar:${tar}`, '--tag', 'three-mid:1', '--base', 'three-base:1']);
  const top = makeTree(join(site.root, 'top'), { 'etc/top-marker': 'top\n' }, false);
  return mustImport(site, [`dir:${top}`, '--tag', tag, '--base', 'three-mid:1']);
}

/** A one-layer busybox image. */
export async function importSmallImage(site: Site, tag: string, files: Record<string, string> = {}): Promise<string> {
  const tree = makeTree(join(site.root, `tree-${tag.replace(/\W/g, '_')}`), { 'etc/image-name': `${tag}\n`, ...files });
  return mustImport(site, [`dir:${tree}`, '--tag', tag]);
}
