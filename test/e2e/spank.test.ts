// The SPANK plugin's own unit tests (plugstack arguments, option values, the entry.json reader),
// built with ASan/UBSan by `make -C spank check`; run here so that CI runs them with the rest.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './cluster.js';

test('make -C spank check', () => {
  const result = spawnSync('make', ['-s', '-C', join(REPO, 'spank'), 'check'], { encoding: 'utf8' });
  expect({ status: result.status, output: result.stdout + result.stderr }).toEqual({ status: 0, output: expect.stringContaining('spank unit tests: ok') });
});
