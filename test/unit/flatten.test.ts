// Flattening layer tars into one, as overlayfs would stack them.

import { flattenLayers, type FlattenLayer } from '../../src/store/import/flatten.js';
import { ByteSource, readTar } from '../../src/tar/reader.js';
import { isStrataError } from '../../src/errors.js';
import { layerTar, sha256, type TarSpec } from '../helpers/oci.js';

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

const layer = (entries: TarSpec[], name: string): FlattenLayer & { tar: Buffer } => {
  const tar = layerTar(entries);
  return { tar, diffId: sha256(tar), what: name, open: async () => once(tar) };
};

async function flatten(layers: FlattenLayer[]): Promise<Map<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of flattenLayers(layers)) chunks.push(chunk);
  const out = new Map<string, string>();
  for await (const entry of readTar(new ByteSource(once(Buffer.concat(chunks))))) {
    const parts: Buffer[] = [];
    for await (const part of entry.body()) parts.push(part);
    out.set(entry.path.replace(/\/$/, ''), entry.typeflag === '5' ? 'dir' : entry.typeflag === '1' ? `link:${entry.linkpath}` : Buffer.concat(parts).subarray(0, entry.size).toString());
  }
  return out;
}

test('deletions, opaque directories, replacements and merged directories', async () => {
  const base = layer(
    [
      { name: 'a', type: 'dir', mode: 0o700 },
      { name: 'a/x', content: 'x1' },
      { name: 'a/y', content: 'y1' },
      { name: 'd', type: 'dir' },
      { name: 'd/old', content: 'old' },
      { name: 'gone', type: 'dir' },
      { name: 'gone/deep', content: 'deep' },
      { name: 'f', type: 'dir' },
      { name: 'f/under', content: 'under' },
      { name: 'keep', content: 'k' },
      { name: 'keep-link', type: 'hardlink', linkname: 'keep' },
    ],
    'base',
  );
  const top = layer(
    [
      { name: 'a', type: 'dir', mode: 0o755 },
      { name: 'a/.wh.x' },
      { name: 'a/y', content: 'y2' },
      { name: 'd/.wh..wh..opq' },
      { name: 'd/new', content: 'new' },
      { name: '.wh.gone' },
      { name: 'f', content: 'now a file' },
    ],
    'top',
  );
  const result = await flatten([base, top]);
  expect(Object.fromEntries(result)).toEqual({
    a: 'dir',
    'a/y': 'y2',
    d: 'dir',
    'd/new': 'new',
    f: 'now a file',
    keep: 'k',
    'keep-link': 'link:keep',
  });
});

test('a layer whose bytes do not match its diff_id is an error', async () => {
  const base = layer([{ name: 'x', content: 'x' }], 'layer 1');
  const error = await flatten([{ ...base, diffId: sha256('other') }]).catch((e: unknown) => e);
  expect(isStrataError(error) && error.code).toBe('E_DIGEST');
});

test('a hard link to a file a later layer replaces cannot be flattened', async () => {
  const base = layer([{ name: 't', content: 'old' }, { name: 'l', type: 'hardlink', linkname: 't' }], 'layer 1');
  const top = layer([{ name: 't', content: 'new' }], 'layer 2');
  const error = await flatten([base, top]).catch((e: unknown) => e);
  expect(isStrataError(error) && error.message).toBe('cannot flatten: layer 1 hard-links l to t, which a later layer replaces');
});
