// Tar headers against real tools: a header GNU tar wrote, and what Python's tarfile reads back
// from what we write (the in-process cases are test/unit/tar-header.test.ts).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BLOCK, TYPE, parseHeader } from '../../src/tar/header.js';
import { encodeEntryHeader } from '../../src/tar/writer.js';

const PYTHON = '/usr/bin/python3';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'strata-tar-header-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Lists a tar with Python's tarfile: what a third-party reader makes of our bytes. */
function pythonList(bytes: Buffer): Array<Record<string, unknown>> {
  const path = join(work, `list-${Math.random().toString(36).slice(2)}.tar`);
  writeFileSync(path, bytes);
  const script = `
import json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], encoding='utf-8', errors='surrogateescape') as tf:
    for ti in tf:
        out.append(dict(name=ti.name, type=ti.type.decode(), mode=ti.mode, uid=ti.uid, gid=ti.gid, mtime=ti.mtime,
                        uname=ti.uname, gname=ti.gname, linkname=ti.linkname, devmajor=ti.devmajor, devminor=ti.devminor,
                        pax=ti.pax_headers))
print(json.dumps(out))`;
  return JSON.parse(execFileSync(PYTHON, ['-c', script, path], { encoding: 'utf8' }));
}


describe('parseHeader', () => {
  it('reads a GNU tar header and an all-zero block', () => {
    const dir = join(work, 'src');
    execFileSync('/usr/bin/mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'hello.txt'), 'hello\n');
    const tar = execFileSync('/usr/bin/tar', ['--format=ustar', '--owner=0', '--group=0', '--mtime=@1234567', '-C', dir, '-cf', '-', 'hello.txt']);
    const header = parseHeader(tar.subarray(0, BLOCK));
    expect(header).toMatchObject({ name: 'hello.txt', size: 6, mtime: 1234567, uid: 0, gid: 0, typeflag: TYPE.file, format: 'ustar' });
    expect(parseHeader(Buffer.alloc(BLOCK))).toBeNull();
  });

});

describe('encodeEntryHeader', () => {
  it('writes what Python reads back, moving what does not fit into PAX records', () => {
    const longName = `${'d'.repeat(150)}/${'e'.repeat(150)}/`;
    const bytes = Buffer.concat([
      encodeEntryHeader({ name: 'short/', mode: 0o750, uid: 5, gid: 6, size: 0, mtime: 99, typeflag: TYPE.dir, uname: 'u', gname: 'g' }),
      encodeEntryHeader({ name: longName, mode: 0o755, uid: 3_000_000, gid: 0, size: 0, mtime: 1.5, typeflag: TYPE.dir }, [
        { key: 'mtime', value: '1.5' },
        { key: 'SCHILY.xattr.trusted.overlay.opaque', value: 'y' },
      ]),
      encodeEntryHeader({ name: 'dev', mode: 0, uid: 0, gid: 0, size: 0, mtime: 0, typeflag: TYPE.char, devmajor: 0, devminor: 0 }),
      Buffer.alloc(1024),
    ]);
    const listed = pythonList(bytes);
    expect(listed).toHaveLength(3);
    expect(listed[0]).toMatchObject({ name: 'short', type: '5', mode: 0o750, uid: 5, gid: 6, mtime: 99, uname: 'u', gname: 'g' });
    expect(listed[1]).toMatchObject({ name: longName.slice(0, -1), uid: 3_000_000, mtime: 1.5 });
    expect(listed[1].pax).toMatchObject({ 'SCHILY.xattr.trusted.overlay.opaque': 'y', uid: '3000000' });
    expect(listed[2]).toMatchObject({ name: 'dev', type: '3', devmajor: 0, devminor: 0 });
  });
});
