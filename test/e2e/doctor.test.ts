// `strata doctor` on every node of the real 3-node Slurm cluster (test/cluster), set up the way
// docs/install.md says: each node is fit. Then the health check (etc/slurm/strata-healthcheck.sh)
// on a node whose strata configuration is broken drains exactly that node with doctor's reason.
//
// Runs as root, under the mount-test lock (scripts/test holds /tmp/strata-mounttests.lock).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { CONFIG, DIR, NODES, REPO, ensureCluster, importImage, on, stopCluster, waitForQuietCluster } from './cluster.js';

let startedHere = false;
let before: NodeState;
const STRATA = join(REPO, 'dist/bin/strata.js');

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the end-to-end tests need root (namespaces, slurmd, loop devices)');
  startedHere = await ensureCluster();
  await waitForQuietCluster();
  await importImage('doctor:1');
  before = nodeState();
}, 240_000);

afterAll(async () => {
  expectNodeStateUnchanged(before);
  if (startedHere) await stopCluster();
}, 120_000);

test.each(NODES)('node %s is fit for jobs', async (node) => {
  const result = await on(node, ['/usr/bin/env', `STRATA_CONFIG=${CONFIG}`, STRATA, 'doctor']);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  const line = (name: string) => result.stdout.split('\n').find((l) => l.slice(6).startsWith(`${name} `)) ?? '';
  // The node's own view: its slurm.conf lines, the plugin it loads, the store it sees.
  for (const name of ['kernel.overlay', 'slurm.prolog', 'slurm.epilog', 'slurm.prologflags', 'slurm.plugin', 'store', 'config']) expect(line(name)).toMatch(/^ok /);
  expect(result.stdout).toMatch(/this node is fit for jobs/);
});

test('the health check drains a node whose strata is broken, with doctor\'s reason, and only that node', async () => {
  const broken = join(DIR, 'etc/strata-broken.yaml');
  writeFileSync(broken, `store:\n  path: ${join(DIR, 'no-such-store')}\nruntime_dir: /run/strata\n`);
  const check = (node: string, config: string) =>
    on(node, ['/usr/bin/env', `STRATA=${STRATA}`, `STRATA_CONFIG=${config}`, `SLURMD_NODENAME=${node}`, join(REPO, 'etc/slurm/strata-healthcheck.sh')]);
  try {
    expect((await check('n2', CONFIG)).code).toBe(0);
    expect((await check('n1', broken)).code).toBe(0);
    const n1 = (await on('head', ['scontrol', 'show', 'node', '-o', 'n1'])).stdout;
    expect(n1).toMatch(/State=\S*DRAIN/);
    expect(n1).toMatch(new RegExp(`Reason=strata doctor: store: ${join(DIR, 'no-such-store')} does not exist`));
    expect((await on('head', ['scontrol', 'show', 'node', '-o', 'n2'])).stdout).not.toMatch(/DRAIN/);
  } finally {
    await on('head', ['scontrol', 'update', 'NodeName=n1', 'State=RESUME']);
  }
  expect(await waitForQuietCluster()).toEqual(Object.fromEntries(NODES.map((node) => [node, 'idle'])));
}, 60_000);
