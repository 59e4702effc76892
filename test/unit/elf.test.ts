// The ELF reader `strata doctor` uses to check the SPANK plugin without nm(1): what it refuses.
// (Real shared objects, checked against nm and built with cc: test/integration/elf.test.ts.)
import { closeSync, openSync, readSync } from 'node:fs';
import { readElf } from '../../src/doctor/elf.js';

test('rejects what is not ELF, or is cut short, with a reason', () => {
  expect(readElf(Buffer.from('#!/bin/sh\necho hi\n'.padEnd(80)))).toEqual({ error: 'not an ELF file' });
  // The first 64 bytes of a real executable: the ELF header alone, nothing it points to.
  const head = Buffer.alloc(64);
  const fd = openSync(process.execPath, 'r');
  readSync(fd, head, 0, 64, 0);
  closeSync(fd);
  expect(readElf(head)).toMatchObject({ error: expect.stringMatching(/damaged ELF/) });
});
