// The OCI → overlay tar converter, checked the way a user would notice: build layer tars the way
// Python's tarfile writes them, convert them, and list the result as tarfile lists it (all
// in-process; test/integration/tar-overlay-convert-sparse.test.ts checks output with GNU tar).

import { createHash } from 'node:crypto';
import { NeedsPlan, toOverlayTar, type LayerPlan } from '../../src/tar/overlay-convert.js';
import { convert, convertError } from '../helpers/overlay-convert.js';
import { buildTar as build, chunked, listTar, type ListedEntry, type TarEntrySpec, type TarOptions } from '../helpers/tar-build.js';

type Spec = TarOptions & { entries: TarEntrySpec[] };
type Listed = ListedEntry;

const buildTar = (spec: Spec): Buffer => build(spec.entries, spec);
const list = listTar;

const byName = (entries: Listed[]) => new Map(entries.map((e) => [e.name, e]));
const ORIGIN = 'SCHILY.xattr.trusted.overlay.origin';
const OPAQUE = 'SCHILY.xattr.trusted.overlay.opaque';

describe('toOverlayTar: layer root marker', () => {
  it('gives the root an xattr (so the squashfs has an xattr table), creating the root entry if needed', async () => {
    const noRoot = await list((await convert(buildTar({ entries: [{ name: 'f', data: 'x' }] }), 64 * 1024, true)).out);
    expect(noRoot.map((e) => e.name)).toEqual(['f', '.']);
    expect(noRoot[1]).toMatchObject({ type: '5', mode: 0o755, uid: 0, pax: { 'SCHILY.xattr.trusted.strata.layer': '1' } });
    const withRoot = await list((await convert(buildTar({ entries: [{ name: './', type: 'dir', mode: 0o700, uid: 3 }] }), 64 * 1024, true)).out);
    expect(withRoot).toHaveLength(1);
    expect(withRoot[0]).toMatchObject({ mode: 0o700, uid: 3, pax: { 'SCHILY.xattr.trusted.strata.layer': '1' } });
  });
});

