// strata's PBS hook (etc/pbs/strata_hook.py) as the PBS server and MoMs run it, through the
// stand-in `pbs` module and daemon (test/pbs/standin: hook code run as 'builtins', only flag=m
// custom resources at MoM events, pbs_env Variable_List, no exec_host at the MoM, the daemon's
// PATH and working directory): qsub-time pinning, a 3-MoM job (three runtime dirs on this
// machine: one per "host"), user errors at job start and where the user sees them, a node fault,
// a killed prolog, and reconciliation. Real mounts; every test leaves the node as it found it.

import { existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOOK, pbsDaemon, runHook, type PbsDaemon } from '../helpers/pbs.js';
import { importSmallImage } from '../helpers/images.js';
import { chrootJob, jobDir } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, type Site } from '../helpers/site.js';

let site: Site;
let before: NodeState;
let server: PbsDaemon;
let moms: PbsDaemon[];
let digest: string;
let momHome: string;
const momConfigs = new Map<string, string>();
const momConfig = (mom: PbsDaemon) => momConfigs.get(mom.name)!;

interface JobSpec {
  id: string;
  euser: string;
  egroup: string;
  exec_host: string;
  in_ms_mom: boolean;
  Resource_List: Record<string, string>;
  Variable_List: Record<string, string>;
}
const job = (id: string, variables: Record<string, string>, ms = true): JobSpec => ({
  id,
  euser: 'nobody',
  egroup: 'nogroup',
  exec_host: 'n1/0+n2/0+n3/0',
  in_ms_mom: ms,
  Resource_List: { select: '3:ncpus=1' },
  Variable_List: { PBS_O_WORKDIR: '/tmp', ...variables },
});
const begin = (mom: PbsDaemon, spec: JobSpec, env: NodeJS.ProcessEnv = {}) => runHook(mom, { type: 'execjob_begin', hook_name: 'strata_mom', job: spec }, env);
const end = (mom: PbsDaemon, spec: JobSpec) => runHook(mom, { type: 'execjob_end', hook_name: 'strata_mom', job: spec });
/** The job script, started by the MoM after execjob_launch as a batch job's login shell: `-sh` reading it on stdin. */
const SCRIPT = 'echo "job script ran as $(id -un)"\n';
const launch = (mom: PbsDaemon, spec: JobSpec) => {
  const script = join(site.root, `${spec.id}.SC`);
  writeFileSync(script, SCRIPT, { mode: 0o644 });
  return runHook(mom, { type: 'execjob_launch', hook_name: 'strata_mom', job: spec, launch: { progname: '/bin/sh', argv: ['-sh'], env: { PBS_JOBID: spec.id, HOME: '/', PATH: '/usr/bin:/bin' }, script } });
};
/** What the queuejob hook leaves in Variable_List for `qsub -l container_image=pbsimg:1`. */
const pinned = () => ({ STRATA_IMAGE: 'pbsimg:1', STRATA_IMAGE_DIGEST: digest });
const queue = (spec: Record<string, unknown>, requestor?: string) => runHook(server, { type: 'queuejob', hook_name: 'strata_queuejob', requestor, job: spec });

beforeAll(async () => {
  before = nodeState();
  site = makeSite('pbs');
  await importSmallImage(site, 'pbsimg:1');
  digest = (await site.run(['resolve', 'pbsimg:1'])).stdout.trim();
  server = pbsDaemon(site.root, 'server', site.configPath, site.runtime);
  // Three MoMs: one store, a runtime dir each (what three hosts would have).
  moms = ['n1', 'n2', 'n3'].map((name) => {
    const runtime = join(site.root, `run-${name}`);
    const config = join(site.root, `strata-${name}.yaml`);
    writeFileSync(config, `store:\n  path: ${site.store}\nruntime_dir: ${runtime}\nlog:\n  file: ${site.logFile}\n`);
    momConfigs.set(name, config);
    return pbsDaemon(site.root, name, config, runtime);
  });
  momHome = join(site.root, 'pbs_home');
  mkdirSync(join(momHome, 'mom_priv', 'jobs'), { recursive: true });
}, 120_000);

afterEach(() => expectNodeStateUnchanged(before));
afterAll(() => site.remove());

