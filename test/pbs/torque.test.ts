// Torque's mom_priv/prologue, prologue.parallel, epilogue and epilogue.parallel, run exactly as
// pbs_mom runs them: argv (torque src/resmom/prolog.c), pbs_mom's job environment without PATH,
// stdin closed. Exit statuses mean what Torque makes of them: 0 run, 1 abort the job, >1 requeue.
// A 3-node job is three runtime dirs on this machine (one per "host").

import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTorque } from '../helpers/pbs.js';
import { importSmallImage } from '../helpers/images.js';
import { chrootJob, jobDir } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, type Site } from '../helpers/site.js';

let site: Site;
let before: NodeState;
let hosts: { name: string; config: string; runtime: string }[];


/** $1..$8 of the prologue: job id, user, group, job name, resource list, queue, account, script. */
const prologueArgs = (job: string, resources: string) => [job, 'nobody', 'nogroup', 'train', resources, 'batch', 'proj1', `/var/spool/torque/mom_priv/jobs/${job}.SC`];
/** $1..$11 of the epilogue: ..., session id, requested, used resources, queue, account, exit status, script. */
const epilogueArgs = (job: string, resources: string) => [job, 'nobody', 'nogroup', 'train', '4242', resources, 'cput=00:00:01,mem=1kb', 'batch', 'proj1', '0', `/var/spool/torque/mom_priv/jobs/${job}.SC`];
/**
 * What setup_pelog_environment exports (torque src/resmom/prolog.c), plus STRATA_CONFIG from
 * pbs_environment, and no PATH. Not PBS_JOBID: only the job itself gets that; a pelog has $1.
 */
const momEnv = (host: (typeof hosts)[number], job: string, extra: NodeJS.ProcessEnv = {}) => ({
  PBS_NODENUM: '0',
  PBS_MSHOST: 'n1',
  PBS_NUM_NODES: '3',
  PBS_NUM_PPN: '1',
  PBS_NP: '3',
  PBS_RESOURCE_NODES: '3:ppn=1',
  PBS_O_WORKDIR: '/tmp',
  TMPDIR: `/tmp/${job}`,
  STRATA_CONFIG: host.config,
  ...extra,
});
const prologue = (host: (typeof hosts)[number], job: string, resources: string, extra: NodeJS.ProcessEnv = {}) =>
  runTorque(host.name === 'n1' ? 'prolog/torque' : 'prolog/torque-parallel', prologueArgs(job, resources), momEnv(host, job, extra));
const epilogue = (host: (typeof hosts)[number], job: string, resources: string) => runTorque('epilog/torque', epilogueArgs(job, resources), momEnv(host, job));
const IMAGE = 'nodes=3:ppn=1,other=image:tq:1,walltime=01:00:00';

beforeAll(async () => {
  before = nodeState();
  site = makeSite('torque');
  await importSmallImage(site, 'tq:1');
  hosts = ['n1', 'n2', 'n3'].map((name) => {
    const runtime = join(site.root, `run-${name}`);
    const config = join(site.root, `strata-${name}.yaml`);
    writeFileSync(config, `store:\n  path: ${site.store}\nruntime_dir: ${runtime}\nlog:\n  file: ${site.logFile}\n`);
    return { name, config, runtime };
  });
}, 120_000);

afterEach(() => expectNodeStateUnchanged(before));
afterAll(() => site.remove());

test('a 3-node array subjob: prologue on the mother superior, prologue.parallel on the sisters, epilogues clean up', async () => {
  // Torque's array subjob ids have the index in brackets: $1 and the job's $PBS_JOBID alike.
  const started = await Promise.all(hosts.map((host) => prologue(host, '30[2].torque', IMAGE)));
  for (const result of started) expect(result).toMatchObject({ code: 0, stderr: '' });
  for (const host of hosts) {
    expect(JSON.parse(readFileSync(join(jobDir(host, '30[2].torque'), 'entry.json'), 'utf8'))).toMatchObject({ uid: 65534, gid: 65534, image: 'tq:1' });
    const inside = chrootJob(host, '30[2].torque', 'cat /etc/image-name');
    expect(inside.stdout).toBe('tq:1\n');
  }
  const ended = await Promise.all(hosts.map((host) => epilogue(host, '30[2].torque', IMAGE)));
  for (const result of ended) expect(result.code).toBe(0);
  for (const host of hosts) expect(readdirSync(join(host.runtime, 'jobs'))).toEqual([]);
});

