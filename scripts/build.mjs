// Build: one esbuild bundle per entry point (the CLI, the Slurm prolog and epilog), sharing
// chunks. Bundling matters for the prolog: resolving hundreds of node_modules files at start-up
// costs more than the whole mount work (see docs/performance.md).

import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { CFLAGS, compileMountHelper } from './helper-build.mjs';

const entries = { 'bin/strata': 'src/bin-strata.ts', 'prolog/slurm': 'prolog/slurm.ts', 'epilog/slurm': 'epilog/slurm.ts',
  'prolog/pbs': 'prolog/pbs.ts', 'epilog/pbs': 'epilog/pbs.ts',
  'prolog/torque': 'prolog/torque.ts', 'prolog/torque-parallel': 'prolog/torque-parallel.ts', 'epilog/torque': 'epilog/torque.ts' };
// Build beside dist/ and swap it in, so that a running prolog or test never sees a half-built tree.
const staging = `dist.${process.pid}`;
await build({
  entryPoints: entries,
  outdir: staging,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  chunkNames: 'chunks/[name]-[hash]',
  // A CommonJS dependency that calls require() for Node built-ins would need it; cheap insurance.
  banner: { js: "import { createRequire as __strataRequire } from 'node:module'; const require = __strataRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
});
for (const name of Object.keys(entries)) chmodSync(`${staging}/${name}.js`, 0o755);
// The mount executor (helper/*.c). Without it (no C compiler) jobs cannot get a container: binds
// into a rootfs are made only through it (src/host/job-mounts.ts).
mkdirSync(`${staging}/helper`);
const mountHelperBuilt = compileMountHelper(`${staging}/helper/strata-mount`);
// The reader of a job's writable layer for --container-save (helper/upper-walk.c).
const walker = spawnSync('cc', [...CFLAGS, '-o', `${staging}/helper/strata-upper-walk`, 'helper/upper-walk.c'], { stdio: 'inherit' });
const helperBuilt = mountHelperBuilt && walker.status === 0;
// The node agent's socket owner (front/strata-agent-gate.c): without it there is no agent, and the
// front-ends run Node for every container job, as before.
spawnSync('cc', [...CFLAGS, '-o', `${staging}/helper/strata-agent-gate`, 'front/strata-agent-gate.c'], { stdio: 'inherit' });
// The Slurm Prolog/Epilog front-ends (front/strata-front.c): they answer the jobs that need no
// Node (no container; nothing of the job on the node) and exec prolog/slurm.js or epilog/slurm.js
// otherwise. Without a C compiler, slurm.conf names the .js entry points directly.
// Linked statically (as a position-independent executable, so still randomized): slurmd execs
// one per prolog and epilog of every job, and the dynamic loader's mapping and relocation of libc
// was a sixth of a warm container prolog's cost here (docs/performance.md). They use no name
// service, which static glibc cannot load. Where libc.a is missing, they are linked dynamically.
const frontBuilt = (phase, link) => spawnSync('cc', [...CFLAGS, ...link, ...(phase === 'epilog' ? ['-DSTRATA_EPILOG'] : []), '-o', `${staging}/${phase}/slurm`, 'front/strata-front.c'], { stdio: link.length ? 'ignore' : 'inherit' }).status === 0;
const fronts = ['prolog', 'epilog'].map((phase) => frontBuilt(phase, ['-static-pie']) || frontBuilt(phase, []));
rmSync(`dist.old.${process.pid}`, { recursive: true, force: true });
try {
  renameSync('dist', `dist.old.${process.pid}`);
} catch {
  // first build
}
renameSync(staging, 'dist');
rmSync(`dist.old.${process.pid}`, { recursive: true, force: true });
console.log(`built ${Object.keys(entries).map((name) => `dist/${name}.js`).join(', ')}`);
console.log(helperBuilt ? 'built dist/helper/strata-mount, dist/helper/strata-upper-walk' : 'mount helper NOT built: this node cannot set up containers (install a C compiler and rebuild)');
console.log(fronts.every(Boolean) ? 'built dist/prolog/slurm, dist/epilog/slurm (Slurm front-ends)' : 'Slurm front-ends not built (slurm.conf names the .js entry points)');

// The man pages, from the command definitions and the configuration schema.
if (spawnSync(process.execPath, ['scripts/gen-man.mjs'], { stdio: 'inherit' }).status !== 0) process.exit(1);

// The SPANK plugin, where Slurm's headers are installed.
if (spawnSync('make', ['-s', '-C', 'spank', 'check-headers']).status === 0) {
  if (spawnSync('make', ['-s', '-C', 'spank'], { stdio: 'inherit' }).status !== 0) process.exit(1);
  console.log('built spank/strata.so');
} else console.log('Slurm headers not found: SPANK plugin not built');
