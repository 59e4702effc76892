// End to end through real Slurm on the 3-node cluster, as an ordinary user: Pyxis's flag pairs
// with Pyxis's meaning (its tests/entrypoint.bats, mount_home.bats, remap_root.bats):
// --container-entrypoint(-log), --container-remap-root and --container-mount-home, their
// PYXIS_* variables, and the site's defaults (off, off, on).

import { chownSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { busyboxLayer, writeLayout, type TarSpec } from '../helpers/oci.js';
import { DIR, USER, on, readOutput, sbatch, strata, useCleanCluster, waitForJob, waitForQuietCluster, workDir } from './cluster.js';

/** An image whose entrypoint prints a banner, exports a variable (seeing KEEP_ME only if kept) and runs its arguments. */
async function importEntrypointImage() {
  const layout = join(DIR, 'image-trees', 'entrypoint-oci');
  rmSync(layout, { recursive: true, force: true });
  const entrypoint = '#!/bin/sh\necho "entrypoint banner"\nexport FROM_ENTRYPOINT="ran:${KEEP_ME-unset}"\nexec "$@"\n';
  // /usr/bin and a dpkg database, root's: what --container-remap-root installs a package into.
  const dpkg = ['usr', 'usr/bin', 'var/lib', 'var/lib/dpkg', 'var/lib/dpkg/info'].map((name): TarSpec => ({ name, type: 'dir', mode: 0o755 }));
  const tar = busyboxLayer([{ name: 'docker-entrypoint.sh', content: entrypoint, mode: 0o755 }, { name: 'bin/touch', type: 'symlink', linkname: 'busybox' }, ...dpkg, { name: 'var/lib/dpkg/status', content: '' }]);
  writeLayout(layout, [{ ref: 'ep', layers: [{ tar, compression: 'none' }], config: { Env: ['PATH=/bin'], Entrypoint: ['/docker-entrypoint.sh'] } }]);
  const result = await strata(['import', `oci:${layout}:ep`, '--tag', 'ep:1']);
  if (result.code !== 0) throw new Error(result.stderr);
}

useCleanCluster(importEntrypointImage);

const srun = async (dir: string, args: string[], env: string[] = []) => {
  const result = await on('head', ['env', ...env, 'srun', '-N1', '--container-image=ep:1', ...args], { user: true, cwd: dir });
  await waitForQuietCluster();
  return result;
};

test('--container-entrypoint runs the image\'s entrypoint first (off by default); its output only with --container-entrypoint-log', async () => {
  const dir = workDir('entrypoint');
  const show = ['sh', '-c', 'echo "${FROM_ENTRYPOINT-not run}"'];
  expect(await srun(dir, show)).toMatchObject({ code: 0, stdout: 'not run\n', stderr: '' });
  expect(await srun(dir, ['--container-entrypoint', ...show])).toMatchObject({ code: 0, stdout: 'ran:unset\n', stderr: '' });
  expect(await srun(dir, ['--container-entrypoint', '--container-entrypoint-log', ...show])).toMatchObject({ code: 0, stdout: 'entrypoint banner\nran:unset\n', stderr: '' });
  const both = await srun(dir, ['--container-entrypoint', '--no-container-entrypoint', ...show]);
  expect({ code: both.code, stderr: both.stderr.trim() }).toEqual({ code: 1, stderr: 'srun: error: strata: --container-entrypoint and --no-container-entrypoint exclude each other' });
  // Pyxis's "--container-entrypoint and --container-env": a job variable reaches the entrypoint only when listed
  expect(await srun(dir, ['--container-entrypoint', ...show], ['KEEP_ME=x'])).toMatchObject({ code: 0, stdout: 'ran:unset\n' });
  expect(await srun(dir, ['--container-entrypoint', '--container-env=KEEP_ME', ...show], ['KEEP_ME=x'])).toMatchObject({ code: 0, stdout: 'ran:x\n' });
  expect(await srun(dir, show, ['PYXIS_CONTAINER_ENTRYPOINT=1'])).toMatchObject({ code: 0, stdout: 'ran:unset\n' });
});

/** sbatch as the test user; the job's output once it ended. */
async function batchOutput(dir: string, name: string, args: string[]) {
  const out = join(dir, `${name}.txt`);
  const submitted = await sbatch(dir, ['-o', out, '--container-image=ep:1', ...args]);
  expect({ name, code: submitted.code, stderr: submitted.stderr }).toEqual({ name, code: 0, stderr: '' });
  const info = await waitForJob(submitted.jobId!);
  await waitForQuietCluster();
  return { state: info.state, lines: readOutput(out).split('\n').filter(Boolean).sort() };
}

test('sbatch --container-entrypoint: the batch script and every step run after the entrypoint, also under --export=NONE', async () => {
  const dir = workDir('entrypoint-sbatch');
  expect(await batchOutput(dir, 'batch', ['-N1', '--container-entrypoint', '--wrap', 'echo "batch $FROM_ENTRYPOINT"'])).toEqual({ state: 'COMPLETED', lines: ['batch ran:unset'] });
  // srun needs the batch script on the host (the image has no Slurm); the steps run in the image
  const steps = await batchOutput(dir, 'steps', ['-N2', '--export=NONE', '--container-batch=host', '--container-entrypoint', '--wrap', 'srun -N2 sh -c \'echo "step $FROM_ENTRYPOINT"\'']);
  expect(steps).toEqual({ state: 'COMPLETED', lines: ['step ran:unset', 'step ran:unset'] });
});

test('--container-remap-root: uid and gid 0 inside, files written are the user\'s on the host, the image\'s root files are root\'s', async () => {
  const dir = workDir('remap-root');
  const script = 'id -u; id -g; pwd; touch written-as-root; ls -ln /bin/busybox | while read mode links uid gid rest; do echo "$uid $gid"; done';
  expect(await srun(dir, ['--container-remap-root', 'sh', '-c', script])).toMatchObject({ code: 0, stdout: `0\n0\n${dir}\n0 0\n`, stderr: '' });
  const written = statSync(join(dir, 'written-as-root'));
  expect({ uid: written.uid, gid: written.gid }).toEqual({ uid: USER.uid, gid: USER.gid });
  // without it (the site's default), and with PYXIS_CONTAINER_REMAP_ROOT
  expect(await srun(dir, ['id', '-u'])).toMatchObject({ code: 0, stdout: `${USER.uid}\n` });
  expect(await srun(dir, ['id', '-u'], ['PYXIS_CONTAINER_REMAP_ROOT=1'])).toMatchObject({ code: 0, stdout: '0\n' });
  // the batch script too; and a step may ask for it in a job that did not
  expect(await batchOutput(dir, 'batch', ['-N1', '--container-remap-root', '--wrap', 'id -u'])).toEqual({ state: 'COMPLETED', lines: ['0'] });
  const steps = await batchOutput(dir, 'steps', ['-N1', '--container-batch=host', '--wrap', 'srun --container-remap-root id -u; srun id -u']);
  expect(steps).toEqual({ state: 'COMPLETED', lines: ['0', String(USER.uid)].sort() });
});

test('--container-remap-root installs a package into the image (dpkg -i of a local .deb into /usr/bin) as uid 0', async () => {
  const dir = workDir('remap-dpkg');
  const tree = join(dir, 'pkg');
  mkdirSync(join(tree, 'DEBIAN'), { recursive: true });
  mkdirSync(join(tree, 'usr/bin'), { recursive: true });
  writeFileSync(join(tree, 'DEBIAN/control'), 'Package: strata-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: strata tests <tests@example.org>\nDescription: a test package\n');
  writeFileSync(join(tree, 'usr/bin/strata-hello'), '#!/bin/sh\necho hello from a package\n', { mode: 0o755 });
  execFileSync('/usr/bin/dpkg-deb', ['--root-owner-group', '-b', tree, join(dir, 'strata-hello.deb')], { stdio: 'ignore' });
  const script = 'id -u; busybox dpkg -i strata-hello.deb >/dev/null && /usr/bin/strata-hello && ls -ln /usr/bin/strata-hello /var/lib/dpkg/status | while read m l uid gid rest; do echo "$uid $gid"; done';
  expect(await srun(dir, ['--container-remap-root', 'sh', '-c', script])).toMatchObject({ code: 0, stdout: '0\nhello from a package\n0 0\n0 0\n', stderr: '' });
  // A step asking for it in a job that did not: root, but the image's files stay read-only (docs/decisions.md).
  const steps = await batchOutput(dir, 'steps', ['-N1', '--container-batch=host', '--wrap', 'srun --container-remap-root sh -c "id -u; echo x > /usr/bin/new || echo refused"']);
  expect(steps.state).toBe('COMPLETED');
  expect(steps.lines).toEqual(expect.arrayContaining(['0', 'refused']));
});

/** A marker file in the test user's own home directory (shared by every host), removed afterwards. */
async function withHome(body: (home: string) => Promise<void>) {
  const marker = join(USER.home, '.profile-marker');
  writeFileSync(marker, 'mine\n');
  chownSync(marker, USER.uid, USER.gid);
  try {
    await body(USER.home);
  } finally {
    rmSync(marker, { force: true });
  }
}

test('the home directory is mounted by default; --no-container-mount-home (or PYXIS_CONTAINER_MOUNT_HOME=0) leaves it out', async () => {
  const dir = workDir('mount-home');
  await withHome(async (home) => {
    const look = ['sh', '-c', `cat ${home}/.profile-marker 2>/dev/null || echo absent`];
    expect(await srun(dir, look)).toMatchObject({ code: 0, stdout: 'mine\n', stderr: '' });
    expect(await srun(dir, ['--container-mount-home', ...look])).toMatchObject({ code: 0, stdout: 'mine\n', stderr: '' });
    expect(await srun(dir, ['--no-container-mount-home', ...look])).toMatchObject({ code: 0, stdout: 'absent\n', stderr: '' });
    expect(await srun(dir, look, ['PYXIS_CONTAINER_MOUNT_HOME=0'])).toMatchObject({ code: 0, stdout: 'absent\n', stderr: '' });
    // the job's working directory is still there without the home
    expect(await srun(dir, ['--no-container-mount-home', 'sh', '-c', 'pwd'])).toMatchObject({ code: 0, stdout: `${dir}\n` });
  });
});
