// Store management on a real store: tag, rm, gc (grace period, shared layers, stale partials) and
// verify (corruption is found).

import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { busyboxLayer, layerTar, writeLayout } from '../helpers/oci.js';
import { makeSite, type Site } from '../helpers/site.js';

let site: Site;
let noGrace: string;
const layers = () => readdirSync(join(site.store, 'layers/sha256')).sort();

beforeAll(async () => {
  site = makeSite('import-gc');
  const layout = join(site.root, 'layout');
  const base = { compression: 'gzip' as const, tar: busyboxLayer() };
  writeLayout(layout, [
    { ref: 'a', layers: [base, { compression: 'gzip', tar: layerTar([{ name: 'etc/a', content: 'a\n' }]) }] },
    { ref: 'b', layers: [base, { compression: 'zstd', tar: layerTar([{ name: 'etc/b', content: 'b\n' }]) }] },
  ]);
  // Two overlapping images imported at the same time: the shared layer is stored once.
  const results = await Promise.all(['a', 'b'].map((ref) => site.run(['import', `oci:${layout}:${ref}`, '--tag', `img:${ref}`])));
  expect(results.map((r) => r.code)).toEqual([0, 0]);
  expect(layers()).toHaveLength(3);
  expect(readdirSync(join(site.store, 'tmp'))).toEqual([]);
  noGrace = join(site.root, 'no-grace.yaml');
  writeFileSync(noGrace, readFileSync(site.configPath, 'utf8').replace(`path: ${site.store}`, `path: ${site.store}\n  gc_grace: 0`));
}, 60_000);
afterAll(() => site.remove());

test('the store verifies after concurrent imports', async () => {
  const result = await site.run(['verify']);
  expect(result.stderr).toMatch(/^verify: 3 layers, \d+ blobs .* re-hashed, 2 tags checked: all good\n$/);
  expect(result.code).toBe(0);
});

test('tag adds a name; rm removes only the name; gc keeps an untagged image through the grace period', async () => {
  expect((await site.run(['tag', 'img:a', 'img:alias'])).code).toBe(0);
  expect((await site.run(['resolve', 'img:alias'])).stdout).toBe((await site.run(['resolve', 'img:a'])).stdout);
  expect((await site.run(['rm', 'img:a', 'img:alias'])).code).toBe(0);
  expect((await site.run(['resolve', 'img:a'])).code).toBe(2);
  const kept = await site.run(['gc']);
  expect(kept.stderr).toMatch(/^gc: removed 0 layers, 0 blobs, 0 stale partial files \(0B\); kept 2 images\n$/);
  expect(layers()).toHaveLength(3);
});

test('without a grace period gc removes what only the untagged image used, never a shared layer', async () => {
  const before = layers();
  const dry = await site.run(['gc', '--dry-run'], { env: { STRATA_CONFIG: noGrace } });
  expect(dry.stderr).toMatch(/^gc: would remove 1 layers, 2 blobs/);
  expect(dry.stdout.split('\n').filter((line) => line.startsWith('layer '))).toHaveLength(1);
  expect(layers()).toEqual(before);
  const real = await site.run(['gc'], { env: { STRATA_CONFIG: noGrace } });
  expect(real.stderr).toMatch(/^gc: removed 1 layers, 2 blobs, 0 stale partial files \(.*\); kept 1 images\n$/);
  expect(layers()).toHaveLength(2);
  // What is left still works end to end, and verifies.
  expect((await site.run(['inspect', 'img:b'])).code).toBe(0);
  expect((await site.run(['verify'])).code).toBe(0);
});

test('gc removes stale partials (writer gone, or old), not a live writer\'s', async () => {
  const tmp = join(site.store, 'tmp');
  const stale = join(tmp, `layer~${hostname()}~${2 ** 22 + 11}~abcdef012345.partial`);
  const live = join(tmp, `layer~${hostname()}~${process.pid}~abcdef012345.partial`);
  const elsewhere = join(tmp, 'layer~othernode~1234~abcdef012345.partial');
  for (const path of [stale, live, elsewhere]) writeFileSync(path, 'x');
  const result = await site.run(['gc']);
  expect(result.stderr).toMatch(/1 stale partial files/);
  expect([existsSync(stale), existsSync(live), existsSync(elsewhere)]).toEqual([false, true, true]);
});

test('verify finds a corrupt layer file and exits 1', async () => {
  const [layer] = layers();
  const path = join(site.store, 'layers/sha256', layer);
  chmodSync(path, 0o644);
  const bytes = readFileSync(path);
  bytes[100] ^= 0xff;
  writeFileSync(path, bytes);
  const result = await site.run(['verify']);
  expect(result.code).toBe(1);
  expect(result.stdout).toContain(`${path}: corrupt (its content hashes to sha256:`);
  expect(result.stderr).toMatch(/^verify: 2 layers, \d+ blobs .* re-hashed, 1 tags checked: 1 problems\n$/);
});

test('verify reports a directory or a fifo among the layer files and blobs as stray entries (it used to die with EISDIR or hang)', async () => {
  const dir = join(site.store, 'layers/sha256', `${'a'.repeat(64)}.sqfs`);
  const fifo = join(site.store, 'blobs/sha256', 'c'.repeat(64));
  mkdirSync(dir, { mode: 0o755 });
  execFileSync('/usr/bin/mkfifo', ['-m', '0644', fifo]);
  try {
    const result = await site.run(['verify']);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`${dir}: a directory, not a layer file (stray entry); remove it\n`);
    expect(result.stdout).toContain(`${fifo}: a special file, not a blob (stray entry); remove it\n`);
    expect(result.stderr).toMatch(/^verify: .* problems\n$/);
  } finally {
    rmSync(dir, { recursive: true });
    rmSync(fifo);
  }
});

test('gc never reads a host file through a symlink planted among the blobs', async () => {
  const planted = join(site.store, 'blobs', 'sha256', 'e'.repeat(64));
  symlinkSync('/etc/passwd', planted);
  try {
    const dry = await site.run(['gc', '--dry-run']);
    expect(dry.stderr).not.toMatch(/internal error|root:x:0/);
    expect(dry.stdout).not.toMatch(/root:x:0/);
  } finally {
    unlinkSync(planted);
  }
});
