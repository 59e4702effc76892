// --container-save through the real 3-node cluster, as an ordinary user (issue 16): a job changes
// its container and saves it; a new job from the saved file (imported on the job's image, or given
// as --container-image=FILE, Pyxis's way) and one from the saved image (~/NAME:TAG) see the change. Also: a job that asked for an image only in its
// environment (what slurmrestd sends) fails instead of running on the bare host.

import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { importImage, on, readOutput, sbatch, strata, USER, waitForJob, withUserImports, workDir, useCleanCluster } from './cluster.js';

useCleanCluster(() => importImage('save-base:1', { 'etc/strata-marker': 'base\n' }));

async function runBatch(dir: string, args: string[], script: string) {
  const submitted = await sbatch(dir, ['-o', join(dir, 'out.txt'), ...args, '--wrap', script]);
  expect({ code: submitted.code, stderr: submitted.stderr }).toEqual({ code: 0, stderr: '' });
  const info = await waitForJob(submitted.jobId!);
  return { info, output: readOutput(join(dir, 'out.txt')) };
}

// Jobs run as an ordinary user: they install where they may write (the container's / is theirs).
const CHANGE = 'mkdir -p /opt/tool && echo v1 > /opt/tool/version && echo old > /opt/tool/old && echo changed';
const CHECK = 'cat /opt/tool/version /opt/tool/old /etc/strata-marker';

test('a job saves its changes to a file; a job from that file on the same image sees them', async () => {
  const dir = workDir('save-file');
  const first = await runBatch(dir, ['-N1', '--container-image=save-base:1', '--container-save=./saved.sqsh'], CHANGE);
  expect({ state: first.info.state, output: first.output }).toEqual({ state: 'COMPLETED', output: 'changed\n' });
  const saved = join(dir, 'saved.sqsh');
  // Written by the epilog as the job's user.
  expect(existsSync(saved) && statSync(saved).uid).toBe(USER.uid);

  const tar = join(dir, 'saved.tar');
  execFileSync('/bin/sh', ['-c', `/usr/bin/sqfs2tar --no-skip '${saved}' > '${tar}'`]);
  const imported = await strata(['import', `tar:${tar}`, '--base', 'save-base:1', '--tag', 'saved-file:1']);
  expect(imported.code).toBe(0);
  const second = await runBatch(workDir('save-file-2'), ['-N1', '--container-image=saved-file:1'], CHECK);
  expect(second.info.state).toBe('COMPLETED');
  expect(second.output).toBe('v1\nold\nbase\n');
}, 120_000);

test('~/NAME:TAG: the saved image is the user\'s own, and a later job runs in it', () =>
  withUserImports('  user_imports: true\n', async () => {
    const dir = workDir('save-image');
    const first = await runBatch(dir, ['-N1', '--container-image=save-base:1', '--container-save=~/saved:1'], CHANGE);
    expect({ state: first.info.state, output: first.output }).toEqual({ state: 'COMPLETED', output: 'changed\n' });
    const second = await runBatch(workDir('save-image-2'), ['-N1', '--container-image=~/saved:1'], CHECK);
    expect({ state: second.info.state, output: second.output }).toEqual({ state: 'COMPLETED', output: 'v1\nold\nbase\n' });
    // A job on the saved image deletes and changes what the first one made, and saves again.
    const third = await runBatch(workDir('save-image-3'), ['-N1', '--container-image=~/saved:1', '--container-save=~/saved:2'], 'rm /opt/tool/old && echo v2 > /opt/tool/version && echo ok');
    expect({ state: third.info.state, output: third.output }).toEqual({ state: 'COMPLETED', output: 'ok\n' });
    const fourth = await runBatch(workDir('save-image-4'), ['-N1', '--container-image=~/saved:2'], 'cat /opt/tool/version; ls /opt/tool');
    expect({ state: fourth.info.state, output: fourth.output }).toEqual({ state: 'COMPLETED', output: 'v2\nversion\n' });
    const images = await strata(['images']);
    expect(images.stdout).toMatch(new RegExp(`~${USER.name}/saved:1 +[0-9a-f]{12} +2 `));
    expect(images.stdout).toMatch(new RegExp(`~${USER.name}/saved:2 +[0-9a-f]{12} +3 `));
  }), 120_000);