test('queuejob: the image is checked and pinned at qsub time; an unknown one is rejected with strata\'s message', async () => {
  const byResource = await queue({ id: '1.pbs', Resource_List: { container_image: 'pbsimg:1' }, Variable_List: {} });
  expect(byResource.outcome).toBe('accept');
  expect(byResource.job!.Variable_List).toEqual({ STRATA_IMAGE: 'pbsimg:1', STRATA_IMAGE_DIGEST: digest });

  const byVariable = await queue({ id: '2.pbs', Variable_List: { STRATA_CONTAINER_IMAGE: 'pbsimg:1' } });
  expect(byVariable.job!.Variable_List.STRATA_IMAGE_DIGEST).toBe(digest);

  const unknown = await queue({ id: '3.pbs', Resource_List: { container_image: 'pbsimg:2' }, Variable_List: {} });
  expect(unknown.outcome).toBe('reject');
  expect(unknown.message).toMatch(/^strata: unknown image "pbsimg:2" \(did you mean "pbsimg:1"\?\)/);

  const both = await queue({ id: '4.pbs', Resource_List: { container_image: 'pbsimg:1' }, Variable_List: { STRATA_CONTAINER_IMAGE: 'other:1' } });
  expect(both.outcome).toBe('reject');
  expect(both.message).toBe('strata: -l container_image=pbsimg:1 and -v STRATA_CONTAINER_IMAGE=other:1 name different images; give the image once');

  const plain = await queue({ id: '5.pbs', Variable_List: { HOME: '/root' } });
  expect(plain).toMatchObject({ outcome: 'accept', job: { Variable_List: { HOME: '/root' } } });

  // The MoMs believe STRATA_IMAGE/_DIGEST were pinned here: a job cannot bring its own.
  const forged = await queue({ id: '7.pbs', Variable_List: { STRATA_IMAGE_DIGEST: digest } });
  expect(forged).toMatchObject({ outcome: 'reject', message: 'strata: STRATA_IMAGE_DIGEST is set by strata at qsub, not by jobs; ask for an image with -l container_image=NAME:TAG' });

  // strata missing on the server host: the qsub is refused with a message for the admin.
  const noStrata = pbsDaemon(site.root, 'server2', site.configPath, site.runtime);
  writeFileSync(noStrata.hookConfig, JSON.stringify({ ...JSON.parse(readFileSync(noStrata.hookConfig, 'utf8')), node: '/nonexistent/node' }));
  const unchecked = await runHook(noStrata, { type: 'queuejob', hook_name: 'strata_queuejob', job: { id: '6.pbs', Resource_List: { container_image: 'pbsimg:1' }, Variable_List: {} } });
  expect(unchecked.outcome).toBe('reject');
  expect(unchecked.message).toMatch(/^strata: cannot run \/nonexistent\/node: .*; the image could not be checked, ask your admin$/);
});

test("the stand-in runs a hook as OpenPBS does: the first release's `__name__ == '__main__'` guard is never true, so that hook let every qsub through unchecked", async () => {
  // The shipped hook with the first release's guard, as a real server ran it: the hook body never ran.
  const shipped = readFileSync(HOOK, 'utf8');
  expect(shipped).toContain('if __name__ in ("builtins", "__builtin__"):');
  const old = join(site.root, 'old_hook.py');
  writeFileSync(old, shipped.replace('if __name__ in ("builtins", "__builtin__"):', 'if __name__ == "__main__":'));
  const job = { id: '30.pbs', Resource_List: { container_image: 'pbsimg:2' }, Variable_List: {} };
  const unchecked = await runHook(server, { type: 'queuejob', hook_name: 'strata_queuejob', job }, {}, old);
  expect(unchecked).toMatchObject({ outcome: 'accept', job: { Variable_List: {} } });
  // The same event through the shipped hook: checked, and refused.
  expect((await queue(job)).outcome).toBe('reject');
});

test("queuejob: ~/NAME:TAG is the submitting user's own namespace, pinned as ~USER/NAME:TAG", async () => {
  expect((await site.run(['tag', 'pbsimg:1', '~nobody/mine:1'])).code).toBe(0);
  const own = await queue({ id: '11.pbs', Resource_List: { container_image: '~/mine:1' }, Variable_List: {} }, 'nobody');
  expect(own).toMatchObject({ outcome: 'accept', job: { Variable_List: { STRATA_IMAGE: '~nobody/mine:1', STRATA_IMAGE_DIGEST: digest } } });
  // Root's ~/ is root's: it has no mine:1.
  const roots = await queue({ id: '12.pbs', Resource_List: { container_image: '~/mine:1' }, Variable_List: {} }, 'root');
  expect(roots.outcome).toBe('reject');
  expect(roots.message).toMatch(/^strata: unknown image "~root\/mine:1"/);
});

