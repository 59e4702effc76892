// End to end through real Slurm on the 3-node cluster: what a job finds in its container besides
// the image, on every node: its user's entries (passwd, its group, its supplementary groups) from
// the node's name service, every node of the job by name (the node's /etc/hosts), the node's name,
// its /etc/resolv.conf and /etc/localtime, and a per-job /tmp that is writable under
// --container-readonly. The image carries a glibc `getent`, so lookups go through NSS inside, as
// in a distribution image. Afterwards every node is idle and clean.

import { execFileSync } from 'node:child_process';
import { chownSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxLayer, writeLayout } from '../helpers/oci.js';
import { CLUSTER, DIR, NODES, USER, importImage, on, strata, readOutput, sbatch, useCleanCluster, waitForJob, waitForQuietCluster, workDir } from './cluster.js';

/** getent and the glibc it needs (ldd's absolute paths), copied into the test image. */
const glibcGetent = () => [
  '/usr/bin/getent',
  ...execFileSync('ldd', ['/usr/bin/getent'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /(\/\S+) \(0x/.exec(line)?.[1])
    .filter((path): path is string => Boolean(path)),
];

/** An image whose config sets variables the submit environment also sets (an OCI layout import). */
async function importEnvImage() {
  const layout = join(DIR, 'image-trees', 'envs-oci');
  rmSync(layout, { recursive: true, force: true });
  const Env = ['PATH=/bin:/usr/bin', 'SHARED=image', 'OTHER=image', 'PMI_TEST=image', 'SLURM_TEST=image'];
  writeLayout(layout, [{ ref: 'envs', layers: [{ tar: busyboxLayer(), compression: 'none' }], config: { Env } }]);
  const result = await strata(['import', `oci:${layout}:envs`, '--tag', 'envs:1']);
  if (result.code !== 0) throw new Error(result.stderr);
}

// The image's own passwd and group name the test user and its group differently, and its
// resolv.conf and localtime (another zone) are not the node's: the node's must win.
useCleanCluster(async () => {
  await importImage(
    'env:1',
    {
      'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files\n',
      'etc/passwd': `root:x:0:0:root:/root:/bin/sh\nimpostor:x:${USER.uid}:${USER.gid}::/:/bin/sh\n`,
      'etc/group': `root:x:0:\nimpostors:x:${USER.gid}:\n`,
      'etc/resolv.conf': 'nameserver 192.0.2.53\nsearch image.invalid\n',
      'etc/localtime': readFileSync('/usr/share/zoneinfo/Asia/Tokyo'),
    },
    glibcGetent(),
  );
  await importEnvImage();
});

/** md5sum of a file on a host of the cluster (its own mount namespace). */
const md5On = async (host: string, path: string) => (await on(host, ['sh', '-c', `md5sum < ${path} | cut -d" " -f1`])).stdout.trim();

test('on every node: the user and its groups by name, every node of the job by name, the node name and host files, a writable /tmp under --container-readonly', async () => {
  const dir = workDir('container-env');
  const step = [
    'echo "$(hostname) user $(whoami) $(getent passwd $(id -u))"',
    'echo "$(hostname) group $(getent group $(id -g))"',
    `echo "$(hostname) supplementary $(id -Gn | tr " " "\\n" | grep -x ${USER.extraGroup})"`,
    'echo "$(hostname) resolv.conf $(md5sum < /etc/resolv.conf | cut -d" " -f1)"',
    'echo "$(hostname) localtime $(date +%Z) $(md5sum < /etc/localtime | cut -d" " -f1)"',
    'echo "$(hostname) hosts $(getent hosts n1 n2 n3 | tr -s " " | tr "\\n" ";")"',
    'echo "$(hostname) hostname $(cat /etc/hostname)"',
    'echo "$(hostname) tmp $(echo ok > /tmp/probe && cat /tmp/probe) $(touch /probe 2>/dev/null && echo root-writable || echo root-readonly)"',
  ].join('; ');
  const submitted = await sbatch(dir, ['-N3', '-o', join(dir, 'out.txt'), '--container-image=env:1', '--container-readonly', '--container-batch=host', '--wrap', `srun -N3 sh -c '${step.replace(/'/g, `'\\''`)}'`]);
  expect({ code: submitted.code, stderr: submitted.stderr }).toEqual({ code: 0, stderr: '' });
  const info = await waitForJob(submitted.jobId!);
  const output = readOutput(join(dir, 'out.txt'));
  expect({ state: info.state, output }).toEqual({ state: 'COMPLETED', output: expect.any(String) });
  const passwd = execFileSync('getent', ['passwd', String(USER.uid)], { encoding: 'utf8' }).trim();
  const group = execFileSync('getent', ['group', String(USER.gid)], { encoding: 'utf8' }).trim();
  expect(group).toMatch(new RegExp(`^${USER.name}:`));
  const hosts = execFileSync(join(CLUSTER, 'on.sh'), ['n1', 'getent', 'hosts', 'n1', 'n2', 'n3'], { encoding: 'utf8' });
  expect(hosts.split('\n').filter(Boolean)).toHaveLength(3);
  const expected: string[] = [];
  for (const node of NODES) {
    // The node's own files (each host has its own mount namespace): what the container must show.
    const resolv = await md5On(node, '/etc/resolv.conf');
    const zone = (await on(node, ['date', '+%Z'])).stdout.trim();
    const localtime = await md5On(node, '/etc/localtime');
    expect({ node, localtime }).not.toEqual({ node, localtime: await md5On(node, '/usr/share/zoneinfo/Asia/Tokyo') });
    expected.push(
      `${node} user ${USER.name} ${passwd}`,
      `${node} group ${group}`,
      `${node} supplementary ${USER.extraGroup}`,
      `${node} resolv.conf ${resolv}`,
      `${node} localtime ${zone} ${localtime}`,
      `${node} hosts ${hosts.replace(/ +/g, ' ').replace(/\n/g, ';')}`,
      `${node} hostname ${node}`,
      `${node} tmp ok root-readonly`,
    );
  }
  expect(output.split('\n').filter(Boolean).sort()).toEqual(expected.sort());
});

test('--container-workdir missing in the image is created; read-only, the task fails with strata\'s one line', async () => {
  const dir = workDir('container-workdir');
  const made = await on('head', ['srun', '-N1', '--container-image=env:1', '--container-workdir=/new/deep', 'sh', '-c', 'pwd; stat -c %U .'], { user: true, cwd: dir });
  expect({ code: made.code, stdout: made.stdout, stderr: made.stderr }).toEqual({ code: 0, stdout: `/new/deep\n${USER.name}\n`, stderr: '' });
  await waitForQuietCluster();
  const refused = await on('head', ['srun', '-N1', '--container-image=env:1', '--container-readonly', '--container-workdir=/new/deep', 'pwd'], { user: true, cwd: dir });
  expect(refused.code).not.toBe(0);
  expect(refused.stdout).toBe('');
  const lines = refused.stderr.split('\n').filter((line) => line && !/^srun: (error: )?(n\d+: task \d+: Exited|Terminating|launch\/slurm|.*StepId=.*aborted)/.test(line));
  expect(lines).toEqual([expect.stringMatching(/^strata: n\d: cannot change to the working directory \/new\/deep in the container: Read-only file system \(it does not exist in the image, and the container is read-only\)$/)]);
  expect(refused.stderr).not.toMatch(/task_init\(\) failed|spank/);
});

test('environment precedence as Pyxis: the image wins, except Slurm/PMI variables and the names in STRATA_CONTAINER_ENV; host locales dropped', async () => {
  const dir = workDir('container-env-vars');
  const show = ['FOO', 'SHARED', 'OTHER', 'PMI_TEST', 'SLURM_TEST', 'LANG'].map((name) => `echo ${name}=\${${name}-unset}`).join('; ');
  const submit = ['FOO=bar', 'SHARED=host', 'OTHER=host', 'PMI_TEST=job', 'SLURM_TEST=job', 'LANG=xx_XX.UTF-8'];
  const run = async (extra: string[]) => {
    const result = await on('head', ['env', ...submit, ...extra, 'srun', '-N1', '--container-image=envs:1', 'sh', '-c', show], { user: true, cwd: dir });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    await waitForQuietCluster();
    return result.stdout.split('\n').filter(Boolean);
  };
  // A variable only the submit side has passes through; the image's win; Slurm's and PMI's are the job's.
  expect(await run([])).toEqual(['FOO=bar', 'SHARED=image', 'OTHER=image', 'PMI_TEST=job', 'SLURM_TEST=job', 'LANG=unset']);
  // Listed names take the submit side's value, in any order; a listed locale passes.
  expect(await run(['STRATA_CONTAINER_ENV=LANG,SHARED'])).toEqual(['FOO=bar', 'SHARED=host', 'OTHER=image', 'PMI_TEST=job', 'SLURM_TEST=job', 'LANG=xx_XX.UTF-8']);
});

// Pyxis's tests/env.bats, "--container-env overriding container variable" and "forcing $LANG passthrough".
test('--container-env NAME[,NAME...]: those names take the job\'s value, an unset one keeps the image\'s; PYXIS_CONTAINER_ENV too', async () => {
  const dir = workDir('container-env-option');
  const run = async (env: string[], options: string[]) => {
    const result = await on('head', ['env', ...env, 'srun', '-N1', '--container-image=envs:1', ...options, 'sh', '-c', 'echo "$SHARED $OTHER ${LANG-unset}"'], { user: true, cwd: dir });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    await waitForQuietCluster();
    return result.stdout.trim();
  };
  // referencing a variable the job does not set: the image's value stays
  expect(await run(['OTHER=host'], ['--container-env=SHARED'])).toBe('image image unset');
  expect(await run(['SHARED=host', 'OTHER=host'], [])).toBe('image image unset');
  expect(await run(['SHARED=host', 'OTHER=host'], ['--container-env', 'SHARED'])).toBe('host image unset');
  expect(await run(['SHARED=host', 'OTHER=host'], ['--container-env=OTHER,SHARED'])).toBe('host host unset');
  expect(await run(['SHARED=host', 'LANG=xx_XX.UTF-8'], ['--container-env=LANG'])).toBe('image image xx_XX.UTF-8');
  expect(await run(['SHARED=host', 'PYXIS_CONTAINER_ENV=SHARED'], [])).toBe('host image unset');
  // the option wins over the variable
  expect(await run(['SHARED=host', 'OTHER=host', 'PYXIS_CONTAINER_ENV=SHARED'], ['--container-env=OTHER'])).toBe('image host unset');
  // a malformed list is refused at submit time, with one line
  const refused = await on('head', ['srun', '-N1', '--container-image=envs:1', '--container-env=SHARED,', 'true'], { user: true, cwd: dir });
  expect({ code: refused.code, stderr: refused.stderr.trim() }).toEqual({
    code: 1,
    stderr: 'srun: error: strata: --container-env: "SHARED," is not a list of variable names; use e.g. NAME or NAME1,NAME2 (the values come from your environment)',
  });
});

// Under sbatch --export=NONE, srun inherits it (SLURM_EXPORT_ENV): a script passes its own variables
// with srun --export=ALL, which does not carry the job's options; the list still arrives.
test('sbatch --container-env reaches every step, also under --export=NONE', async () => {
  const dir = workDir('container-env-export-none');
  const script = join(dir, 'job.sh');
  writeFileSync(script, '#!/bin/sh\nexport SHARED=script OTHER=script\nsrun --export=ALL -N2 sh -c \'echo "step $SHARED $OTHER"\'\n', { mode: 0o755 });
  chownSync(script, USER.uid, USER.gid);
  for (const exportMode of ['--export=NONE', '--export=ALL']) {
    const out = join(dir, `out${exportMode.slice(9)}.txt`);
    // the batch script on the host (srun is not in the image), its steps in the image
    const submitted = await sbatch(dir, ['-N2', '-o', out, exportMode, '--container-image=envs:1', '--container-batch=host', '--container-env=SHARED', script]);
    expect({ code: submitted.code, stderr: submitted.stderr }).toEqual({ code: 0, stderr: '' });
    const info = await waitForJob(submitted.jobId!);
    const output = readOutput(out);
    expect({ exportMode, state: info.state, lines: output.split('\n').filter(Boolean).sort() }).toEqual({
      exportMode,
      state: 'COMPLETED',
      // in each step, the script's export wins for SHARED (listed), the image's value for OTHER
      lines: ['step script image', 'step script image'],
    });
    await waitForQuietCluster();
  }
});
