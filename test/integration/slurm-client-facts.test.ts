// What the prolog learns about the node's Slurm client, from this machine's real Slurm commands
// (Debian's slurm-client, installed by scripts/setup) and a slurm.conf written here: the commands
// with the loader and run path their ELF headers name, PluginDir, plugstack.conf with its includes
// and plugins, the munge socket from AuthInfo, and the owner of every directory on the way.

import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../../src/config/validate.js';
import { gatherSlurmClient, type SlurmClientFacts } from '../../src/host/slurm-client.js';
import { planSlurmClient } from '../../src/runtime/slurm-client/plan.js';

let dir: string;
const config = defaultConfig();

beforeAll(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'strata-slurm-facts-')));
  mkdirSync(join(dir, 'plugstack.d'));
  mkdirSync(join(dir, 'munge'));
  writeFileSync(join(dir, 'munge', 'munge.socket'), '');
  writeFileSync(join(dir, 'site.so'), '');
  writeFileSync(join(dir, 'slurm.conf'), `ClusterName=x\nAuthType=auth/munge\nAuthInfo=cred_expire=60, socket=${dir}/munge/munge.socket\nPlugStackConfig=${dir}/plugstack.conf # comment\nNodeName=n1 CPUs=1\n`);
  writeFileSync(join(dir, 'plugstack.conf'), `include ${dir}/plugstack.d/*.conf\noptional relative.so\n`);
  writeFileSync(join(dir, 'plugstack.d', 'site.conf'), `required ${dir}/site.so arg=1\n`);
  writeFileSync(join(dir, 'plugstack.d', 'ignored.txt'), `required ${dir}/nope.so\n`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the node: commands with their loader and run path, plugin dir, plugstack includes, munge socket', () => {
  const facts = gatherSlurmClient({ SLURM_CONF: join(dir, 'slurm.conf') }, config) as SlurmClientFacts;
  expect('missing' in facts).toBe(false);
  const srun = facts.commands.find((command) => command.name === 'srun')!;
  expect(srun).toEqual({ name: 'srun', path: '/usr/bin/srun', loader: realpathSync('/lib64/ld-linux-x86-64.so.2'), runpath: ['/usr/lib/x86_64-linux-gnu/slurm-wlm'] });
  expect(facts.commands.map((command) => command.name)).toEqual(expect.arrayContaining(['srun', 'sbatch', 'scontrol', 'squeue', 'scancel']));
  // No PluginDir in slurm.conf: Slurm's compiled-in one, where libslurmfull is (the run path).
  expect(facts.pluginDirs).toEqual([{ path: '/usr/lib/x86_64-linux-gnu/slurm-wlm', real: '/usr/lib/x86_64-linux-gnu/slurm-wlm' }]);
  // Debian's slurm-wlm mpi/pmix opens libpmix from its compiled-in directory (scripts/setup installs libpmix-dev).
  expect(facts.pluginLibraryDirs).toEqual([{ path: '/usr/lib/x86_64-linux-gnu/pmix2/lib', real: '/usr/lib/x86_64-linux-gnu/pmix2/lib' }]);
  expect(facts.confDir).toEqual({ path: dir, real: dir });
  expect(facts.plugstack.map((file) => file.path)).toEqual([join(dir, 'plugstack.conf'), join(dir, 'plugstack.d', 'site.conf')]);
  expect(facts.spankPlugins.map((file) => file.path)).toEqual([join(dir, 'site.so')]);
  expect(facts.mungeSocket).toEqual({ path: join(dir, 'munge', 'munge.socket'), real: join(dir, 'munge', 'munge.socket') });
  expect(facts.owners['/']).toEqual({ uid: 0, mode: expect.any(Number) });
  // The plan from these facts: everything here is root's, so the wrappers run the node's commands.
  const plan = planSlurmClient(facts, config, 1000);
  expect(plan.notes).toEqual([]);
  expect(plan.steps[0].wrappers.find((wrapper) => wrapper.name === 'srun')!.text).toContain("'/.strata/slurm/host/usr/bin/srun' \"$@\"");
});

test('no readable slurm.conf: a reason, not an exception', () => {
  expect(gatherSlurmClient({ SLURM_CONF: join(dir, 'missing.conf') }, config)).toEqual({ missing: `cannot read ${join(dir, 'missing.conf')}: ENOENT` });
});

test('no Slurm command in the configured directories: a reason', () => {
  const facts = gatherSlurmClient({ SLURM_CONF: join(dir, 'slurm.conf') }, { slurmClient: { ...config.slurmClient, binDirs: [dir] } });
  expect(facts).toEqual({ missing: `no Slurm command (srun, sbatch, salloc, ...) in ${dir}` });
});
