// src/host/exec.ts runs short commands; the modules that start processes of other shapes are named
// in its header with their reason. A new spawner must be named there too, so the header stays true.

import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = new URL('../../src', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

test('every module that starts processes is named in exec.ts\'s header', () => {
  const header = readFileSync(join(SRC, 'host/exec.ts'), 'utf8').split('\n').filter((line) => line.startsWith('//')).join('\n');
  const spawners = sources(SRC)
    .filter((file) => /from 'node:child_process'/.test(readFileSync(file, 'utf8')))
    .map((file) => relative(SRC, file))
    .filter((file) => file !== 'host/exec.ts');
  expect(spawners.length).toBeGreaterThan(0);
  expect(spawners.filter((file) => !header.includes(file))).toEqual([]);
  expect(header).not.toMatch(/one place strata runs other programs/);
});