describe('toOverlayTar: whiteouts', () => {
  it('turns dir/.wh.NAME into a char 0:0 device with the whiteout owner and time, and marks the dir', async () => {
    const input = buildTar({
      entries: [
        { name: 'etc', type: 'dir', mode: 0o750, uid: 5, gid: 6, mtime: 2000 },
        { name: 'etc/passwd', data: 'root:x:0:0\n', mtime: 3000 },
        { name: 'etc/.wh.shadow', uid: 7, gid: 8, mtime: 4000, uname: 'seven', gname: 'eight' },
      ],
    });
    const { out, result } = await convert(input);
    const entries = await list(out);
    expect(entries.map((e) => e.name)).toEqual(['etc/passwd', 'etc/shadow', 'etc']);
    const shadow = byName(entries).get('etc/shadow') as Listed;
    expect(shadow).toMatchObject({ type: '3', devmajor: 0, devminor: 0, uid: 7, gid: 8, mtime: 4000, uname: 'seven', gname: 'eight' });
    // The directory keeps its own attributes and gains the origin xattr, so stray whiteouts stay hidden.
    expect(byName(entries).get('etc')).toMatchObject({ type: '5', mode: 0o750, uid: 5, gid: 6, mtime: 2000, pax: { [ORIGIN]: '' } });
    expect(result).toMatchObject({ whiteouts: 1, opaqueDirs: 0 });
  });

  it('makes a directory opaque even when the marker comes after the directory entry', async () => {
    const input = buildTar({
      entries: [
        { name: 'opt/', type: 'dir', mode: 0o700, mtime: 5000, pax: { 'SCHILY.xattr.user.keep': 'me', mtime: '5000.25' } },
        { name: 'opt/x', data: 'x' },
        { name: 'opt/.wh..wh..opq' },
      ],
    });
    const entries = byName(await list((await convert(input)).out));
    expect(entries.has('opt/.wh..wh..opq')).toBe(false);
    expect(entries.get('opt')).toMatchObject({
      mode: 0o700,
      mtime: 5000.25,
      pax: { [OPAQUE]: 'y', [ORIGIN]: '', 'SCHILY.xattr.user.keep': 'me', mtime: '5000.25' },
    });
  });

  it('synthesizes entries for directories that need xattrs but have none in the tar', async () => {
    const input = buildTar({ entries: [{ name: 'var/lib/.wh.gone' }, { name: 'srv/.wh..wh..opq' }, { name: '.wh.toplevel' }] });
    const entries = await list((await convert(input)).out);
    expect(entries.map((e) => [e.name, e.type])).toEqual([
      ['toplevel', '3'],
      ['var/lib/gone', '3'],
      ['srv', '5'],
      ['var/lib', '5'],
      ['.', '5'],
    ]);
    const map = byName(entries);
    expect(map.get('var/lib')).toMatchObject({ mode: 0o755, uid: 0, gid: 0, mtime: 0, pax: { [ORIGIN]: '' } });
    expect(map.get('srv')).toMatchObject({ mode: 0o755, pax: { [OPAQUE]: 'y', [ORIGIN]: '' } });
    expect(map.get('.')).toMatchObject({ pax: { [ORIGIN]: '' } });
  });

  it('writes directories after everything else, parents first, and the root last as ./', async () => {
    const input = buildTar({
      entries: [
        { name: './', type: 'dir', mode: 0o755, mtime: 1000 },
        { name: './b/', type: 'dir' },
        { name: './b/c/', type: 'dir' },
        { name: './b/c/f', data: 'f' },
        { name: './a/', type: 'dir', mode: 0o711 },
        { name: './a/g', data: 'g' },
      ],
    });
    const { out } = await convert(input);
    // Passed-through entries keep their names as written; re-written directories are normalised.
    expect((await list(out)).map((e) => e.name)).toEqual(['./b/c/f', './a/g', 'a', 'b', 'b/c', '.']);
    // The root comes out literally as "./" (tar2sqfs uses it for the image root).
    expect(out.toString('latin1')).toContain('./\0');
  });

  it('resolves whiteouts of things this same layer creates', async () => {
    const input = buildTar({
      entries: [
        { name: '.wh.file' },
        { name: 'file', data: 'new' },
        { name: '.wh.dir' },
        { name: 'dir', type: 'dir' },
        { name: 'dir/x', data: 'x' },
        { name: '.wh.implicit' },
        { name: 'implicit/y', data: 'y' },
      ],
    });
    const map = byName(await list((await convert(input)).out));
    expect(map.get('file')).toMatchObject({ type: '0', data: 'new' });
    // Deleted, then created as a directory: the new directory hides all lower contents.
    expect(map.get('dir')?.pax).toMatchObject({ [OPAQUE]: 'y' });
    expect(map.get('implicit')?.pax).toMatchObject({ [OPAQUE]: 'y' });
    expect([...map.values()].filter((e) => e.type === '3')).toEqual([]);
  });

  it('drops AUFS bookkeeping (.wh..wh.plnk and friends)', async () => {
    const input = buildTar({ entries: [{ name: '.wh..wh.plnk', type: 'dir' }, { name: '.wh..wh.plnk/1.2', data: 'x' }, { name: 'kept', data: 'k' }] });
    expect((await list((await convert(input)).out)).map((e) => e.name)).toEqual(['kept']);
  });

  it('rejects whiteouts of . and .. with a one-line error', async () => {
    for (const name of ['a/.wh..', 'a/.wh...', '.wh.']) {
      const error = await convertError(buildTar({ entries: [{ name }] }));
      expect(error.code).toBe('E_TAR');
      expect(error.message).toMatch(/whiteout/);
    }
  });
});

