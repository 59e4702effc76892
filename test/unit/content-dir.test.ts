// The Slurm wrappers' shared directory: written whole or not at all, once, and what a killed
// writer left goes with the next writer.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeContentDir } from '../../src/host/content-dir.js';

let root: string;
beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'content-dir-'))));
afterEach(() => rmSync(root, { recursive: true, force: true }));

const files = [
  { name: 'srun', text: '#!/bin/sh\nexec srun "$@"\n' },
  { name: 'sbatch', text: '#!/bin/sh\nexec sbatch "$@"\n' },
];

test('written once under its name, executable; a second writer finds it and writes nothing', () => {
  const dir = join(root, 'slurm-client', 'abc');
  writeContentDir(dir, files);
  expect(readdirSync(dir).sort()).toEqual(['sbatch', 'srun']);
  expect(readFileSync(join(dir, 'srun'), 'utf8')).toBe(files[0].text);
  writeFileSync(join(dir, 'marker'), '');
  writeContentDir(dir, files);
  expect(existsSync(join(dir, 'marker'))).toBe(true);
  expect(readdirSync(join(root, 'slurm-client'))).toEqual(['abc']);
});

test("a killed writer's staging directory goes with the next writer; a running writer's stays", () => {
  const parent = join(root, 'slurm-client');
  // A process that has exited: its pid names no process now.
  const gone = spawnSync('/bin/true').pid!;
  const abandoned = join(parent, `old.${gone}.0123456789ab`);
  const running = join(parent, `other.${process.pid}.ba9876543210`);
  for (const dir of [abandoned, running]) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'srun'), 'half');
  }
  writeContentDir(join(parent, 'new'), files);
  expect(readdirSync(parent).sort()).toEqual(['new', `other.${process.pid}.ba9876543210`]);
});

test('a write that fails leaves no staging directory and nothing under the name', () => {
  const dir = join(root, 'w');
  expect(() => writeContentDir(dir, [...files, { name: 'srun', text: 'twice' }])).toThrow(/EEXIST/);
  expect(readdirSync(root)).toEqual([]);
});
