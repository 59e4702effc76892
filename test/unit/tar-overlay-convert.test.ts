// The OCI → overlay tar converter, checked the way a user would notice: build layer tars with
// Python's tarfile, convert them, and list the result with Python's tarfile again.

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStrataError } from '../../src/errors.js';
import { NeedsPlan, toOverlayTar, type LayerPlan, type OverlayConvertResult } from '../../src/tar/overlay-convert.js';

const PYTHON = '/usr/bin/python3';

// Builds a tar from a JSON spec on stdin: {format, global, entries: [{name, type, data, mode, uid, gid, mtime, linkname, pax}]}.
const BUILD = `
import io, json, sys, tarfile
spec = json.load(sys.stdin)
fmt = {'pax': tarfile.PAX_FORMAT, 'gnu': tarfile.GNU_FORMAT, 'ustar': tarfile.USTAR_FORMAT}[spec.get('format', 'pax')]
types = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'hardlink': tarfile.LNKTYPE,
         'char': tarfile.CHRTYPE, 'fifo': tarfile.FIFOTYPE}
with tarfile.open(sys.argv[1], 'w', format=fmt, pax_headers=spec.get('global') or None, encoding='utf-8') as tf:
    for e in spec['entries']:
        ti = tarfile.TarInfo(e['name'])
        ti.type = types[e.get('type', 'file')]
        data = e.get('data', '').encode()
        ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
        ti.mode = e.get('mode', 0o755 if ti.type == tarfile.DIRTYPE else 0o644)
        ti.uid = e.get('uid', 0); ti.gid = e.get('gid', 0); ti.mtime = e.get('mtime', 0)
        ti.uname = e.get('uname', ''); ti.gname = e.get('gname', '')
        ti.linkname = e.get('linkname', '')
        if 'pax' in e: ti.pax_headers = e['pax']
        tf.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
`;

// Lists a tar as JSON: name, type, mode, ids, mtime, link, device numbers, PAX records and a data digest.
const LIST = `
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], encoding='utf-8') as tf:
    for ti in tf:
        data = tf.extractfile(ti).read() if ti.isreg() else b''
        out.append(dict(name=ti.name, type=ti.type.decode(), mode=ti.mode, uid=ti.uid, gid=ti.gid, mtime=ti.mtime,
                        uname=ti.uname, gname=ti.gname, linkname=ti.linkname, devmajor=ti.devmajor, devminor=ti.devminor,
                        pax={k: v for k, v in ti.pax_headers.items() if k != 'path'}, data=data.decode('latin1')))
print(json.dumps(out))
`;

interface Spec {
  format?: 'pax' | 'gnu' | 'ustar';
  global?: Record<string, string>;
  entries: Array<{
    name: string;
    type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'fifo';
    data?: string;
    mode?: number;
    uid?: number;
    gid?: number;
    mtime?: number;
    uname?: string;
    gname?: string;
    linkname?: string;
    pax?: Record<string, string>;
  }>;
}

interface Listed {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  gname: string;
  linkname: string;
  devmajor: number;
  devminor: number;
  pax: Record<string, string>;
  data: string;
}

let work: string;
let counter = 0;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'strata-overlay-convert-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function buildTar(spec: Spec): Buffer {
  const path = join(work, `in-${counter++}.tar`);
  execFileSync(PYTHON, ['-c', BUILD, path], { input: JSON.stringify(spec) });
  return readFileSync(path);
}

function list(bytes: Buffer): Listed[] {
  const path = join(work, `out-${counter++}.tar`);
  writeFileSync(path, bytes);
  return JSON.parse(execFileSync(PYTHON, ['-c', LIST, path], { encoding: 'utf8' }));
}

async function* chunked(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield new Uint8Array(bytes.subarray(i, i + size));
}

async function convert(bytes: Buffer, chunkSize = 64 * 1024, markRoot = false): Promise<{ out: Buffer; result: OverlayConvertResult }> {
  const parts: Buffer[] = [];
  let result: OverlayConvertResult | undefined;
  const iterator = toOverlayTar(chunked(bytes, chunkSize), { markRoot, onComplete: (r) => (result = r) });
  for (;;) {
    const next = await iterator.next();
    if (next.done) {
      expect(next.value).toEqual(result);
      break;
    }
    parts.push(next.value);
  }
  return { out: Buffer.concat(parts), result: result as OverlayConvertResult };
}

