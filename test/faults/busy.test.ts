// A process of the job still holds the rootfs when the epilog runs (its cwd is inside it): the
// epilog must finish anyway (busy mounts are retried, then lazily detached; the job directory
// goes), exit 0 so the node is not drained, and `strata node status` must say precisely what is
// still held: the loop devices of the image, freed by the kernel when that process exits.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, expectCleanNode, expectNextJobWorks, nodeStatus, useThreeLayerSite } from '../helpers/faults.js';
import { jobsOn } from '../helpers/jobs.js';
import { loopsFor } from '../helpers/node-state.js';
import { SQUASHFS_LAYERS } from '../helpers/site.js';

// The held loop devices are what status reports: squashfs layers (erofs ones are mounted from their files).
const fx = useThreeLayerSite('busy', SQUASHFS_LAYERS);


test('a process with its cwd in the rootfs: epilog detaches lazily, status reports the held loops, all goes when it exits', async () => {
  const jobs = jobsOn(() => fx.site);
  expect((await jobs.prolog('81', 'three:1')).code).toBe(0);
  const rootfs = jobs.rootfs('81');
  const holder = spawn('/usr/bin/sleep', ['120'], { cwd: join(rootfs, 'data'), stdio: 'ignore' });
  try {
    const epilog = await jobs.epilog('81');
    expect({ code: epilog.code, stderr: epilog.stderr }).toEqual({ code: 0, stderr: '' });
    const epilogLine = readFileSync(fx.site.logFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line)).find((line) => line.job === '81' && line.phase === 'epilog');
    expect({ result: epilogLine?.result, message: epilogLine?.message }).toEqual({ result: 'lazy', message: expect.stringContaining('lazily detached') });
    const status = await nodeStatus(fx.site);
    expect({ jobs: status.jobs, layers: status.layers }).toEqual({ jobs: [], layers: [] });
    // Exactly the image's three loop devices are reported as still held, and why.
    const held = status.stale.filter((item) => item.kind === 'loop-held-elsewhere');
    expect(held).toHaveLength(3);
    expect(status.stale).toHaveLength(3);
    expect(held[0].detail).toMatch(/lazily detached mount/);
    // gc has nothing to do for them (the kernel frees them), and does not fail.
    const gc = await fx.site.run(['node', 'gc', '--live-jobs', '']);
    expect(gc.code).toBe(0);
    expect(loopsFor(fx.site.store)).toHaveLength(3);
    // The next job of the image while they are held mounts those same three devices: still one
    // loop device per layer file.
    expect((await jobs.prolog('82', 'three:1')).code).toBe(0);
    expect(loopsFor(fx.site.store)).toHaveLength(3);
    expect((await jobs.epilog('82')).code).toBe(0);
    expect(loopsFor(fx.site.store)).toHaveLength(3);
  } finally {
    holder.kill('SIGKILL');
  }
  await eventually(() => loopsFor(fx.site.store).length === 0);
  await expectCleanNode(fx.site, fx.before);
  await expectNextJobWorks(fx.site, fx.before, 'three:1');
}, 60_000);
