// Importing into the store: concurrent imports of the same content, and what a bad source leaves.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeSite, makeTree, type Site } from '../helpers/site.js';

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
