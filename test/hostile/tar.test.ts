// Hostile layer tars through the OCI → overlay converter (the code that sees every byte of an
// imported layer): path traversal, absolute names, link escapes, huge or bogus headers, device
// files, deep nesting, plus seeded byte-level fuzzing of a valid archive. Each gives a converted
// archive or a one-line user error (E_TAR) — never another exception, never a hang. The same
// tars through `strata import` are in import.test.ts.

import { isStrataError } from '../../src/errors.js';
import { TYPE } from '../../src/tar/header.js';
import { NeedsPlan, toOverlayTar, type LayerPlan } from '../../src/tar/overlay-convert.js';
import { RUNS, SEED, expectCleanOutcome, mutateBytes, prng } from './fuzz.js';
import { buildTar, type Entry } from './tar-builder.js';

const deep = Array.from({ length: 2000 }, () => 'd').join('/');

/** Named hostile archives and whether they must be refused (true) or may be either (undefined). */
const HOSTILE: [string, Entry[], boolean | undefined][] = [
  ['plain files', [{ name: 'etc/', type: TYPE.dir }, { name: 'etc/hello', data: 'hi\n' }], false],
  ['path traversal', [{ name: '../../../tmp/strata-escape', data: 'x' }], true],
  ['traversal inside a name', [{ name: 'a/../../b', data: 'x' }], true],
  ['absolute name', [{ name: '/etc/passwd', data: 'root::0:0::/:/bin/sh\n' }], true],
  ['absolute name by PAX', [{ name: 'ok', data: 'x', pax: { path: '/etc/shadow' } }], true],
  ['hard link out of the archive', [{ name: 'shadow', type: TYPE.hardlink, linkname: '../../etc/shadow' }], true],
  ['hard link to an absolute path', [{ name: 'passwd', type: TYPE.hardlink, linkname: '/etc/passwd' }], true],
  ['hard link to a missing entry', [{ name: 'x', type: TYPE.hardlink, linkname: 'nothing-here' }], true],
  ['symlink to /etc, then a file through it', [{ name: 'escape', type: TYPE.symlink, linkname: '/etc' }, { name: 'escape/passwd', data: 'owned\n' }], true],
  ['symlink with .. target', [{ name: 'up', type: TYPE.symlink, linkname: '../../../../etc/shadow' }], false],
  ['device files', [{ name: 'dev/', type: TYPE.dir }, { name: 'dev/sda', type: TYPE.block, devmajor: 8, devminor: 0 }, { name: 'dev/mem', type: TYPE.char, devmajor: 1, devminor: 1 }], false],
  ['size larger than the archive', [{ name: 'big', data: 'x', rawSize: '77777777777' }], true],
  ['non-octal size', [{ name: 'bogus', data: 'x', rawSize: 'zzzzzzzzzzz' }], true],
  ['huge PAX record', [{ name: 'p', data: 'x', pax: { 'SCHILY.xattr.user.x': 'y'.repeat(17 * 1024 * 1024) } }], true],
  ['PAX size lie', [{ name: 'p', data: 'x', pax: { size: '99999999999999' } }], true],
  ['negative PAX size', [{ name: 'p', data: 'x', pax: { size: '-5' } }], true],
  ['deep nesting', [{ name: 'f', data: 'x', pax: { path: `${deep}/f` } }], undefined],
  ['very long name', [{ name: 'f', data: 'x', pax: { path: 'n'.repeat(70_000) } }], true],
  ['very long path', [{ name: 'f', data: 'x', pax: { path: `${'d/'.repeat(30_001)}f` } }], true],
  ['whiteout escaping its directory', [{ name: 'a/.wh...', data: '' }], true],
  [
    'one name as file, link, directory and file again',
    [
      { name: 'a', data: '1' },
      { name: 'b', type: TYPE.hardlink, linkname: 'a' },
      { name: 'a', type: TYPE.symlink, linkname: '/etc' },
      { name: 'a/', type: TYPE.dir },
      { name: 'a/x', type: TYPE.hardlink, linkname: 'b' },
      { name: 'c', type: TYPE.hardlink, linkname: 'a/x' },
      { name: 'a', data: '2' },
      { name: 'b', data: '3' },
    ],
    false,
  ],
  ['a hard link to a directory', [{ name: 'd/', type: TYPE.dir }, { name: 'h', type: TYPE.hardlink, linkname: 'd' }], true],
  ['a hard link to an implied directory', [{ name: 'd/f', data: 'x' }, { name: 'h', type: TYPE.hardlink, linkname: 'd' }], true],
  ['truncated header', [], true],
];

/** Converts as layer-build does: streaming, and when a later entry replaces a written one, plan then convert. */
async function convert(bytes: Buffer): Promise<unknown> {
  async function* once() {
    yield bytes;
  }
  try {
    try {
      for await (const chunk of toOverlayTar(once())) void chunk;
    } catch (error) {
      if (!(error instanceof NeedsPlan)) throw error;
      let plan: LayerPlan | undefined;
      for await (const chunk of toOverlayTar(once(), { planOnly: true, onComplete: (r) => (plan = r.plan) })) void chunk;
      for await (const chunk of toOverlayTar(once(), { plan })) void chunk;
    }
    return undefined;
  } catch (error) {
    return error;
  }
}

test.each(HOSTILE)('%s', async (_name, entries, refused) => {
  let bytes = buildTar(entries);
  if (entries.length === 0) bytes = bytes.subarray(0, 300);
  const error = await convert(bytes);
  expectCleanOutcome('user', _name, error);
  if (refused !== undefined) expect({ refused: error !== undefined, error: isStrataError(error) ? error.summary : undefined }).toEqual({ refused, error: refused ? expect.stringMatching(/./) : undefined });
  if (isStrataError(error)) expect(error.code).toBe('E_TAR');
}, 20_000);

test('byte-level fuzzing of a valid archive: converted or refused cleanly, quickly', async () => {
  const random = prng(SEED + 3);
  const valid = buildTar([
    { name: 'etc/', type: TYPE.dir },
    { name: 'etc/hello', data: 'hello\n'.repeat(100) },
    { name: 'etc/.wh.gone', data: '' },
    { name: 'lib/', type: TYPE.dir, pax: { 'SCHILY.xattr.user.k': 'v' } },
    { name: 'lib/.wh..wh..opq', data: '' },
    { name: 'lib/link', type: TYPE.symlink, linkname: '../etc/hello' },
    { name: 'lib/hard', type: TYPE.hardlink, linkname: 'etc/hello' },
  ]);
  expect(await convert(valid)).toBeUndefined();
  const started = Date.now();
  let refused = 0;
  const runs = Math.max(50, Math.floor(RUNS / 4));
  for (let i = 0; i < runs; i++) {
    // Mutate within the headers (the first 3 KiB), where the parser lives.
    const bytes = Buffer.concat([mutateBytes(random, valid.subarray(0, 3072)), valid.subarray(3072)]);
    const error = await convert(bytes);
    expectCleanOutcome('user', `run ${i} (seed ${SEED + 3})`, error);
    if (error) refused++;
  }
  expect(refused).toBeGreaterThan(0);
  expect(Date.now() - started).toBeLessThan(20_000);
}, 30_000);
