// Build: one esbuild bundle per entry point (the CLI, the Slurm prolog and epilog), sharing
// chunks. Bundling matters for the prolog: resolving hundreds of node_modules files at start-up
// costs more than the whole mount work (see docs/performance.md).

import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';

const entries = { 'bin/strata': 'src/bin-strata.ts', 'prolog/slurm': 'prolog/slurm.ts', 'epilog/slurm': 'epilog/slurm.ts' };
rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: entries,
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunks/[name]-[hash]',
  // winston and friends are CommonJS and call require() for Node built-ins.
  banner: { js: "import { createRequire as __strataRequire } from 'node:module'; const require = __strataRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
});
for (const name of Object.keys(entries)) chmodSync(`dist/${name}.js`, 0o755);
console.log(`built ${Object.keys(entries).map((name) => `dist/${name}.js`).join(', ')}`);
