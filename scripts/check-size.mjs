#!/usr/bin/env node
// "Each file one job": a TypeScript file under src/ over LIMIT lines must say why at its top, in a
// comment line starting "// Long (over ~300 lines)" within its first 40 lines. Prints each file
// that does not and exits 1; prints the stated exceptions with --list.

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const LIMIT = 300;
const root = new URL('..', import.meta.url).pathname;
const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));

const unexplained = [];
const exceptions = [];
for (const file of walk(join(root, 'src')).sort()) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const count = lines.length - (lines.at(-1) === '' ? 1 : 0);
  if (count <= LIMIT) continue;
  const reason = lines.slice(0, 40).find((line) => line.startsWith('// Long (over ~300 lines)'));
  (reason ? exceptions : unexplained).push(`${relative(root, file)}: ${count} lines${reason ? ` — ${reason.replace(/^\/\/ Long \(over ~300 lines\)( on purpose)?:?\s*/, '')}` : ''}`);
}
if (process.argv.includes('--list')) for (const line of exceptions) console.log(line);
for (const line of unexplained) console.error(`${line}, over ${LIMIT} with no "// Long (over ~300 lines): why" at its top`);
if (unexplained.length) process.exit(1);
console.log(`check:size: no file under src/ over ${LIMIT} lines without a stated reason (${exceptions.length} stated: npm run check:size -- --list)`);
