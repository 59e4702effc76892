// The incremental tar reader on archives built in-process (GNU tar's own archives, in every
// format, are read in test/integration/tar-reader-gnu.test.ts).

import { displayName } from '../../src/tar/header.js';
import { ByteSource, readTar } from '../../src/tar/reader.js';
import { buildTar, chunked } from '../helpers/tar-build.js';

async function paths(bytes: Buffer): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of readTar(new ByteSource(chunked(bytes, 512)))) found.push(entry.path);
  return found;
}

describe('readTar', () => {
  it('reports paths as binary strings that round-trip any bytes', async () => {
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9, ...Buffer.from('-latin1')]);
    const bytes = buildTar([{ name: latin1 }, { name: '\u65e5\u672c' }], { format: 'gnu' });
    const [first, second] = await paths(bytes);
    expect(Buffer.from(first, 'latin1')).toEqual(latin1);
    expect(displayName(second)).toBe('\u65e5\u672c');
  });

  it('sees every input byte, trailing record padding included', async () => {
    const tar = buildTar([{ name: 'small', data: 'small\n' }], { format: 'gnu' });
    let seen = 0;
    const source = new ByteSource(chunked(tar, 1000), (chunk) => (seen += chunk.length));
    for await (const _entry of readTar(source)) void _entry;
    expect(seen).toBe(tar.length);
    expect(tar.length).toBe(10240);
  });
});
