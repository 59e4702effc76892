// The job directory's file names are spelled once, in RuntimePaths (src/runtime/paths.ts): a reader
// that spells one by hand drifts from the writer the day a name changes.

import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = new URL('../../src', import.meta.url).pathname;
const NAMES = ['journal', 'entry.json', 'save.json'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

test('only RuntimePaths spells the job directory\'s file names', () => {
  const spelled = sources(SRC)
    .filter((file) => relative(SRC, file) !== 'runtime/paths.ts')
    .flatMap((file) => {
      const text = readFileSync(file, 'utf8');
      return NAMES.filter((name) => text.includes(`'${name}'`) || text.includes(`"${name}"`)).map((name) => `${relative(SRC, file)}: '${name}'`);
    });
  expect(spelled).toEqual([]);
});
