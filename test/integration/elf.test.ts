// The ELF reader `strata doctor` uses to check the SPANK plugin without nm(1), on real shared
// objects checked against nm and built with cc (so not in the unit suite; test/unit/elf.test.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readElf } from '../../src/doctor/elf.js';

test('lists the defined dynamic symbols of a shared object, as nm -D --defined-only does', () => {
  const libc = execFileSync('/bin/sh', ['-c', "ldd /bin/ls | awk '/libc\\.so/ {print $3}'"], { encoding: 'utf8' }).trim();
  const info = readElf(readFileSync(libc));
  if ('error' in info) throw new Error(info.error);
  expect(info.type).toBe(3);
  expect(info.bits).toBe(64);
  expect(info.exports).toEqual(expect.arrayContaining(['malloc', 'printf', 'open']));
  // Undefined (imported) symbols are not exports.
  const nm = execFileSync('nm', ['-D', '--defined-only', libc], { encoding: 'utf8' }).split('\n').filter(Boolean).length;
  expect(info.exports.length).toBeGreaterThan(nm * 0.9);
});

test("reads a plugin's plugin_version, the Slurm release whose headers it was built against", () => {
  // What SPANK_PLUGIN() compiles into every plugin (SLURM_VERSION_NUMBER; here 24.11.5).
  const dir = mkdtempSync(join(tmpdir(), 'strata-elf-'));
  try {
    writeFileSync(join(dir, 'p.c'), 'const unsigned int plugin_version = 0x180b05;\nconst char plugin_type[] = "spank";\n');
    execFileSync('cc', ['-shared', '-fpic', '-O2', '-o', join(dir, 'p.so'), join(dir, 'p.c')]);
    expect(readElf(readFileSync(join(dir, 'p.so')))).toMatchObject({ pluginVersion: 0x180b05, exports: expect.arrayContaining(['plugin_version']) });
    expect(readElf(readFileSync(process.execPath))).not.toHaveProperty('pluginVersion');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
