// `strata exec` in a real Slurm job: the batch script runs on the host (--container-batch=host),
// as the unprivileged test user, and enters the container the prolog prepared with `strata exec`,
// the way a site without the SPANK plugin's task entry (or a PBS job) uses it. The node must be
// idle and clean afterwards.

import { join } from 'node:path';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { CONFIG, NODES, REPO, USER, clusterForTests, importImage, nodeLeftovers, readOutput, sbatch, stopCluster, waitForJob, waitForQuietCluster, workDir } from './cluster.js';

let startedHere = false;
let before: NodeState;

beforeAll(async () => {
  startedHere = await clusterForTests();
  await importImage('exec-e2e:1', { 'etc/strata-marker': 'exec-image\n' });
  before = nodeState();
}, 240_000);

afterAll(async () => {
  const states = await waitForQuietCluster();
  expect(states).toEqual(Object.fromEntries(NODES.map((node) => [node, 'idle'])));
  for (const node of NODES) expect({ node, left: await nodeLeftovers(node) }).toEqual({ node, left: [] });
  expectNodeStateUnchanged(before);
  if (startedHere) await stopCluster();
}, 120_000);

test('a Slurm batch script on the host enters its job\'s container with strata exec; statuses pass through', async () => {
  const dir = workDir('exec');
  const strata = `STRATA_CONFIG=${CONFIG} /usr/bin/node ${join(REPO, 'dist/bin/strata.js')}`;
  const script = [
    `${strata} exec -- sh -c 'cat /etc/strata-marker; id -u; pwd'`,
    `${strata} exec -- sh -c 'exit 3'; echo "status=$?"`,
    `${strata} exec --job 999999 -- true; echo "status=$?"`,
  ].join('; ');
  const submitted = await sbatch(dir, ['-N1', '-o', join(dir, 'out.txt'), '--container-image=exec-e2e:1', '--container-batch=host', '--wrap', script]);
  expect({ code: submitted.code, stderr: submitted.stderr }).toEqual({ code: 0, stderr: '' });
  const info = await waitForJob(submitted.jobId!);
  const output = readOutput(join(dir, 'out.txt'));
  expect({ state: info.state, output }).toEqual({
    state: 'COMPLETED',
    output: expect.stringMatching(new RegExp(`^exec-image\\n${USER.uid}\\n${dir}\\nstatus=3\\nstrata: job 999999 has no container on this node [^\\n]*\\nstatus=125\\n$`)),
  });
});