test('qsub -l container_image, then a 3-host job: the MoMs find the pinned image without the resource, set up, run the script, clean up', async () => {
  // What PBS does with the job: queuejob at the server, then the job's attributes go to the MoMs.
  // container_image has no flag m (RESOURCEDEF_WITHOUT_M), so no MoM hook sees it.
  const queued = await queue({ id: '10.pbs', Resource_List: { container_image: 'pbsimg:1', select: '3:ncpus=1' }, Variable_List: { PBS_O_WORKDIR: '/tmp' } });
  expect(queued.outcome).toBe('accept');
  const spec = (ms: boolean) => ({ ...job('10.pbs', {}, ms), Resource_List: { container_image: 'pbsimg:1', select: '3:ncpus=1' }, Variable_List: queued.job!.Variable_List });
  const begun = await Promise.all(moms.map((mom, index) => begin(mom, spec(index === 0))));
  for (const result of begun) expect(result).toMatchObject({ outcome: 'accept', job: { deleted: false } });
  for (const mom of moms) {
    const entry = JSON.parse(readFileSync(join(jobDir(mom, '10.pbs'), 'entry.json'), 'utf8'));
    expect(entry).toMatchObject({ jobId: '10.pbs', uid: 65534, gid: 65534, manifestDigest: digest });
    expect(chrootJob(mom, '10.pbs', 'cat /etc/image-name').stdout).toBe('pbsimg:1\n');
  }
  expect(begun[1].log.join('\n')).toMatch(/^10\.pbs: strata: container pbsimg:1 ready on n2 \(sister; job vnodes n2\)$/m);
  expect(await launch(moms[0], spec(true))).toMatchObject({ outcome: 'accept', launched: { status: 0, stdout: 'job script ran as nobody\n', stderr: '' } });
  const ended = await Promise.all(moms.map((mom, index) => end(mom, spec(index === 0))));
  for (const result of ended) expect(result.outcome).toBe('accept');
  for (const mom of moms) expect(readdirSync(join(mom.runtime, 'jobs'))).toEqual([]);
});

test('a job without an image costs nothing: accepted, no strata program run, its script runs as submitted', async () => {
  const result = await begin(moms[0], job('11.pbs', {}));
  expect(result).toMatchObject({ outcome: 'accept', log: [] });
  expect(existsSync(jobDir(moms[0], '11.pbs'))).toBe(false);
  expect(await launch(moms[0], job('11.pbs', {}))).toMatchObject({ outcome: 'accept', log: [], launched: { status: 0, stdout: 'job script ran as nobody\n' } });
});

test("an image gone since qsub: the node stays online, and the job fails with strata's message in its error file", async () => {
  const spec = job('12.pbs', { ...pinned(), STRATA_IMAGE_DIGEST: `sha256:${'0'.repeat(64)}` });
  const result = await begin(moms[0], spec);
  // Rejecting execjob_begin would show the user only "Execution server rejected request".
  expect(result).toMatchObject({ outcome: 'accept', job: { deleted: false }, vnodes: { n1: { state: 'free' } } });
  expect(result.log.join('\n')).toMatch(/^12\.pbs: strata: image pbsimg:1 is not in the store .* on n1 \(mother superior; job vnodes n1\); the job will fail with this message$/m);
  const launched = await launch(moms[0], spec);
  expect(launched.outcome).toBe('accept');
  // The job script does not run; its error file (stderr) holds the message; it exits 1.
  expect(launched.launched).toMatchObject({ status: 1, stdout: '' });
  expect(launched.launched!.stderr).toMatch(/^strata: the container of job 12\.pbs could not be set up on n1: image pbsimg:1 is not in the store \(sha256:0{64} is missing\)[^\n]*\n$/);
  expect((await end(moms[0], spec)).outcome).toBe('accept');
  expect(existsSync(jobDir(moms[0], '12.pbs'))).toBe(false);
});

test('a bad mount request on a sister: the node stays online, and strata exec there prints the reason', async () => {
  const spec = job('13.pbs', { ...pinned(), STRATA_CONTAINER_MOUNTS: '/does/not/exist:/data' }, false);
  const result = await begin(moms[1], spec);
  expect(result).toMatchObject({ outcome: 'accept', job: { deleted: false }, vnodes: { n2: { state: 'free' } } });
  const exec = await site.run(['exec', '--job', '13.pbs', '--', '/bin/true'], { env: { STRATA_CONFIG: momConfig(moms[1]) } });
  expect(exec.code).toBe(125);
  expect(exec.stderr).toMatch(/^strata: the container of job 13\.pbs could not be set up on this node: mount source \/does\/not\/exist does not exist on this node/);
  expect((await end(moms[1], spec)).outcome).toBe('accept');
  expect(existsSync(jobDir(moms[1], '13.pbs'))).toBe(false);
});