async function convertError(bytes: Buffer): Promise<{ code: string; message: string; hint?: string }> {
  try {
    await convert(bytes);
  } catch (error) {
    if (!isStrataError(error)) throw error;
    expect(error.message).not.toContain('\n');
    expect(error.kind).toBe('user');
    return { code: error.code, message: error.message, hint: error.hint };
  }
  throw new Error('conversion succeeded, expected an error');
}

const byName = (entries: Listed[]) => new Map(entries.map((e) => [e.name, e]));
const ORIGIN = 'SCHILY.xattr.trusted.overlay.origin';
const OPAQUE = 'SCHILY.xattr.trusted.overlay.opaque';

describe('toOverlayTar: layer root marker', () => {
  it('gives the root an xattr (so the squashfs has an xattr table), creating the root entry if needed', async () => {
    const noRoot = list((await convert(buildTar({ entries: [{ name: 'f', data: 'x' }] }), 64 * 1024, true)).out);
    expect(noRoot.map((e) => e.name)).toEqual(['f', '.']);
    expect(noRoot[1]).toMatchObject({ type: '5', mode: 0o755, uid: 0, pax: { 'SCHILY.xattr.trusted.strata.layer': '1' } });
    const withRoot = list((await convert(buildTar({ entries: [{ name: './', type: 'dir', mode: 0o700, uid: 3 }] }), 64 * 1024, true)).out);
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
    const entries = list(out);
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
    const entries = byName(list((await convert(input)).out));
    expect(entries.has('opt/.wh..wh..opq')).toBe(false);
    expect(entries.get('opt')).toMatchObject({
      mode: 0o700,
      mtime: 5000.25,
      pax: { [OPAQUE]: 'y', [ORIGIN]: '', 'SCHILY.xattr.user.keep': 'me', mtime: '5000.25' },
    });
  });

  it('synthesizes entries for directories that need xattrs but have none in the tar', async () => {
    const input = buildTar({ entries: [{ name: 'var/lib/.wh.gone' }, { name: 'srv/.wh..wh..opq' }, { name: '.wh.toplevel' }] });
    const entries = list((await convert(input)).out);
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
    expect(list(out).map((e) => e.name)).toEqual(['./b/c/f', './a/g', 'a', 'b', 'b/c', '.']);
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
    const map = byName(list((await convert(input)).out));
    expect(map.get('file')).toMatchObject({ type: '0', data: 'new' });
    // Deleted, then created as a directory: the new directory hides all lower contents.
    expect(map.get('dir')?.pax).toMatchObject({ [OPAQUE]: 'y' });
    expect(map.get('implicit')?.pax).toMatchObject({ [OPAQUE]: 'y' });
    expect([...map.values()].filter((e) => e.type === '3')).toEqual([]);
  });

  it('drops AUFS bookkeeping (.wh..wh.plnk and friends)', async () => {
    const input = buildTar({ entries: [{ name: '.wh..wh.plnk', type: 'dir' }, { name: '.wh..wh.plnk/1.2', data: 'x' }, { name: 'kept', data: 'k' }] });
    expect(list((await convert(input)).out).map((e) => e.name)).toEqual(['kept']);
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
      const map = byName(list((await convert(input)).out));
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
    const map = byName(list((await convert(input)).out));
    expect(map.get('caf\u00e9')?.pax).toMatchObject({ [ORIGIN]: '' });
    expect(map.get('caf\u00e9/\u65e5\u672c')).toMatchObject({ type: '3' });
  });

  it('keeps global PAX headers and applies them to held-back directories', async () => {
    const input = buildTar({ global: { comment: 'from git archive', uname: 'gu' }, entries: [{ name: 'd', type: 'dir' }, { name: 'd/f', data: 'f' }] });
    const out = (await convert(input)).out;
    expect(out.toString('latin1')).toContain('comment=from git archive');
    expect(byName(list(out)).get('d')).toMatchObject({ uname: 'gu' });
  });

  it('keeps the last of duplicate directory entries', async () => {
    const input = buildTar({ entries: [{ name: 'd', type: 'dir', mode: 0o700 }, { name: 'd/', type: 'dir', mode: 0o751, uid: 9 }] });
    const entries = list((await convert(input)).out);
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
    expect(list((await convert(input)).out).map((e) => e.linkname)).toEqual(['/etc', '../../x']);
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
    return list(Buffer.concat(parts));
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
    expect(byName(list(out)).get('b')?.mode).toBe(0o700);
  });
});