describe('toOverlayTar: pass-through', () => {
  it('passes non-directory entries through byte for byte', async () => {
    const input = buildTar({
      entries: [
        { name: 'a.txt', data: 'hello', mtime: 1700000000, uid: 1000, gid: 1000, uname: 'alice', gname: 'users' },
        { name: 'big.bin', data: 'z'.repeat(300_000) },
        { name: 'link', type: 'symlink', linkname: '/etc/passwd' },
        { name: 'hard', type: 'hardlink', linkname: 'a.txt' },
        { name: 'fifo', type: 'fifo' },
        { name: `${'x'.repeat(200)}/${'y'.repeat(200)}`, data: 'long name', pax: { 'SCHILY.xattr.user.a': 'b' } },
      ],
    });
    const { out } = await convert(input);
    // Python pads archives to 10 KiB records; the converter ends with exactly two zero blocks.
    const end = out.length - 1024;
    expect(out.subarray(0, end).equals(input.subarray(0, end))).toBe(true);
    expect(out.subarray(end).equals(Buffer.alloc(1024))).toBe(true);
  });

  it('gives the same output however the input is chunked', async () => {
    const input = buildTar({
      global: { comment: 'global' },
      entries: [
        { name: 'd', type: 'dir' },
        { name: 'd/f', data: 'abc'.repeat(1000) },
        { name: `${'n'.repeat(120)}/${'m'.repeat(140)}`, data: 'long' },
        { name: 'd/.wh.old' },
        { name: 'd/.wh..wh..opq' },
      ],
    });
    const reference = (await convert(input)).out;
    for (const size of [1, 7, 511, 512, 513, 4096, 1 << 20]) {
      const { out, result } = await convert(input, size);
      expect(out.equals(reference)).toBe(true);
      expect(result.bytesIn).toBe(input.length);
    }
  });

  it('keeps long names (>100 and >255 bytes) of files, links, directories and whiteouts', async () => {
    const dir100 = `${'p'.repeat(120)}/${'q'.repeat(60)}`; // fits ustar prefix+name
    const dir300 = `${'r'.repeat(150)}/${'s'.repeat(150)}`; // needs PAX
    for (const format of ['pax', 'gnu'] as const) {
      const input = buildTar({
        format,
        entries: [
          { name: dir100, type: 'dir', mode: 0o701 },
          { name: `${dir100}/file`, data: '1' },
          { name: dir300, type: 'dir', mode: 0o702 },
          { name: `${dir300}/${'t'.repeat(120)}`, data: '2' },
          { name: `${dir300}/link`, type: 'symlink', linkname: `/${'u'.repeat(200)}` },
          { name: `${dir300}/hard`, type: 'hardlink', linkname: `${dir300}/${'t'.repeat(120)}` },
          { name: `${dir300}/.wh.${'v'.repeat(110)}` },
          { name: `${dir300}/.wh..wh..opq` },
        ],
      });
      const map = byName(await list((await convert(input)).out));
      expect(map.get(dir100)).toMatchObject({ type: '5', mode: 0o701 });
      expect(map.get(`${dir100}/file`)).toMatchObject({ data: '1' });
      expect(map.get(dir300)).toMatchObject({ type: '5', mode: 0o702, pax: { [OPAQUE]: 'y', [ORIGIN]: '' } });
      expect(map.get(`${dir300}/${'t'.repeat(120)}`)).toMatchObject({ data: '2' });
      expect(map.get(`${dir300}/link`)).toMatchObject({ type: '2', linkname: `/${'u'.repeat(200)}` });
      expect(map.get(`${dir300}/hard`)).toMatchObject({ type: '1', linkname: `${dir300}/${'t'.repeat(120)}` });
      expect(map.get(`${dir300}/${'v'.repeat(110)}`)).toMatchObject({ type: '3', devmajor: 0, devminor: 0 });
    }
  });

  it('keeps UTF-8 names byte for byte', async () => {
    const input = buildTar({ entries: [{ name: 'caf\u00e9', type: 'dir' }, { name: 'caf\u00e9/.wh.\u65e5\u672c' }] });
    const map = byName(await list((await convert(input)).out));
    expect(map.get('caf\u00e9')?.pax).toMatchObject({ [ORIGIN]: '' });
    expect(map.get('caf\u00e9/\u65e5\u672c')).toMatchObject({ type: '3' });
  });

  it('keeps global PAX headers and applies them to held-back directories', async () => {
    const input = buildTar({ global: { comment: 'from git archive', uname: 'gu' }, entries: [{ name: 'd', type: 'dir' }, { name: 'd/f', data: 'f' }] });
    const out = (await convert(input)).out;
    expect(out.toString('latin1')).toContain('comment=from git archive');
    expect(byName(await list(out)).get('d')).toMatchObject({ uname: 'gu' });
  });

  it('keeps the last of duplicate directory entries', async () => {
    const input = buildTar({ entries: [{ name: 'd', type: 'dir', mode: 0o700 }, { name: 'd/', type: 'dir', mode: 0o751, uid: 9 }] });
    const entries = await list((await convert(input)).out);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ name: 'd', mode: 0o751, uid: 9 });
  });

  it('reports the diff_id of the whole input, end-of-archive padding included', async () => {
    const input = buildTar({ entries: [{ name: 'f', data: 'data' }] });
    const { result } = await convert(input);
    expect(result.diffId).toBe(`sha256:${createHash('sha256').update(input).digest('hex')}`);
    expect(result.bytesIn).toBe(input.length);
    expect(input.length).toBe(10240);
  });
});

