// The pure parts of the PBS/Torque entry points and of `strata exec`: what each scheduler hands
// over, the environment and directory a command gets inside, and the user-namespace diagnosis.

import { entryArgv, entryEnvironment, entryWorkdir } from '../../src/runtime/job/enter.js';
import { userNamespaceSwitchedOff } from '../../src/host/userns.js';
import { pbsHookJob } from '../../src/scheduler/pbs-env.js';
import { parseResourceList, torquePrologArgs, torquePrologue } from '../../src/scheduler/torque-args.js';
import { qmgrCommands } from '../../src/cli/commands/install-pbs.js';

test('the PBS hook\'s environment becomes prolog arguments', () => {
  expect(pbsHookJob({ PBS_JOBID: '7.pbs01', STRATA_JOB_UID: '1000', STRATA_JOB_GID: '100', STRATA_IMAGE: 'a:1', STRATA_IMAGE_DIGEST: 'sha256:x', STRATA_READONLY: '1', STRATA_JOB_WORKDIR: '/home/u/run' })).toMatchObject({
    job: '7.pbs01', uid: 1000, gid: 100, image: 'a:1', imageDigest: 'sha256:x', writable: false, jobWorkdir: '/home/u/run',
  });
  const bare = pbsHookJob({ PBS_JOBID: '8' });
  expect(bare.uid).toBeNaN();
  expect(bare.writable).toBe(true);
  expect(bare.mountHome).toBeUndefined(); // the site's container.mount_home
  expect(pbsHookJob({ PBS_JOBID: '9', STRATA_MOUNT_HOME: '0' }).mountHome).toBe(false); // -v STRATA_CONTAINER_MOUNT_HOME=0
});

test('Torque: the image comes from other=image:REF in $5, else from pbs_mom\'s environment', () => {
  const argv = ['9.tq', 'alice', 'users', 'job', 'nodes=2:ppn=4,other=image:pytorch:24.05,walltime=1:00:00', 'batch', 'acct', '/x.SC'];
  const parsed = torquePrologue(argv, { PBS_O_WORKDIR: '/home/alice' });
  expect(parsed).toMatchObject({ job: '9.tq', user: 'alice', group: 'users', image: 'pytorch:24.05', jobWorkdir: '/home/alice' });
  expect(parsed.resources.get('nodes')).toBe('2:ppn=4');
  expect(torquePrologArgs(parsed, { uid: 5, gid: 6 })).toMatchObject({ job: '9.tq', uid: 5, gid: 6, image: 'pytorch:24.05' });
  expect(torquePrologue(['1', 'u', 'g', 'n', 'other=scratch'], { STRATA_CONTAINER_IMAGE: 'b:2' }).image).toBe('b:2');
  expect(torquePrologue(['1', 'u', 'g', 'n', 'nodes=1'], {}).image).toBeUndefined();
  expect([...parseResourceList('a=1,,b=x=y,junk').entries()]).toEqual([['a', '1'], ['b', 'x=y']]);
});

test('inside: the image\'s variables win, except the scheduler\'s; the caller\'s others stay', () => {
  const env = entryEnvironment({ PATH: '/host/bin', HOME: '/home/u', PBS_JOBID: '1.pbs', SLURM_JOB_ID: '5', GONE: undefined }, ['PATH=/img/bin', 'PBS_JOBID=bogus', 'SLURM_JOB_ID=6', 'LANG=C.UTF-8', 'broken', '=x']);
  expect(env).toEqual({ PATH: '/img/bin', HOME: '/home/u', PBS_JOBID: '1.pbs', SLURM_JOB_ID: '5', LANG: 'C.UTF-8' });
});

test('inside: PMI/PMIx stay the job\'s, STRATA_CONTAINER_ENV names keep the caller\'s value, the caller\'s locale goes unless listed', () => {
  const caller = { SHARED: 'host', OTHER: 'host', PMIX_RANK: '3', PMI_FD: '7', LANG: 'xx_XX.UTF-8', LC_ALL: 'xx_XX.UTF-8' };
  const image = ['SHARED=image', 'OTHER=image', 'PMIX_RANK=0', 'PMI_FD=1', 'ONLY=image'];
  expect(entryEnvironment(caller, image)).toEqual({ SHARED: 'image', OTHER: 'image', PMIX_RANK: '3', PMI_FD: '7', ONLY: 'image' });
  expect(entryEnvironment({ ...caller, STRATA_CONTAINER_ENV: 'LANG,SHARED,MISSING' }, [...image, 'MISSING=image'])).toEqual({
    SHARED: 'host', OTHER: 'image', PMIX_RANK: '3', PMI_FD: '7', LANG: 'xx_XX.UTF-8', ONLY: 'image', MISSING: 'image', STRATA_CONTAINER_ENV: 'LANG,SHARED,MISSING',
  });
});