test('Pyxis\'s round trip: --container-image=FILE of a saved file runs in the job\'s image plus its changes, deletions too', () =>
  withUserImports('  user_imports: true\n  on_demand: true\n', async () => {
    const dir = workDir('save-file-image');
    const first = await runBatch(dir, ['-N1', '--container-image=save-base:1', '--container-save=./first.sqsh'], CHANGE);
    expect({ state: first.info.state, output: first.output }).toEqual({ state: 'COMPLETED', output: 'changed\n' });
    // From the file (resolved, and imported on first use, by sbatch as the user), saving again.
    const second = await runBatch(dir, ['-N1', '--container-image=./first.sqsh', '--container-save=./second.sqsh'], `${CHECK} && rm /opt/tool/old && echo v2 > /opt/tool/version`);
    expect({ state: second.info.state, output: second.output }).toEqual({ state: 'COMPLETED', output: 'v1\nold\nbase\n' });
    // Its base is the image made from the first file: the chain holds, and the deletion shows.
    const third = await runBatch(dir, ['-N1', '--container-image=./second.sqsh'], 'cat /opt/tool/version /etc/strata-marker; ls /opt/tool');
    expect({ state: third.info.state, output: third.output }).toEqual({ state: 'COMPLETED', output: 'v2\nbase\nversion\n' });
    // Imported on first use at submit: the first file as save-base:1 + 1 layer, the second on that.
    const images = await strata(['images']);
    for (const layers of [2, 3]) expect(images.stdout).toMatch(new RegExp(`~${USER.name}/sqsh/[0-9a-f]{16}:[0-9a-f]{16} +[0-9a-f]{12} +${layers} `));
  }), 180_000);

test('a save that fails is told in the job\'s output; the node is not drained', async () => {
  const dir = workDir('save-fail');
  const first = await runBatch(dir, ['-N1', '--container-image=save-base:1', '--container-save=/proc/nope.sqsh'], 'echo ran');
  expect(first.info.state).toBe('COMPLETED');
  expect(first.output).toMatch(/^ran\nstrata: cannot save the container to \/proc\/nope.sqsh: /);
}, 60_000);

test('in a container job, srun --container-name reaches the job\'s container; srun --container-save is refused', async () => {
  const dir = workDir('save-step');
  const script = 'srun --container-image=save-base:1 --container-name=dev sh -c "echo step1 > /from-step1"; srun --container-name=dev:exec cat /from-step1 /etc/strata-marker; srun --container-save=./x.sqsh true; echo rc=$?';
  const result = await runBatch(dir, ['-N1', '--container-image=save-base:1', '--container-batch=host'], script);
  expect(result.output).toMatch(/^step1\nbase\n/);
  expect(result.output).toMatch(/--container-save on srun inside an allocation is not supported/);
  expect(result.output).toMatch(/rc=1/);
  // Outside a container job a name alone cannot stand for anything: refused at submit.
  const refused = await sbatch(dir, ['--container-name=dev', '--wrap', 'true']);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/--container-name needs --container-image: strata keeps no container after its job/);
}, 60_000);

test('an image only in the job environment (as slurmrestd submits it) fails the job, never the bare host', async () => {
  const dir = workDir('env-only');
  const submitted = await sbatch(dir, ['-N1', '-o', join(dir, 'out.txt'), '--export=ALL,STRATA_CONTAINER_IMAGE=save-base:1', '--wrap', 'echo ran on the host']);
  expect(submitted.code).toBe(0);
  const info = await waitForJob(submitted.jobId!);
  const output = readOutput(join(dir, 'out.txt'));
  expect(output).not.toMatch(/ran on the host/);
  expect(info.state).toBe('FAILED');
  expect(output).toMatch(/asks for image save-base:1 \(STRATA_CONTAINER_IMAGE in its environment\), but strata's plugin never set it up/);
  // srun steps too.
  const step = await on('head', ['srun', '-N1', '--export=ALL,PYXIS_CONTAINER_IMAGE=save-base:1', 'echo', 'ran on the host'], { user: true, cwd: dir });
  expect(step.stdout).not.toMatch(/ran on the host/);
  expect(step.stderr).toMatch(/PYXIS_CONTAINER_IMAGE in its environment/);
}, 60_000);