describe('toOverlayTar: bad input', () => {
  it('rejects absolute names and .. components in names and hard link targets', async () => {
    const cases: Spec['entries'][] = [
      [{ name: '/etc/passwd', data: 'x' }],
      [{ name: '../escape', data: 'x' }],
      [{ name: 'a/../../escape', data: 'x' }],
      [{ name: 'a/b/../../../etc', type: 'dir' }],
      [{ name: 'ok', data: 'x' }, { name: 'h', type: 'hardlink', linkname: '../../etc/shadow' }],
      [{ name: 'h', type: 'hardlink', linkname: '/etc/shadow' }],
      [{ name: 'x/../../.wh.y' }],
    ];
    for (const entries of cases) {
      const error = await convertError(buildTar({ entries }));
      expect(error.code).toBe('E_TAR');
      expect(error.message).toMatch(/absolute|'\.\.'/);
      expect(error.hint).toBeTruthy();
    }
  });

  it('allows symlinks to absolute and .. targets (they resolve inside the container)', async () => {
    const input = buildTar({ entries: [{ name: 'l1', type: 'symlink', linkname: '/etc' }, { name: 'l2', type: 'symlink', linkname: '../../x' }] });
    expect((await list((await convert(input)).out)).map((e) => e.linkname)).toEqual(['/etc', '../../x']);
  });

  it('rejects a truncated stream', async () => {
    const input = buildTar({ entries: [{ name: 'f', data: 'y'.repeat(5000) }, { name: 'g', data: 'z' }] });
    for (const cut of [100, 512, 2000, 512 * 11, 512 * 12 + 1]) {
      const error = await convertError(input.subarray(0, cut));
      expect(error.code).toBe('E_TAR');
      expect(error.message).toMatch(cut < 512 ? /shorter than one tar header: it is not a tar archive, or it was cut short/ : /truncated/);
    }
  });

  it('rejects a corrupt header and a file that is not a tar', async () => {
    const input = Buffer.from(buildTar({ entries: [{ name: 'f', data: 'x' }, { name: 'g', data: 'y' }] }));
    input[1024 + 3] ^= 0x20; // second header's name
    expect((await convertError(input)).message).toMatch(/corrupt at byte 1024: header checksum/);
    const notTar = await convertError(Buffer.from('{"this is": "json"}\n'.repeat(100)));
    expect(notTar.message).toMatch(/corrupt at byte 0.*not a tar archive/);
    expect((await convertError(Buffer.alloc(0))).message).toMatch(/empty/);
  });

  it('rejects entries below a file of the same layer, and hard links to files outside the layer (as umoci does)', async () => {
    const below = await convertError(buildTar({ entries: [{ name: 'a', data: 'x' }, { name: 'a/b', data: 'y' }] }));
    expect(below.message).toBe("layer tar has 'a/b' below 'a', which this layer made a non-directory");
    const link = await convertError(buildTar({ entries: [{ name: 'h', type: 'hardlink', linkname: 'usr/bin/lower' }] }));
    expect(link.message).toMatch(/hard link 'h' to 'usr\/bin\/lower', which is not a file in this layer/);
  });
});

describe('toOverlayTar: names given twice (later wins, as extraction does)', () => {
  /** What layer-build does when streaming stops with NeedsPlan: plan, then convert with the plan. */
  async function convertPlanned(bytes: Buffer): Promise<Listed[]> {
    await expect(convert(bytes)).rejects.toBeInstanceOf(NeedsPlan);
    let plan: LayerPlan | undefined;
    for await (const chunk of toOverlayTar(chunked(bytes, 4096), { planOnly: true, onComplete: (r) => (plan = r.plan) })) void chunk;
    const parts: Buffer[] = [];
    for await (const chunk of toOverlayTar(chunked(bytes, 4096), { plan })) parts.push(chunk);
    return await list(Buffer.concat(parts));
  }

  it('writes only the last file of a name, and a hard link keeps the content it linked to', async () => {
    const entries = await convertPlanned(
      buildTar({
        entries: [
          { name: 'f', data: 'first' },
          { name: 'g', type: 'hardlink', linkname: 'f' },
          { name: './f', data: 'second', mode: 0o600 },
        ],
      }),
    );
    const files = entries.filter((e) => e.type !== '5');
    expect(files.map((e) => [e.name, e.type, e.data || e.linkname])).toEqual([
      ['g', '0', 'first'],
      ['./f', '0', 'second'],
    ]);
    expect(byName(entries).get('./f')?.mode).toBe(0o600);
  });

  it('a file replacing a directory of the same layer takes its contents along; a directory again hides the lower one', async () => {
    const entries = byName(
      await convertPlanned(
        buildTar({
          entries: [
            { name: 'd', type: 'dir' },
            { name: 'd/in', data: 'gone' },
            { name: 'd', data: 'file' },
            { name: 'd', type: 'dir', mode: 0o700 },
            { name: 'd/new', data: 'new' },
          ],
        }),
      ),
    );
    expect([...entries.keys()].sort()).toEqual(['d', 'd/new']);
    expect(entries.get('d')).toMatchObject({ type: '5', mode: 0o700, pax: { [OPAQUE]: 'y', [ORIGIN]: '' } });
  });

  it('streams a layer without repeated names in one pass', async () => {
    const { out } = await convert(buildTar({ entries: [{ name: 'a', data: 'x' }, { name: 'b', type: 'dir' }, { name: 'b', type: 'dir', mode: 0o700 }] }));
    expect(byName(await list(out)).get('b')?.mode).toBe(0o700);
  });
});
