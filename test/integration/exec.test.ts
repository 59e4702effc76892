// `strata exec` as a real unprivileged user (nobody, via setpriv) inside a rootfs a real prolog
// prepared: what the user sees and may do, whose job they may enter, and exit statuses.

import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importSmallImage } from '../helpers/images.js';
import { jobsOn, strataExecAs } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { STRATA, makeSite, type RunOutput, type Site } from '../helpers/site.js';

const NOBODY = 65534;
let site: Site;
let before: NodeState;
let workDir: string;

/** `strata exec ARGS` as nobody, from `cwd`, with a caller environment of its own. */
const execAsNobody = (args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunOutput> =>
  strataExecAs(NOBODY, args, { cwd: options.cwd, env: { PATH: '/caller/bin:/usr/bin:/bin', STRATA_CONFIG: site.configPath, CALLER_ONLY: 'kept', ...options.env } });

beforeAll(async () => {
  before = nodeState();
  site = makeSite('exec');
  // nobody must reach the config and the runtime dir, as on a real node (/etc, /run).
  chmodSync(site.root, 0o755);
  await importSmallImage(site, 'exec:1', { 'etc/motd': 'inside the image\n' });
  workDir = join(site.root, 'work');
  mkdirSync(workDir);
  writeFileSync(join(workDir, 'input.txt'), 'from the job directory\n');
  chmodSync(workDir, 0o777);
  const prolog = (job: string, uid: number, extra: string[] = []) => jobsOn(() => site, { uid }).prolog(job, 'exec:1', extra);
  expect((await prolog('501.pbs', NOBODY, ['--job-workdir', workDir])).code).toBe(0);
  expect((await prolog('502', 1000)).code).toBe(0);
  // A user-caused set-up failure, recorded by the prolog.
  expect((await prolog('503', NOBODY, ['--mounts', '/does/not/exist:/data'])).code).toBe(0);
}, 120_000);

afterAll(async () => {
  for (const job of ['501.pbs', '502', '503']) expect((await jobsOn(() => site).epilog(job)).code).toBe(0);
  expectNodeStateUnchanged(before);
  site.remove();
});

test('nobody sees the image, with its environment, as themselves, and CMD\'s status passes through', async () => {
  const result = await execAsNobody(['--job', '501.pbs', '--', 'sh', '-c', 'cat /etc/motd; echo "PATH=$PATH"; echo "CALLER_ONLY=$CALLER_ONLY"; id -u; exit 7']);
  expect(result.stderr).toBe('');
  expect(result.stdout).toBe(`inside the image\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCALLER_ONLY=kept\n${NOBODY}\n`);
  expect(result.code).toBe(7);
});

test('the job id comes from PBS_JOBID; the job directory (bound in) stays the working directory', async () => {
  const result = await execAsNobody(['--', 'sh', '-c', 'pwd; cat input.txt'], { cwd: workDir, env: { PBS_JOBID: '501.pbs' } });
  expect(result.stdout).toBe(`${workDir}\nfrom the job directory\n`);
  expect(result.code).toBe(0);
  // A directory the container does not see: the container's working directory instead.
  expect((await execAsNobody(['--', 'sh', '-c', 'pwd'], { cwd: '/usr/share', env: { PBS_JOBID: '501.pbs' } })).stdout).toBe('/\n');
});

test('nobody writes in the job\'s own layer but not into the image\'s files', async () => {
  const result = await execAsNobody(['--job', '501.pbs', '--', 'sh', '-c', 'echo mine > /scratch && cat /scratch; echo x > /etc/motd || echo refused']);
  expect(result.stdout).toBe('mine\nrefused\n');
  expect(result.stderr).toMatch(/Permission denied/);
  // Signals end CMD as a shell reports it.
  expect((await execAsNobody(['--job', '501.pbs', '--', 'sh', '-c', 'kill -TERM $$'])).code).toBe(128 + 15);
});

test('a SIGTERM to strata exec (scancel, qdel) reaches the command, whose status is passed on', async () => {
  const child = spawn('/usr/bin/setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, STRATA, 'exec', '--job', '501.pbs', '--',
    'sh', '-c', 'trap "echo got-term; exit 9" TERM; echo ready; while :; do :; done'], { env: { STRATA_CONFIG: site.configPath }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    if (stdout === 'ready\n') child.kill('SIGTERM');
  });
  const code = await new Promise((resolve) => child.on('close', resolve));
  expect({ code, stdout }).toEqual({ code: 9, stdout: 'ready\ngot-term\n' });
});

test('refusals: another user\'s job, a job without a container, a recorded set-up error, no job, no command', async () => {
  const other = await execAsNobody(['--job', '502', '--', 'cat', '/etc/motd']);
  expect(other.code).toBe(125);
  expect(other.stderr).toBe(`strata: job 502 belongs to uid 1000, not to you (uid ${NOBODY}); give your own job's id with --job\n`);
  expect(other.stdout).toBe('');

  const none = await execAsNobody(['--job', '999', '--', 'true']);
  expect(none.code).toBe(125);
  expect(none.stderr).toMatch(/^strata: job 999 has no container on this node \(no .*entry\.json\); submit the job with an image/);

  const failed = await execAsNobody(['--job', '503', '--', 'true']);
  expect(failed.code).toBe(125);
  expect(failed.stderr).toMatch(/^strata: the container of job 503 could not be set up on this node: mount source \/does\/not\/exist does not exist on this node/);
  expect(failed.stderr.split('\n')).toHaveLength(2);

  expect((await execAsNobody(['--', 'true'])).stderr).toMatch(/^strata: not inside a job \(no SLURM_JOB_ID or PBS_JOBID\); run it from a job, or name the job with --job ID\n$/);
  expect((await execAsNobody(['--job', '501.pbs'])).stderr).toMatch(/^strata: no command to run/);
  // A command the image does not have: unshare's status for "not found".
  expect((await execAsNobody(['--job', '501.pbs', '--', 'no-such-program'])).code).toBe(127);
});
