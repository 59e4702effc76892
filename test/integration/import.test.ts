// Importing into the store: concurrent imports of the same content, and what a bad source leaves
// (one line saying what the source really is: not a tar, unsupported compression, impossible names),
// and where the first import may create the store (the built-in default: yes; a configured path on
// a shared filesystem that is not mounted: no).

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { STRATA, makeSite, makeTree, type Site } from '../helpers/site.js';

let site: Site;
beforeAll(() => {
  site = makeSite('import');
});
afterAll(() => site.remove());

test('eight concurrent imports of the same layer publish it once and every tag resolves', async () => {
  const tree = makeTree(join(site.root, 'same'), { 'etc/data': 'x'.repeat(100_000) });
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => site.run(['import', `dir:${tree}`, '--tag', `same:${i}`])));
  expect(results.map((r) => r.code)).toEqual(Array(8).fill(0));
  expect(readdirSync(join(site.store, 'layers/sha256'))).toHaveLength(1);
  expect(readdirSync(join(site.store, 'tmp'))).toEqual([]);
  const digests = new Set(results.map((r) => r.stdout.trim()));
  for (let i = 0; i < 8; i++) {
    const resolved = await site.run(['resolve', `same:${i}`]);
    expect(digests.has(resolved.stdout.trim())).toBe(true);
  }
  const images = JSON.parse((await site.run(['images', '--json'])).stdout);
  expect(images).toHaveLength(8);
}, 120_000);

test('a bad source gives one line and publishes nothing', async () => {
  const before = readdirSync(join(site.store, 'layers/sha256')).length;
  const missing = await site.run(['import', 'dir:/nonexistent', '--tag', 'bad:1']);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toBe('strata: import source /nonexistent does not exist; check the path\n');
  const wrongKind = await site.run(['import', 'docker-ish:/x', '--tag', 'bad:1']);
  expect(wrongKind.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(readdirSync(join(site.store, 'layers/sha256'))).toHaveLength(before);
  expect((await site.run(['resolve', 'bad:1'])).code).toBe(2);
});

/** A layer tar with one file, as Python's tarfile writes it. */
const tarOf = (name: string) =>
  execFileSync('/usr/bin/python3', ['-c', 'import io, sys, tarfile\nb = io.BytesIO()\nt = tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT)\ni = tarfile.TarInfo(sys.argv[1]); i.size = 2\nt.addfile(i, io.BytesIO(b"hi")); t.close()\nsys.stdout.buffer.write(b.getvalue())', name]);

test.each([
  // [what, file bytes, the one line a user gets]
  // An lz4 frame starts with these magic bytes (lz4 itself may not be installed).
  ['an lz4 layer', () => Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7]), tarOf('hello')]), / is lz4-compressed, which strata does not read \(unsupported compression\); decompress it first \(lz4 -d\) or recompress it with gzip or zstd$/],
  ['a gzip file that is not a tar (a disk image)', () => gzipSync(Buffer.concat([Buffer.alloc(32768), Buffer.from('not a tar, but data')])), /: layer tar is not a tar archive: it starts with a zero block, and data follows at byte 32768; check that /],
  ['a gzip file that is a short text', () => gzipSync('hello, not a tar\n'), /: layer tar is 17 bytes long, shorter than one tar header: it is not a tar archive, or it was cut short; check that /],
  ['a 70 kB file name', () => tarOf('n'.repeat(70_000)), /: layer tar entry 'n{60}…\(70000 bytes\)' has a path with a name of 70000 bytes; Linux file names are at most 255 bytes; no Linux file system can hold it; rebuild the image without that name$/],
])('%s is refused with one line saying what it is, and nothing is published', async (what, bytes, message) => {
  const file = join(site.root, `bad-${what.replace(/\W+/g, '-')}`);
  writeFileSync(file, bytes());
  const layers = readdirSync(join(site.store, 'layers/sha256')).length;
  const result = await site.run(['import', `tar:${file}`, '--tag', 'bad:2']);
  expect(result.code).toBe(2);
  expect(result.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(result.stderr.trimEnd()).toMatch(message);
  expect(readdirSync(join(site.store, 'layers/sha256'))).toHaveLength(layers);
  expect((await site.run(['resolve', 'bad:2'])).code).toBe(2);
});

test('on a machine with no strata.yaml, the first import creates the built-in store and its parents', () => {
  const tree = makeTree(join(site.root, 'fresh'), { 'etc/fresh': 'yes\n' });
  // A fresh machine, whatever this one has: a private mount namespace with empty /var/lib,
  // /var/log (the default log file) and /etc/strata; it goes when the shell exits.
  const script = [
    'set -e',
    'mount -t tmpfs -o mode=0755 strata-test /var/lib',
    'mount -t tmpfs -o mode=0755 strata-test /var/log',
    'if [ -d /etc/strata ]; then mount -t tmpfs strata-test /etc/strata; fi',
    `"$0" "$1" import dir:${tree} --tag fresh:1`,
    '"$0" "$1" resolve fresh:1',
    'stat -c "%n %U %a" /var/lib/strata /var/lib/strata/store',
    'ls /var/lib/strata/store/layers/sha256 | wc -l',
  ].join('\n');
  const result = spawnSync('/usr/bin/unshare', ['--mount', '--propagation', 'private', '/bin/sh', '-c', script, process.execPath, STRATA], {
    env: { PATH: process.env.PATH },
    encoding: 'utf8',
  });
  expect(result.stderr).toMatch(/^imported fresh:1: 1 layers, new layer .*\n$/);
  expect(result.status).toBe(0);
  const [imported, resolved, ...rest] = result.stdout.trim().split('\n');
  expect(imported).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(resolved).toBe(imported);
  expect(rest).toEqual(['/var/lib/strata root 755', '/var/lib/strata/store root 755', '1']);
});

test('a configured store path whose parent is missing (an unmounted shared filesystem) is refused with one line, and nothing is created', async () => {
  const tree = makeTree(join(site.root, 'unmounted-tree'), { 'etc/x': 'x\n' });
  const mountPoint = join(site.root, 'lustre');
  const config = join(site.root, 'unmounted.yaml');
  writeFileSync(config, `store:\n  path: ${mountPoint}/strata\nlog:\n  file: ""\n`);
  const result = await site.run(['import', `dir:${tree}`, '--tag', 'x:1'], { env: { STRATA_CONFIG: config } });
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(new RegExp(`^strata: cannot create the image store ${mountPoint}/strata: ENOENT[^\n]*; create ${mountPoint} first \\(is the shared filesystem mounted\\?\\) or set store.path in strata.yaml\n$`));
  expect(existsSync(mountPoint)).toBe(false);
});
