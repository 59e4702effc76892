#!/usr/bin/env node
// Writes etc/strata.yaml and docs/configuration.md from src/config/schema.ts (via src/config/doc.ts).
// `--check` writes nothing and exits 1 when a committed file differs from what would be generated.
// Usage: node scripts/gen-config-doc.mjs [--check]

import { build } from 'esbuild';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

const bundle = await build({
  entryPoints: [join(root, 'src/config/doc.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  write: false,
  logLevel: 'error',
});
const source = bundle.outputFiles[0].text;
const { renderExampleConfig, renderConfigDoc } = await import(
  `data:text/javascript;base64,${Buffer.from(source).toString('base64')}`
);

const outputs = [
  ['etc/strata.yaml', renderExampleConfig()],
  ['docs/configuration.md', renderConfigDoc()],
];

let stale = 0;
for (const [relative, text] of outputs) {
  const path = join(root, relative);
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === text) continue;
  if (check) {
    console.error(`${relative} is out of date; run: node scripts/gen-config-doc.mjs`);
    stale++;
  } else {
    await writeFile(path, text);
    console.log(`wrote ${relative}`);
  }
}
process.exit(stale ? 1 : 0);
