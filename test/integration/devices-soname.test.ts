// readSoname on a real shared library, built here with gcc (so not in the unit suite).

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSoname } from '../../src/runtime/devices/soname.js';
import { cleanupCdi, tempDir } from '../helpers/cdi-host.js';

test('readSoname reads DT_SONAME of a real library', () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 'l.c'), 'int f(void) { return 1; }\n');
    execFileSync('gcc', ['-shared', '-fPIC', '-Wl,-soname,libdemo.so.1', '-o', join(dir, 'libdemo.so.1.2.3'), join(dir, 'l.c')]);
    expect(readSoname(join(dir, 'libdemo.so.1.2.3'))).toBe('libdemo.so.1');
    expect(readSoname(join(dir, 'l.c'))).toBeUndefined();
    expect(readSoname(join(dir, 'missing'))).toBeUndefined();
  } finally {
    cleanupCdi(dir);
  }
});
