#!/usr/bin/env node
// Builds the Slurm prolog and epilog as Node single-executable applications (dist-sea/strata-prolog,
// dist-sea/strata-epilog) for nodes without Node.js: each is a copy of this node binary with the
// bundled entry point (CommonJS, one file, with a V8 code cache) injected by postject.
// Needs network access to npm once (npx fetches postject). See docs/install.md.
// Usage: node scripts/build-sea.mjs

import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist-sea');
const work = join(out, 'work');
rmSync(out, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// SEA runs one CommonJS script: no top-level await, no chunks. These wrappers do what
// prolog/slurm.ts and epilog/slurm.ts do.
const entries = {
  'strata-prolog': `import { slurmJob } from '${root}/src/scheduler/slurm-env.ts';
import { prologCommand } from '${root}/src/cli/commands/prolog.ts';
(async () => { const job = slurmJob(process.env); process.exitCode = job.image || job.imageDigest ? await prologCommand(job) : 0; })();`,
  'strata-epilog': `import { slurmJob } from '${root}/src/scheduler/slurm-env.ts';
import { epilogCommand } from '${root}/src/cli/commands/epilog.ts';
(async () => { process.exitCode = await epilogCommand({ job: slurmJob(process.env).job }); })();`,
};

for (const [name, source] of Object.entries(entries)) {
  const entry = join(work, `${name}.ts`);
  writeFileSync(entry, source);
  const script = join(work, `${name}.cjs`);
  await build({
    entryPoints: [entry], outfile: script, bundle: true, platform: 'node', format: 'cjs', target: 'node22', logLevel: 'error', legalComments: 'none',
    // CommonJS has no import.meta. Code that finds files next to itself (the mount helper:
    // ../helper/strata-mount from dist/chunks/) gets a URL as if it were a chunk next to the
    // executable, so dist-sea/helper/strata-mount is found.
    define: { 'import.meta.url': '__strataSeaUrl' },
    banner: { js: "const __strataSeaUrl = require('node:url').pathToFileURL(require('node:path').join(require('node:path').dirname(process.execPath), 'chunks', 'sea.js')).href;" },
  });
  const config = join(work, `${name}.sea.json`);
  const blob = join(work, `${name}.blob`);
  writeFileSync(config, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }));
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'inherit' });
  const binary = join(out, name);
  copyFileSync(process.execPath, binary);
  chmodSync(binary, 0o755);
  execFileSync('npx', ['--yes', 'postject@1.0.0-alpha.6', binary, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { stdio: ['ignore', 'ignore', 'inherit'] });
  console.log(`built dist-sea/${name}`);
}
// The mount executor, where the executables look for it.
if (existsSync(join(root, 'dist/helper/strata-mount'))) {
  mkdirSync(join(out, 'helper'));
  copyFileSync(join(root, 'dist/helper/strata-mount'), join(out, 'helper/strata-mount'));
  chmodSync(join(out, 'helper/strata-mount'), 0o755);
}
rmSync(work, { recursive: true, force: true });