test('a malformed -v STRATA_CONTAINER_UPPER_SIZE fails the job with the message, not a job without its container', async () => {
  const spec = job('17.pbs', { ...pinned(), STRATA_CONTAINER_UPPER_SIZE: 'lots' });
  expect(await begin(moms[0], spec)).toMatchObject({ outcome: 'accept', vnodes: { n1: { state: 'free' } } });
  const launched = await launch(moms[0], spec);
  expect(launched.launched).toMatchObject({ status: 1, stdout: '' });
  expect(launched.launched!.stderr).toMatch(/^strata: the container of job 17\.pbs could not be set up on n1: invalid --container-upper-size "lots"/);
  expect((await end(moms[0], spec)).outcome).toBe('accept');
  expect(existsSync(jobDir(moms[0], '17.pbs'))).toBe(false);
});

test('a node fault (store unreachable) fails the hook: fail_action offlines the node, the job is not deleted', async () => {
  const config = join(site.root, 'strata-broken.yaml');
  const runtime = join(site.root, 'run-broken');
  writeFileSync(config, `store:\n  path: ${join(site.root, 'no-store')}\nruntime_dir: ${runtime}\n`);
  const broken = pbsDaemon(site.root, 'n9', config, runtime);
  const spec = job('14.pbs', pinned());
  const result = await begin(broken, spec);
  expect(result.outcome).toBe('hook-error');
  expect(result.failure).toMatch(/NodeFault: strata: prolog: job 14\.pbs: image store .* is not reachable/);
  expect(result.job!.deleted).toBe(false);
  expect(result.vnodes.n9.state).toBe('offline');
  expect((await end(broken, spec)).outcome).toBe('accept');
});

test('a teardown that fails in execjob_end (no fail_action there): the hook offlines the host itself', async () => {
  const broken = pbsDaemon(site.root, 'n8', join(site.root, 'missing.yaml'), join(site.root, 'run-n8'));
  const result = await end(broken, job('16.pbs', pinned()));
  expect(result.outcome).toBe('accept');
  expect(result.vnodes.n8.state).toBe('offline');
  expect(result.vnodes.n8.comment).toMatch(/^strata: epilog: job 16\.pbs: configuration file .*missing\.yaml .* does not exist/);
});

test('a prolog killed half-way (overlay mounted), then execjob_end: the node is clean', async () => {
  const spec = job('15.pbs', pinned());
  // The kill is a node-side event (the hook's alarm, an OOM kill): the hook fails.
  const killed = await begin(moms[0], spec, { STRATA_FAULT_KILL: '3:after' });
  expect(killed.outcome).toBe('hook-error');
  expect(killed.vnodes.n1.state).toBe('offline');
  expect(existsSync(join(jobDir(moms[0], '15.pbs'), 'journal'))).toBe(true);
  expect((await end(moms[0], spec)).outcome).toBe('accept');
  expect(existsSync(jobDir(moms[0], '15.pbs'))).toBe(false);
});

test('reconciliation removes containers of jobs the MoM no longer has, and only those', async () => {
  const mom = moms[0];
  for (const id of ['20.pbs', '21.pbs', '22.pbs', '23.pbs']) expect((await begin(mom, job(id, pinned()))).outcome).toBe('accept');
  const hourAgo = new Date(Date.now() - 3600_000);
  for (const id of ['20.pbs', '21.pbs', '22.pbs']) utimesSync(jobDir(mom, id), hourAgo, hourAgo);
  writeFileSync(join(momHome, 'mom_priv', 'jobs', '22.pbs.JB'), '');
  const pbsConf = { PBS_HOME: momHome, PBS_EXEC: '/opt/pbs' };

  // Periodic: 20 is still running (job_list), 22 has its job file, 23 is too young; 21 is stale.
  const periodic = await runHook(mom, { type: 'exechost_periodic', hook_name: 'strata_mom', job_list: { '20.pbs': {} }, pbs_conf: pbsConf });
  expect(periodic.outcome).toBe('accept');
  expect(readdirSync(join(mom.runtime, 'jobs')).sort()).toEqual(['20.pbs', '22.pbs', '23.pbs']);
  expect(periodic.log.join('\n')).toMatch(/removed the container of job 21\.pbs, which this MoM no longer runs/);

  // MoM start-up: no job list; the job files say what the MoM recovered (22).
  const startup = await runHook(mom, { type: 'exechost_startup', hook_name: 'strata_mom', pbs_conf: pbsConf });
  expect(startup).toMatchObject({ outcome: 'accept', vnodes: { n1: { state: 'free' } } });
  expect(readdirSync(join(mom.runtime, 'jobs')).sort()).toEqual(['22.pbs', '23.pbs']);
  for (const id of ['22.pbs', '23.pbs']) expect((await end(mom, job(id, pinned()))).outcome).toBe('accept');
  expect(readdirSync(join(mom.runtime, 'jobs'))).toEqual([]);
});