describe('toOverlayTar: old GNU sparse files', () => {
  const GIB = 2 ** 30;
  // Regions below and past 8 GiB: GNU tar writes the latter's offsets in base-256.
  const regions: Array<[number, string]> = [
    [4096, 'low region'],
    [8 * GIB - 5, 'across the 8 GiB octal limit'],
    [11 * GIB + 3, 'high region'],
  ];
  const sparseTar = (name: string, size: number, at: Array<[number, string]>): Buffer => {
    const dir = join(work, `sparse-${counter++}`);
    execFileSync('/usr/bin/mkdir', [dir]);
    const script = 'import sys, json\nf = open(sys.argv[1], "wb"); f.truncate(int(sys.argv[2]))\nfor off, text in json.loads(sys.argv[3]):\n    f.seek(off); f.write(text.encode())\n';
    execFileSync(PYTHON, ['-c', script, join(dir, name), String(size), JSON.stringify(at)]);
    return execFileSync('/usr/bin/tar', ['--format=gnu', '--sparse', '-C', dir, '-cf', '-', name], { maxBuffer: 1 << 26 });
  };
  const readAt = (path: string, offset: number, length: number): string =>
    execFileSync(PYTHON, ['-c', 'import sys\nf = open(sys.argv[1], "rb"); f.seek(int(sys.argv[2])); sys.stdout.write(f.read(int(sys.argv[3])).decode("latin1"))', path, String(offset), String(length)], { encoding: 'latin1' });

  it('passes a map that is all octal through byte for byte', async () => {
    const input = sparseTar('small', 5 * 1024 * 1024, [[0, 'a'], [3 * 1024 * 1024, 'b']]);
    expect(input[156]).toBe(0x53); // 'S'
    const { out } = await convert(input);
    const stored = parseInt(input.subarray(124, 135).toString('latin1'), 8); // the regions' data, as GNU tar found them
    const entryBytes = input.subarray(0, 512 + stored);
    expect(out.subarray(0, entryBytes.length).equals(entryBytes)).toBe(true);
  });

  it('rewrites a map with base-256 numbers (past 8 GiB) as PAX 1.0 sparse, which GNU tar extracts to the same file', async () => {
    const input = sparseTar('huge', 12 * GIB + 1, regions);
    expect(input[156]).toBe(0x53);
    expect(input.subarray(386, 482).some((byte) => byte === 0x80)).toBe(true); // precondition: base-256 in the map
    const { out, result } = await convert(input);
    expect(result.diffId).toBe(`sha256:${createHash('sha256').update(input).digest('hex')}`);
    expect(out.toString('latin1')).toContain('GNU.sparse.major=1');
    expect(out.toString('latin1')).toContain(`GNU.sparse.realsize=${12 * GIB + 1}`);
    const outPath = join(work, `out-${counter++}.tar`);
    writeFileSync(outPath, out);
    const dest = join(work, `extract-${counter++}`);
    execFileSync('/usr/bin/mkdir', [dest]);
    execFileSync('/usr/bin/tar', ['-xf', outPath, '-C', dest]);
    const extracted = join(dest, 'huge');
    expect(execFileSync('/usr/bin/stat', ['-c', '%s', extracted], { encoding: 'utf8' }).trim()).toBe(String(12 * GIB + 1));
    for (const [offset, text] of regions) {
      expect(readAt(extracted, offset, text.length)).toBe(text);
      expect(readAt(extracted, offset + text.length, 4)).toBe('\0\0\0\0');
    }
  });

  it('rejects a map field that is not a number', async () => {
    const input = Buffer.from(sparseTar('huge', 12 * GIB + 1, regions));
    input.write('99999999999\0', 386, 'latin1'); // the first region's offset: not octal
    input.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += input[i];
    input.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const error = await convertError(input);
    expect(error.message).toMatch(/^layer tar entry 'huge' has a bad sparse map: sparse offset field is not an octal number$/);
  });
});
