// The resident node agent (`strata node agent`, src/runtime/agent) with the real Slurm front-ends
// (dist/prolog/slurm, dist/epilog/slurm) on real layer mounts and overlays: a job served by the
// agent ends up exactly as one run by its own Node process; a dead, absent or outdated agent
// costs nothing but the fallback; only root may talk to it. Root, under the mount lock.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importThreeLayerImage } from '../helpers/images.js';
import { expectNodeStateUnchanged, layerMountsOf, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, REPO, type Site } from '../helpers/site.js';

let site: Site;
let before: NodeState;
let agent: { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } | undefined;

const socket = () => join(site.runtime, 'agent/sock');
const jobDir = (job: string) => join(site.runtime, 'jobs', job);
const slurmEnv = (job: string, extra: Record<string, string> = {}) => ({
  SLURM_JOB_ID: job, SLURM_JOB_UID: '1000', SLURM_JOB_GID: '1000', SLURMD_NODENAME: 'n1', STRATA_CONFIG: site.configPath, ...extra,
});

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a front-end as slurmd does (no PATH, Slurm's variables). */
function front(phase: 'prolog' | 'epilog', env: Record<string, string>, dist = join(REPO, 'dist')): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(join(dist, phase, 'slurm'), [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const logLines = () => (existsSync(site.logFile) ? readFileSync(site.logFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line)) : []);
/** The result lines logged for a job, by whom (agent or its own process). */
const results = (job: string) => logLines().filter((line) => line.job === job && line.result).map((line) => ({ phase: line.phase, result: line.result, via: line.via ?? 'process' }));

async function waitFor(what: string, check: () => boolean, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function startAgent(dist = join(REPO, 'dist'), env: NodeJS.ProcessEnv = { STRATA_CONFIG: site.configPath }) {
  const child = spawn(process.execPath, [join(dist, 'bin/strata.js'), 'node', 'agent'], { env, stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  agent = { child, exited };
  await waitFor('the agent', () => logLines().some((line) => line.message === 'agent listening' && line.pid === child.pid));
  return agent;
}

async function stopAgent() {
  if (!agent) return;
  if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGTERM');
  await agent.exited;
  agent = undefined;
}

/** What a job left on the node: its files, its mounts (relative), its journal without times. */
function jobSnapshot(job: string) {
  const dir = jobDir(job);
  if (!existsSync(dir)) return { exists: false };
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((line) => line.split(' ')).filter((fields) => fields[4]?.startsWith(`${dir}/`)).map((fields) => `${fields[4].slice(dir.length)} ${fields[fields.indexOf('-') + 1]}`).sort();
  const journal = existsSync(join(dir, 'journal')) ? readFileSync(join(dir, 'journal'), 'utf8').replace(/"at":"[^"]*"/g, '"at":"T"') : undefined;
  const inside = spawnSync('/usr/sbin/chroot', [join(dir, 'rootfs'), '/bin/sh', '-c', 'ls /data; ls /opq; cat /etc/top-marker'], { encoding: 'utf8' }).stdout;
  const error = existsSync(join(dir, 'error')) ? readFileSync(join(dir, 'error'), 'utf8') : undefined;
  return { exists: true, files: readdirSync(dir).sort(), mounts, journal, inside, error, entry: existsSync(join(dir, 'entry.json')) ? JSON.parse(readFileSync(join(dir, 'entry.json'), 'utf8')) : undefined };
}

/** A job's prolog and epilog through the front-ends, with what each left. */
async function lifecycle(job: string, extra: Record<string, string>) {
  const prolog = await front('prolog', slurmEnv(job, extra));
  const afterProlog = jobSnapshot(job);
  const layerMounts = layerMountsOf(site.runtime).length;
  const epilog = await front('epilog', slurmEnv(job));
  return { prolog, afterProlog, layerMounts, epilog, afterEpilog: jobSnapshot(job) };
}

beforeAll(async () => {
  before = nodeState();
  site = makeSite('agent');
  await importThreeLayerImage(site);
}, 120_000);

afterEach(async () => {
  await stopAgent();
  for (const job of existsSync(join(site.runtime, 'jobs')) ? readdirSync(join(site.runtime, 'jobs')) : []) await front('epilog', slurmEnv(job, { STRATA_AGENT: 'off' }));
  expectNodeStateUnchanged(before);
});

afterAll(() => site.remove());

test('a job through the agent ends up exactly as through its own Node process: ready, user error, node fault', async () => {
  const badStore = join(site.root, 'bad.yaml');
  writeFileSync(badStore, readFileSync(site.configPath, 'utf8').replace(/path: .*/, `path: ${join(site.root, 'empty-store')}`));
  const cases = { ready: { SPANK_STRATA_IMAGE: 'three:1' }, userError: { SPANK_STRATA_IMAGE: 'nosuch:1' }, nodeFault: { SPANK_STRATA_IMAGE: 'three:1', STRATA_CONFIG: badStore } };
  const direct: Record<string, unknown> = {};
  for (const [name, extra] of Object.entries(cases)) direct[name] = await lifecycle(`d-${name}`, extra);
  await startAgent();
  for (const [name, extra] of Object.entries(cases)) {
    const served = await lifecycle(`a-${name}`, extra);
    const renamed = JSON.parse(JSON.stringify(direct[name]).replaceAll(`d-${name}`, `a-${name}`));
    expect(served).toEqual(renamed);
  }
  expect((direct.ready as { afterProlog: { inside: string } }).afterProlog.inside).toBe('keep.txt\nnew\ntop\n');
  expect((direct.nodeFault as { prolog: Ran }).prolog).toMatchObject({ code: 1, stderr: expect.stringMatching(/^strata: prolog: job d-nodeFault: image store .* is not reachable/) });
  expect((direct.userError as { afterProlog: { error: string } }).afterProlog.error).toMatch(/nosuch:1/);
  for (const name of Object.keys(cases)) {
    expect(results(`d-${name}`).every((line) => line.via === 'process')).toBe(true);
    expect(results(`a-${name}`).map((line) => line.via)).toEqual(results(`d-${name}`).map(() => 'agent'));
    expect(results(`a-${name}`).length).toBeGreaterThan(0);
  }
}, 120_000);

test('8+ concurrent jobs through the agent: all ready, one mount per layer, nothing left', async () => {
  await startAgent();
  const jobs = Array.from({ length: 10 }, (_, i) => `c${i}`);
  const prologs = await Promise.all(jobs.map((job) => front('prolog', slurmEnv(job, { SPANK_STRATA_IMAGE: 'three:1' }))));
  expect(prologs).toEqual(jobs.map(() => ({ code: 0, stdout: '', stderr: '' })));
  for (const job of jobs) expect(jobSnapshot(job)).toMatchObject({ inside: 'keep.txt\nnew\ntop\n', entry: { jobId: job } });
  expect(layerMountsOf(site.runtime)).toHaveLength(3);
  const epilogs = await Promise.all(jobs.map((job) => front('epilog', slurmEnv(job))));
  expect(epilogs.map((ran) => ran.code)).toEqual(jobs.map(() => 0));
  for (const job of jobs) expect(results(job)).toEqual([{ phase: 'prolog', result: 'ready', via: 'agent' }, { phase: 'epilog', result: 'ok', via: 'agent' }]);
  expect(layerMountsOf(site.runtime)).toHaveLength(0);
  expect(readdirSync(join(site.runtime, 'jobs'))).toEqual([]);
  expect(agent!.child.exitCode).toBeNull();
}, 120_000);

test('the agent killed (SIGKILL) in the middle of a prolog: the front-end runs the prolog itself, which undoes the half-done one', async () => {
  const { child, exited } = await startAgent();
  // The agent SIGKILLs itself right after carrying out step 4 (some layers mounted, no rootfs yet).
  const prolog = await front('prolog', slurmEnv('k1', { SPANK_STRATA_IMAGE: 'three:1', STRATA_AGENT_FAULT_KILL: '4:after' }));
  expect(await exited).toEqual({ code: null, signal: 'SIGKILL' });
  expect(child.pid).toBeDefined();
  expect(prolog).toEqual({ code: 0, stdout: '', stderr: '' });
  expect(jobSnapshot('k1')).toMatchObject({ inside: 'keep.txt\nnew\ntop\n', entry: { jobId: 'k1' } });
  expect(results('k1')).toEqual([{ phase: 'prolog', result: 'ready', via: 'process' }]);
  // No agent now (its socket is left, nobody listens): the epilog runs directly.
  expect(existsSync(socket())).toBe(true);
  expect((await front('epilog', slurmEnv('k1'))).code).toBe(0);
  expect(jobSnapshot('k1')).toEqual({ exists: false });
  expect(layerMountsOf(site.runtime)).toHaveLength(0);
}, 120_000);

test('only root may talk to the agent: others cannot reach the socket, and a non-root peer is refused by its credentials', async () => {
  await startAgent();
  // Sends a request (SEND=1) or only waits for what the agent says; prints the reply or the error.
  const client = `const s = require('net').connect(${JSON.stringify(socket())}); let r = ''; s.on('data', (d) => (r += d)); s.on('error', (e) => { console.log(e.code); });
    s.on('connect', () => s.end(process.env.SEND ? 'strata-agent/1 epilog\\nSLURM_JOB_ID=1\\0STRATA_CONFIG=${site.configPath}\\0' : undefined)); s.on('close', () => r && console.log(JSON.stringify(r)));`;
  const as = (extra: string[]) => spawnSync('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...extra, process.execPath, '-e', client], { encoding: 'utf8' });
  expect(as([]).stdout.trim()).toBe('EACCES');
  // With CAP_DAC_OVERRIDE the socket's 0700 directory is no obstacle: SO_PEERCRED still says uid 65534.
  expect(as(['--inh-caps=+dac_override', '--ambient-caps=+dac_override']).stdout.trim()).toBe('"refused not-root\\n"');
  // Root gets its answer.
  expect(spawnSync(process.execPath, ['-e', client], { encoding: 'utf8', env: { SEND: '1' } }).stdout.trim()).toBe('"status 0 0 0\\n"');
});

test('an upgraded strata or a changed configuration: the agent makes way, the front-ends run Node meanwhile', async () => {
  // A copy of the installation, so that the test can upgrade it.
  const lib = join(site.root, 'lib');
  cpSync(join(REPO, 'dist'), join(lib, 'dist'), { recursive: true });
  copyFileSync(join(REPO, 'package.json'), join(lib, 'package.json'));
  const dist = join(lib, 'dist');
  let { exited } = await startAgent(dist);
  // An upgrade replaces files by rename.
  copyFileSync(join(dist, 'prolog/slurm.js'), join(dist, 'prolog/slurm.js.new'));
  renameSync(join(dist, 'prolog/slurm.js.new'), join(dist, 'prolog/slurm.js'));
  expect(await exited).toEqual({ code: 0, signal: null });
  expect(existsSync(socket())).toBe(false);
  expect((await front('prolog', slurmEnv('u1', { SPANK_STRATA_IMAGE: 'three:1' }), dist)).code).toBe(0);
  expect(results('u1')).toEqual([{ phase: 'prolog', result: 'ready', via: 'process' }]);
  ({ exited } = await startAgent(dist));
  expect((await front('epilog', slurmEnv('u1'), dist)).code).toBe(0);
  expect(results('u1').at(-1)).toEqual({ phase: 'epilog', result: 'ok', via: 'agent' });
  writeFileSync(site.configPath, `${readFileSync(site.configPath, 'utf8')}# changed\n`);
  expect(await exited).toEqual({ code: 0, signal: null });
  expect(logLines().filter((line) => line.message === 'agent making way' && line.reason.startsWith('changed')).map((line) => line.reason)).toEqual([`changed: ${join(dist, 'prolog/slurm.js')}`, `changed: ${site.configPath}`]);
}, 120_000);
