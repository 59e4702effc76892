// Real `strata doctor` on this machine against throw-away sites: a healthy one (with a Slurm
// configuration pointing at this checkout's entry points and plugin) is fit; a missing store, a
// world-writable store, an invalid configuration and a PBS MoM without strata's hooks each give
// their FAIL line and exit 1. The overlay probe leaves mounts and loop devices as they were.
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSite, REPO, type Site } from '../helpers/site.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';

let site: Site;
let before: NodeState;

/** A slurm.conf + plugstack.conf for the site, as install-slurm and the admin would leave them. */
function slurmConf(s: Site, extra = ''): string {
  const conf = join(s.root, 'slurm.conf');
  writeFileSync(join(s.root, 'plugstack.conf'), `required ${REPO}/spank/strata.so strata=${REPO}/dist/bin/strata.js runtime_dir=${s.runtime}\n`);
  writeFileSync(conf, `ClusterName=t\nPrologFlags=Alloc\nProlog=${REPO}/dist/prolog/slurm.js\nEpilog=${REPO}/dist/epilog/slurm.js\nPlugStackConfig=${s.root}/plugstack.conf\n${extra}`);
  return conf;
}

const doctor = (s: Site, env: NodeJS.ProcessEnv = {}, args: string[] = []) =>
  s.run(['doctor', ...args], { env: { SLURM_CONF: slurmConf(s), PBS_CONF_FILE: join(s.root, 'no-pbs.conf'), ...env } });
const line = (stdout: string, name: string) => stdout.split('\n').find((l) => l.slice(6).startsWith(`${name} `)) ?? `(no ${name} line)`;

beforeEach(() => {
  before = nodeState();
  site = makeSite('doctor');
});
afterEach(() => {
  site.remove();
  expectNodeStateUnchanged(before);
});

test('a healthy site is fit: every check has its line, the real overlay probe passes, exit 0', async () => {
  const result = await doctor(site);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  for (const name of ['node', 'config', 'kernel.loop', 'kernel.squashfs', 'kernel.overlay', 'loop.devices', 'store', 'runtime_dir', 'upper', 'slurm.prolog', 'slurm.epilog', 'slurm.prologflags', 'slurm.plugin']) {
    expect(line(result.stdout, name)).not.toMatch(/^FAIL/);
  }
  expect(line(result.stdout, 'kernel.overlay')).toMatch(/^ok +kernel\.overlay +test overlay mount with volatile worked$/);
  expect(line(result.stdout, 'slurm.plugin')).toMatch(/^ok .*strata\.so .*exports slurm_spank_init/);
  expect(result.stdout).toMatch(/this node is fit for jobs/);

  const json = await doctor(site, {}, ['--json']);
  expect(json.code).toBe(0);
  const parsed = JSON.parse(json.stdout) as { fit: boolean; checks: { name: string; status: string }[] };
  expect(parsed.fit).toBe(true);
  expect(parsed.checks.map((c) => c.name)).toContain('store');
});

test('a missing store fails the store check and the node', async () => {
  rmSync(site.store, { recursive: true });
  const result = await doctor(site);
  expect(result.code).toBe(1);
  expect(line(result.stdout, 'store')).toBe(`FAIL  store              ${site.store} does not exist; fix: mount the shared filesystem on this node, or set store.path in ${site.configPath}`);
  expect(result.stdout).toMatch(/NOT fit for jobs: 1 check failed/);
});

test('a world-writable store fails', async () => {
  chmodSync(site.store, 0o777);
  const result = await doctor(site);
  expect(result.code).toBe(1);
  expect(line(result.stdout, 'store')).toMatch(new RegExp(`^FAIL .*${site.store} is world-writable \\(mode 0777\\).*fix: chmod o-w ${site.store}$`));
});

test('an invalid configuration fails the config check, naming the key', async () => {
  writeFileSync(site.configPath, `store:\n  path: ${site.store}\nruntime_dir: ${site.runtime}\nupper:\n  max_size: lots\n`);
  const result = await doctor(site);
  expect(result.code).toBe(1);
  expect(line(result.stdout, 'config')).toMatch(/^FAIL +config +.*upper\.max_size.*fix: run `strata config check`/);
});

test('a Slurm configuration without strata fails its lines', async () => {
  const conf = join(site.root, 'other-slurm.conf');
  writeFileSync(conf, 'ClusterName=t\nPrologFlags=Contain\nProlog=/nonexistent/prolog\n');
  const result = await site.run(['doctor'], { env: { SLURM_CONF: conf, PBS_CONF_FILE: join(site.root, 'none') } });
  expect(result.code).toBe(1);
  expect(line(result.stdout, 'slurm.prolog')).toMatch(/^FAIL .*Prolog=\/nonexistent\/prolog does not exist/);
  expect(line(result.stdout, 'slurm.epilog')).toMatch(/^FAIL .*sets no Epilog/);
  expect(line(result.stdout, 'slurm.prologflags')).toMatch(/^ok /);
  expect(line(result.stdout, 'slurm.plugin')).toMatch(/^FAIL .*cannot read .*plugstack\.conf/);
});

test('a PBS MoM without the strata hook fails; with it as PBS installs it (.HK, .PY, resourcedef) it passes', async () => {
  const home = join(site.root, 'pbs');
  const hooks = join(home, 'mom_priv/hooks');
  mkdirSync(hooks, { recursive: true });
  writeFileSync(join(site.root, 'pbs.conf'), `PBS_EXEC=/opt/pbs\nPBS_HOME=${home}\nPBS_START_MOM=1\n`);
  const env = { PBS_CONF_FILE: join(site.root, 'pbs.conf') };
  const without = await doctor(site, env);
  expect(without.code).toBe(1);
  expect(line(without.stdout, 'pbs.hooks')).toMatch(new RegExp(`^FAIL .*no strata hook for execjob_begin in ${hooks}`));
  // What the MoM holds after the qmgr commands of `strata install-pbs` (hook_save writes only non-defaults).
  writeFileSync(join(hooks, 'strata_mom.HK'), 'hook_name=strata_mom\nfail_action=offline_vnodes\nevent=execjob_begin,execjob_launch,execjob_end,exechost_startup,exechost_periodic\nalarm=120\nfreq=300\n');
  writeFileSync(join(hooks, 'strata_mom.PY'), '');
  writeFileSync(join(hooks, 'resourcedef'), 'container_image type=string flag=m\n');
  const withHook = await doctor(site, env);
  expect(line(withHook.stdout, 'pbs.hooks')).toMatch(/^ok .*hook strata_mom imported and enabled/);
  expect(line(withHook.stdout, 'pbs.resource')).toMatch(/^ok .*flag=m/);
  expect(withHook.code).toBe(0);
  writeFileSync(join(hooks, 'strata_mom.HK'), 'hook_name=strata_mom\nenabled=false\nevent=execjob_begin,execjob_end\n');
  expect(line((await doctor(site, env)).stdout, 'pbs.hooks')).toMatch(/^FAIL .*hook strata_mom is disabled; fix: qmgr -c 'set hook strata_mom enabled = true'/);
});
