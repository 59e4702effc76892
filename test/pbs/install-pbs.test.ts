// `strata install-pbs`: what it puts in place, what it prints for qmgr, and that it is idempotent.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSite, type Site } from '../helpers/site.js';

let site: Site;
let prefix: string;

beforeAll(() => {
  site = makeSite('install-pbs');
  prefix = mkdtempSync(join(tmpdir(), 'strata-pbs-prefix-'));
});
afterAll(() => {
  rmSync(prefix, { recursive: true, force: true });
  site.remove();
});

test('--dry-run changes nothing and prints the hook configuration and the qmgr commands', async () => {
  const dry = await site.run(['install-pbs', '--prefix', prefix, '--dry-run']);
  expect(dry.code).toBe(0);
  expect(dry.stdout).toContain(`would install ${prefix}/lib/strata/prolog/pbs.js`);
  expect(dry.stdout).toContain(`would install ${prefix}/lib/strata/pbs/strata_hook.py`);
  expect(dry.stdout).toContain(`"runtime_dir": "${site.runtime}"`);
  expect(dry.stdout).toContain(`qmgr -c 'import hook strata_mom application/x-config default ${prefix}/lib/strata/pbs/strata_hook.json'`);
  // flag m: without it PBS never sends -l container_image to a MoM hook.
  expect(dry.stdout).toContain("qmgr -c 'create resource container_image type=string, flag=m'");
  expect(dry.stdout).toContain("qmgr -c 'set resource container_image flag = m'");
  expect(dry.stdout).toContain(`qmgr -c 'set hook strata_mom event = "execjob_begin,execjob_launch,execjob_end,exechost_startup,exechost_periodic"'`);
  expect(dry.stdout).toContain(`would install ${prefix}/bin/strata -> ${prefix}/lib/strata/bin/strata.js`);
  expect(existsSync(join(prefix, 'lib'))).toBe(false);
  expect(existsSync(join(prefix, 'bin'))).toBe(false);
});

test('install puts the build and the hook in place; a second run changes nothing', async () => {
  const first = await site.run(['install-pbs', '--prefix', prefix]);
  expect(first.code).toBe(0);
  const lib = join(prefix, 'lib/strata');
  for (const file of ['bin/strata.js', 'prolog/pbs.js', 'epilog/pbs.js', 'prolog/torque.js', 'prolog/torque-parallel.js', 'epilog/torque.js', 'pbs/strata_hook.py']) {
    expect(existsSync(join(lib, file))).toBe(true);
  }
  expect(JSON.parse(readFileSync(join(lib, 'pbs/strata_hook.json'), 'utf8'))).toEqual({
    node: process.execPath, lib, config: site.configPath, runtime_dir: site.runtime, reconcile_grace_seconds: 120,
  });
  // `strata` is on the PATH of a job script that has <prefix>/bin in it (/usr/local/bin by default).
  expect(readlinkSync(join(prefix, 'bin/strata'))).toBe(join(lib, 'bin/strata.js'));
  const onPath = spawnSync('/bin/sh', ['-c', 'strata exec -- true'], { env: { PATH: `${join(prefix, 'bin')}:/usr/bin:/bin`, PBS_JOBID: '1.pbs', STRATA_CONFIG: site.configPath }, encoding: 'utf8' });
  expect(onPath.stderr).toMatch(/^strata: job 1\.pbs has no container on this node/);
  const again = await site.run(['install-pbs', '--prefix', prefix]);
  expect(again.stdout).toMatch(/strata: 0 changes, \d+ files unchanged/);
});
