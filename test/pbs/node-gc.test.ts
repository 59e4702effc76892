// `strata node gc` on a PBS MoM: it asks the MoM (PBS_HOME/mom_priv/jobs/*.JB, found through
// pbs.conf) which jobs it still has, keeps those and the ones still being set up, removes the
// rest; and removes nothing when it cannot ask. Jobs are set up by the real hook through the
// stand-in MoM (test/pbs/standin). Real mounts; the node is left as found.

import { mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pbsDaemon, runHook, type PbsDaemon } from '../helpers/pbs.js';
import { importSmallImage } from '../helpers/images.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, type Site } from '../helpers/site.js';

let site: Site;
let before: NodeState;
let mom: PbsDaemon;
let digest: string;

const begin = (id: string) =>
  runHook(mom, {
    type: 'execjob_begin',
    hook_name: 'strata_mom',
    job: { id, euser: 'nobody', egroup: 'nogroup', in_ms_mom: true, Resource_List: {}, Variable_List: { STRATA_IMAGE: 'gcimg:1', STRATA_IMAGE_DIGEST: digest } },
  });
const jobs = () => readdirSync(join(site.runtime, 'jobs')).sort();

beforeAll(async () => {
  before = nodeState();
  site = makeSite('pbs-gc');
  await importSmallImage(site, 'gcimg:1');
  digest = (await site.run(['resolve', 'gcimg:1'])).stdout.trim();
  mom = pbsDaemon(site.root, 'n1', site.configPath, site.runtime);
}, 120_000);

afterEach(() => expectNodeStateUnchanged(before));
afterAll(() => site.remove());

test('gc keeps the jobs the MoM has and the ones starting, removes the others; without an answer it removes nothing', async () => {
  for (const id of ['40.pbs', '41.pbs', '42.pbs']) expect((await begin(id)).outcome).toBe('accept');
  const hourAgo = new Date(Date.now() - 3600_000);
  for (const id of ['40.pbs', '41.pbs']) utimesSync(join(site.runtime, 'jobs', id), hourAgo, hourAgo);
  const pbsConf = join(site.root, 'pbs.conf');
  writeFileSync(pbsConf, `PBS_EXEC=/opt/pbs\nPBS_HOME=${mom.home}\nPBS_START_MOM=1\n`);
  const gc = (args: string[] = []) => site.run(['node', 'gc', ...args], { env: { PBS_CONF_FILE: pbsConf } });

  // The MoM cannot be asked (no mom_priv/jobs): nothing is removed, and the message says why.
  const blind = await gc();
  expect(blind.code).not.toBe(0);
  expect(blind.stderr).toMatch(/^strata: cannot ask PBS which jobs run on this node \(.*mom_priv\/jobs: ENOENT.*\): nothing was removed; .*--live-jobs/);
  expect(jobs()).toEqual(['40.pbs', '41.pbs', '42.pbs']);

  // 40 has its job file; 41 has none and is an hour old (finished); 42 has none yet but was just set up.
  mkdirSync(join(mom.home, 'mom_priv', 'jobs'), { recursive: true });
  writeFileSync(join(mom.home, 'mom_priv', 'jobs', '40.pbs.JB'), '');
  const dry = await gc(['--dry-run']);
  expect(dry.stdout).toMatch(/^would job 41\.pbs: tear down/m);
  expect(dry.stdout).toMatch(/node gc \(dry run\): 1 jobs to remove, 2 live per the PBS MoM's job files/);
  expect((await gc()).code).toBe(0);
  expect(jobs()).toEqual(['40.pbs', '42.pbs']);

  rmSync(join(mom.home, 'mom_priv', 'jobs'), { recursive: true });
  expect((await site.run(['node', 'gc', '--live-jobs', ''])).code).toBe(0);
  expect(jobs()).toEqual([]);
});
