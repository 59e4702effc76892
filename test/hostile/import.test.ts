// Hostile layer tars through `strata import`, as an admin would run it on a bad download: a clear
// one-line error (exit 2), nothing published (no layer, blob, tag or leftover partial file), and
// nothing written outside the store. Imports never mount anything, so this needs no root.

import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { TYPE } from '../../src/tar/header.js';
import { makeSite, type Site } from '../helpers/site.js';
import { buildTar } from './tar-builder.js';

let site: Site;

beforeAll(() => {
  site = makeSite('hostile-import');
});
afterAll(() => site.remove());

/** Every file under `dir` with its size: what "the store did not change" compares. */
function listing(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      const stat = statSync(full);
      if (stat.isDirectory()) walk(full);
      else out.push(`${relative(dir, full)} ${stat.size}`);
    }
  };
  walk(dir);
  return out.sort();
}

const CASES: [string, Parameters<typeof buildTar>[0]][] = [
  ['path traversal', [{ name: '../../../../tmp/strata-hostile-escape', data: 'x' }]],
  ['absolute name', [{ name: '/tmp/strata-hostile-escape', data: 'x' }]],
  ['hard link out of the archive', [{ name: 'h', type: TYPE.hardlink, linkname: '../../../tmp/strata-hostile-escape' }]],
  ['size larger than the archive', [{ name: 'big', data: 'x', rawSize: '77777777777' }]],
];

test.each(CASES)('%s: exit 2, one line, nothing published', async (_name, entries) => {
  const tar = join(site.root, 'hostile.tar');
  writeFileSync(tar, buildTar(entries));
  const before = listing(site.store);
  const result = await site.run(['import', `tar:${tar}`, '--tag', 'hostile:1']);
  expect({ code: result.code, lines: result.stderr.trim().split('\n').length, stderr: result.stderr }).toEqual({ code: 2, lines: 1, stderr: expect.stringMatching(/^strata: .*layer tar/) });
  expect(listing(site.store).filter((line) => !line.startsWith('tmp/'))).toEqual(before.filter((line) => !line.startsWith('tmp/')));
  expect(listing(join(site.store, 'tmp'))).toEqual([]);
  expect(existsSync('/tmp/strata-hostile-escape')).toBe(false);
}, 60_000);

test('a symlink to /etc and a file through it never touch the host', async () => {
  const tar = join(site.root, 'symlink.tar');
  writeFileSync(tar, buildTar([{ name: 'escape', type: TYPE.symlink, linkname: '/tmp' }, { name: 'escape/strata-hostile-escape', data: 'owned\n' }]));
  const result = await site.run(['import', `tar:${tar}`, '--tag', 'symlink:1']);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect([0, 2]).toContain(result.code);
  expect(existsSync('/tmp/strata-hostile-escape')).toBe(false);
  expect(listing(join(site.store, 'tmp'))).toEqual([]);
}, 60_000);