test('no image (other= absent or not image:...): exit 0, nothing set up', async () => {
  for (const resources of ['nodes=1,walltime=00:10:00', 'nodes=1,other=fastnet']) {
    expect(await prologue(hosts[0], '31.torque', resources)).toMatchObject({ code: 0, stderr: '' });
  }
  expect(existsSync(join(hosts[0].runtime, 'jobs', '31.torque'))).toBe(false);
  expect((await epilogue(hosts[0], '31.torque', 'nodes=1')).code).toBe(0);
});

test('an unknown image aborts the job (exit 1) with the message in its output; on a sister it is recorded for strata exec', async () => {
  const resources = 'nodes=2,other=image:tq:9';
  const ms = await prologue(hosts[0], '32.torque', resources);
  expect(ms.code).toBe(1);
  expect(ms.stderr).toMatch(/^strata: prolog: job 32\.torque: unknown image "tq:9" \(did you mean "tq:1"\?\); [^\n]*\n$/);
  expect(existsSync(jobDir(hosts[0], '32.torque'))).toBe(false);
  // prologue.parallel: a non-zero status would fail the join as a system error (a requeue).
  const sister = await prologue(hosts[1], '32.torque', resources);
  expect(sister.code).toBe(0);
  expect(readFileSync(join(jobDir(hosts[1], '32.torque'), 'error'), 'utf8')).toMatch(/^strata: unknown image "tq:9"/);
  // In the job, Torque sets PBS_JOBID to the same id the prologue got as $1: strata exec finds the record.
  const exec = await site.run(['exec', '--', '/bin/true'], { env: { PBS_JOBID: '32.torque', STRATA_CONFIG: hosts[1].config } });
  expect(exec.code).toBe(125);
  expect(exec.stderr).toMatch(/^strata: the container of job 32\.torque could not be set up on this node: unknown image "tq:9"/);
  expect((await epilogue(hosts[1], '32.torque', resources)).code).toBe(0);
  expect(existsSync(jobDir(hosts[1], '32.torque'))).toBe(false);
});

test('a node fault (store unreachable) requeues the job (exit 2); an unknown user too', async () => {
  const config = join(site.root, 'strata-broken.yaml');
  writeFileSync(config, `store:\n  path: ${join(site.root, 'no-store')}\nruntime_dir: ${hosts[0].runtime}\n`);
  const fault = await runTorque('prolog/torque', prologueArgs('33.torque', IMAGE), momEnv(hosts[0], '33.torque', { STRATA_CONFIG: config }));
  expect(fault.code).toBe(2);
  expect(fault.stderr).toMatch(/^strata: prolog: job 33\.torque: image store .* is not reachable/);
  const args = prologueArgs('34.torque', IMAGE);
  args[1] = 'no-such-user-strata';
  const unknownUser = await runTorque('prolog/torque', args, momEnv(hosts[0], '34.torque'));
  expect(unknownUser.code).toBe(2);
  expect(unknownUser.stderr).toMatch(/user "no-such-user-strata" or group "nogroup" is unknown on this node/);
  expect((await epilogue(hosts[0], '33.torque', IMAGE)).code).toBe(0);
});

test('a prologue killed after the overlay is mounted, then the epilogue: the node is clean', async () => {
  const killed = await prologue(hosts[0], '35.torque', IMAGE, { STRATA_FAULT_KILL: '3:after' });
  expect(killed.signal).toBe('SIGKILL');
  expect(existsSync(join(jobDir(hosts[0], '35.torque'), 'journal'))).toBe(true);
  expect((await epilogue(hosts[0], '35.torque', IMAGE)).code).toBe(0);
  expect(existsSync(jobDir(hosts[0], '35.torque'))).toBe(false);
});
