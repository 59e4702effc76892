// Compiles the mount executor (helper/*.c): for dist/ (scripts/build.mjs), and, run directly, a
// test build of it with a compile-time test switch, so that the installed root helper never
// carries one (test/integration/erofs-loop-fallback.test.ts).
//
// Usage: node scripts/helper-build.mjs OUTPUT [-DNAME ...]

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CFLAGS = ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror', '-D_FORTIFY_SOURCE=2', '-fstack-protector-strong'];
const SOURCES = ['strata-mount.c', 'loops.c', 'untrusted.c', 'job-mounts.c', 'device-ops.c', 'image-files.c', 'remap.c', 'identity.c'];
const REPO = fileURLToPath(new URL('..', import.meta.url));

/** Compiles the mount executor to `output` with extra `defines` (-DNAME); true when it was built. */
export function compileMountHelper(output, defines = []) {
  const sources = SOURCES.map((name) => `${REPO}helper/${name}`);
  return spawnSync('cc', [...CFLAGS, ...defines, '-o', output, ...sources], { stdio: 'inherit' }).status === 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [output, ...defines] = process.argv.slice(2);
  if (!output || defines.some((define) => !/^-D[A-Z_]+$/.test(define))) {
    console.error('usage: node scripts/helper-build.mjs OUTPUT [-DNAME ...]');
    process.exit(2);
  }
  process.exit(compileMountHelper(output, defines) ? 0 : 1);
}
