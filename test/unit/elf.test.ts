// The ELF reader `strata doctor` uses to check the SPANK plugin without nm(1).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

test('rejects what is not ELF, or is cut short, with a reason', () => {
  expect(readElf(Buffer.from('#!/bin/sh\necho hi\n'.padEnd(80)))).toEqual({ error: 'not an ELF file' });
  const libc = readFileSync(process.execPath);
  expect(readElf(libc.subarray(0, 64))).toMatchObject({ error: expect.stringMatching(/damaged ELF/) });
});