test('inside: the devices\' search paths follow whichever value won, a kept one included, each once', () => {
  const image = ['PATH=/img/bin:/drv/bin', 'LD_LIBRARY_PATH=/img/lib:/drv/lib'];
  const paths = ['PATH=/drv/bin', 'LD_LIBRARY_PATH=/drv/lib'];
  expect(entryEnvironment({ LD_LIBRARY_PATH: '/home/u/lib' }, image, paths)).toEqual({ PATH: '/img/bin:/drv/bin', LD_LIBRARY_PATH: '/img/lib:/drv/lib' });
  expect(entryEnvironment({ LD_LIBRARY_PATH: '/home/u/lib', PATH: '/host/bin', STRATA_CONTAINER_ENV: 'LD_LIBRARY_PATH,PATH' }, image, paths)).toEqual({
    PATH: '/host/bin:/drv/bin', LD_LIBRARY_PATH: '/home/u/lib:/drv/lib', STRATA_CONTAINER_ENV: 'LD_LIBRARY_PATH,PATH',
  });
});

test('working directory: --workdir, else the caller\'s if the container sees it, else the entry\'s', () => {
  const entry = { workdir: '/workspace' };
  expect(entryWorkdir({ explicit: '/x', cwd: '/home/u', cwdInContainer: true, entry })).toBe('/x');
  expect(entryWorkdir({ cwd: '/home/u', cwdInContainer: true, entry })).toBe('/home/u');
  expect(entryWorkdir({ cwd: '/usr/share', cwdInContainer: false, entry })).toBe('/workspace');
  expect(entryArgv('/run/strata/jobs/1/rootfs', '/w', ['python', '-V'])).toEqual([
    '/usr/bin/setpriv', '--no-new-privs', '/usr/bin/unshare', '--user', '--map-current-user', '--mount', '--root=/run/strata/jobs/1/rootfs', '--wd=/w', '--', 'python', '-V',
  ]);
});

test('user namespaces switched off: the message names the switch and how to flip it', () => {
  const reader = (values: Record<string, string>) => (name: string) => values[name];
  expect(userNamespaceSwitchedOff(reader({ 'user.max_user_namespaces': '15000' }))).toBeUndefined();
  expect(userNamespaceSwitchedOff(reader({ 'user.max_user_namespaces': '0' }))).toMatch(/user\.max_user_namespaces = 0\); ask your admin to enable them: sysctl -w user\.max_user_namespaces=15000$/);
  expect(userNamespaceSwitchedOff(reader({ 'user.max_user_namespaces': '100', 'kernel.unprivileged_userns_clone': '0' }))).toMatch(/sysctl -w kernel\.unprivileged_userns_clone=1$/);
  expect(userNamespaceSwitchedOff(reader({ 'kernel.apparmor_restrict_unprivileged_userns': '1' }))).toMatch(/AppArmor/);
});

test('install-pbs: the resource, both hooks from one file, the MoM events and fail_action', () => {
  const commands = qmgrCommands('/usr/local/lib/strata');
  // flag=m: without it a real OpenPBS never shows the resource to MoM hooks.
  expect(commands[0]).toBe("qmgr -c 'create resource container_image type=string, flag=m'");
  expect(commands).toContain("qmgr -c 'set hook strata_queuejob event = queuejob'");
  expect(commands).toContain(`qmgr -c 'set hook strata_mom event = "execjob_begin,execjob_launch,execjob_end,exechost_startup,exechost_periodic"'`);
  expect(commands).toContain("qmgr -c 'set hook strata_mom fail_action = offline_vnodes'");
  expect(commands.filter((c) => c.includes('application/x-python default /usr/local/lib/strata/pbs/strata_hook.py'))).toHaveLength(2);
});
