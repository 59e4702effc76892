// `strata doctor` on devices: it lists what a node offers, fails on a spec it cannot use, and
// warns about GPUs that containers will not get or that Slurm does not confine.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkDevices } from '../../src/doctor/cdi-checks.js';
import { gatherDeviceFacts, type DeviceFacts } from '../../src/doctor/cdi-facts.js';
import { cleanupCdi, tempDir, writeSpecs } from '../helpers/cdi-host.js';
import { exampleGpuSpec } from '../helpers/cdi-specs.js';

const facts = (over: Partial<DeviceFacts> = {}): DeviceFacts => ({ specDirs: ['/etc/cdi', '/var/run/cdi'], offered: [], problems: [], gpuNodes: [], ...over });
const byName = (checks: ReturnType<typeof checkDevices>, name: string) => checks.find((check) => check.name === name);

describe('checkDevices', () => {
  test('lists the devices offered and the spec files', () => {
    const check = byName(checkDevices(facts({ offered: [{ name: 'nvidia.com/gpu=0', spec: '/etc/cdi/nvidia.yaml' }, { name: 'nvidia.com/gpu=all', spec: '/etc/cdi/nvidia.yaml' }] })), 'cdi');
    expect(check).toEqual({ name: 'cdi', status: 'ok', message: 'offers nvidia.com/gpu=0, nvidia.com/gpu=all (/etc/cdi/nvidia.yaml)' });
  });

  test('a spec it cannot use fails the node, naming the file and the problem', () => {
    const check = byName(checkDevices(facts({ problems: [{ path: '/etc/cdi/bad.yaml', message: 'spec.kind: is required' }, { path: '/etc/cdi/x.json', message: 'y' }] })), 'cdi');
    expect(check).toMatchObject({ status: 'fail', message: 'CDI spec /etc/cdi/bad.yaml cannot be used: spec.kind: is required (and 1 more: /etc/cdi/x.json)' });
  });

  test('GPUs without an nvidia.com/gpu spec: a warning that containers get no GPU', () => {
    expect(byName(checkDevices(facts({ gpuNodes: ['/dev/nvidia0'] })), 'cdi')).toMatchObject({ status: 'warn', fix: expect.stringContaining('nvidia-ctk cdi generate') });
  });

  test.each([
    [{ path: '/etc/slurm/cgroup.conf', readable: true, constrainDevices: 'no' }, 'warn'],
    [{ path: '/etc/slurm/cgroup.conf', readable: false }, 'warn'],
    [{ path: '/etc/slurm/cgroup.conf', readable: true }, 'warn'],
    [{ path: '/etc/slurm/cgroup.conf', readable: true, constrainDevices: 'Yes' }, 'ok'],
  ])('GPUs present, cgroup.conf %j: %s', (cgroup, status) => {
    const check = byName(checkDevices(facts({ gpuNodes: ['/dev/nvidia0'], cgroup })), 'cdi.cgroup');
    expect(check?.status).toBe(status);
    if (status === 'warn') expect(check?.message).toMatch(/a job can open every GPU of the node/);
  });

  test('no GPUs, or no Slurm: no cgroup verdict', () => {
    expect(byName(checkDevices(facts({ cgroup: { path: '/x', readable: false } })), 'cdi.cgroup')).toBeUndefined();
    expect(byName(checkDevices(facts({ gpuNodes: ['/dev/nvidia0'] })), 'cdi.cgroup')).toBeUndefined();
  });
});

describe('gatherDeviceFacts', () => {
  let root: string;
  beforeEach(() => (root = tempDir()));
  afterEach(() => cleanupCdi(root));

  test('reads the specs, the GPU nodes in index order and cgroup.conf next to slurm.conf', () => {
    const specDir = join(root, 'cdi');
    writeSpecs(specDir, { 'example.json': exampleGpuSpec({ nodes: ['/dev/null'], share: '/usr' }), 'broken.yaml': 'kind: [' });
    const dev = join(root, 'dev');
    mkdirSync(dev);
    for (const name of ['nvidia10', 'nvidia2', 'nvidiactl', 'null']) writeFileSync(join(dev, name), '');
    writeFileSync(join(root, 'cgroup.conf'), 'CgroupPlugin=autodetect\nConstrainDevices=yes # confine\n');
    const gathered = gatherDeviceFacts({ devices: { specDirs: [specDir], defaultRequests: [], autoAll: false, allowUnknownHooks: false } }, { devDir: dev, slurmConf: join(root, 'slurm.conf') });
    expect(gathered.offered).toEqual([{ name: 'example.com/gpu=gpu0', spec: join(specDir, 'example.json') }]);
    expect(gathered.problems.map((p) => p.path)).toEqual([join(specDir, 'broken.yaml')]);
    expect(gathered.gpuNodes).toEqual([join(dev, 'nvidia2'), join(dev, 'nvidia10')]);
    expect(gathered.cgroup).toEqual({ path: join(root, 'cgroup.conf'), readable: true, constrainDevices: 'yes' });
  });
});
