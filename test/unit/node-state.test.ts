// The node inventory and gc planning, judged from recorded mountinfo (two jobs on a real node,
// test/fixtures/mountinfo-two-jobs.txt) and fabricated journals: what `strata node status`
// reports and what `strata node gc` would do, without touching the machine.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMountinfo } from '../../src/host/mountinfo.js';
import type { JournalRecord } from '../../src/runtime/job/records.js';
import { inventoryNode, type JobSnapshot, type NodeSnapshot } from '../../src/runtime/node/state.js';
import { planReconcile } from '../../src/runtime/node/reconcile.js';
import { parseLiveJobs } from '../../src/scheduler/live-jobs.js';

const RUN = '/run/strata';
const STORE = '/lustre/strata/store';
const TEXT = readFileSync(join(new URL('../fixtures', import.meta.url).pathname, 'mountinfo-two-jobs.txt'), 'utf8');
const L1 = '988ffbfd20d1'; // base layer, used by both jobs
const L2 = '58d7bbc1c0a4'; // top layer of job 41's image
const file = (id: string) => `${STORE}/layers/sha256/${id}${'0'.repeat(52)}.sqfs`;

function journal(job: string, layers: string[]): JournalRecord[] {
  const dir = `${RUN}/jobs/${job}`;
  return [
    { op: 'begin', jobId: job, uid: 1000, image: `sha256:${job.padEnd(64, 'a')}`, at: '2026-12-01T19:54:16.000Z' },
    { op: 'upper-tmpfs', target: `${dir}/upper`, sizeBytes: 1 << 30, uid: 1000, gid: 1000 },
    { op: 'mkdir', path: `${dir}/rootfs`, mode: 0o755 },
    { op: 'rootfs', target: `${dir}/rootfs`, layerDir: `${RUN}/l`, layers: layers.map((id) => ({ id, digest: `sha256:${id}`, file: file(id), mountPoint: `${RUN}/l/${id}` })), options: '' },
  ];
}

const job = (id: string, layers: string[], extra: Partial<JobSnapshot> = {}): JobSnapshot => ({ id, records: journal(id, layers), hasEntry: true, upperUsage: { usedBytes: 4096, sizeBytes: 1 << 30 }, ...extra });
const loops = [
  { name: '/dev/loop0', backingFile: file(L1), deleted: false, autoclear: true },
  { name: '/dev/loop1', backingFile: file(L2), deleted: false, autoclear: true },
  { name: '/dev/loop7', backingFile: '/var/lib/other/disk.img', deleted: false, autoclear: false },
];

function snapshot(overrides: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return {
    runtimeDir: RUN,
    storePath: STORE,
    cachePolicy: 'release',
    mounts: parseMountinfo(TEXT),
    loops,
    jobs: [job('41', [L1, L2]), job('42', [L1])],
    layerDirs: [L1, L2],
    diskUppers: { dir: '/var/tmp/strata', names: [] },
    foreign: [],
    ...overrides,
  };
}

/** The recorded table without the lines of the given job (its mounts gone). */
const withoutJob = (id: string) => parseMountinfo(TEXT).filter((entry) => !entry.mountPoint.startsWith(`${RUN}/jobs/${id}/`));

test('two running jobs: layer mounts with their jobs, per-job rootfs, upper and mounts; nothing stale', () => {
  const inventory = inventoryNode(snapshot());
  expect(inventory.layers).toEqual([
    { id: L2, mountPoint: `${RUN}/l/${L2}`, mounted: true, device: '/dev/loop1', file: file(L2), jobs: ['41'] },
    { id: L1, mountPoint: `${RUN}/l/${L1}`, mounted: true, device: '/dev/loop0', file: file(L1), jobs: ['41', '42'] },
  ]);
  const [j41, j42] = inventory.jobs;
  expect(j41).toMatchObject({ id: '41', phase: 'ready', uid: 1000, rootfs: { mounted: true }, layers: [L2, L1], upper: { backing: 'tmpfs', mounted: true, usedBytes: 4096 } });
  expect(j41.mounts[0]).toBe(`${RUN}/jobs/41/upper`);
  expect(j41.mounts).toContain(`${RUN}/jobs/41/rootfs/scratch`);
  expect(j42).toMatchObject({ id: '42', layers: [L1] });
  expect(inventory.loops.map((loop) => loop.device)).toEqual(['/dev/loop0', '/dev/loop1']);
  expect(inventory.stale).toEqual([]);
});

test('a rebooted node (journals, nothing mounted): every job is stale, with its loops gone too', () => {
  const mounts = parseMountinfo(TEXT).filter((entry) => !entry.mountPoint.startsWith(`${RUN}/`));
  const inventory = inventoryNode(snapshot({ mounts, loops: [] }));
  expect(inventory.stale.map((item) => [item.kind, item.job ?? item.path])).toEqual([
    ['journal-without-mounts', '41'],
    ['journal-without-mounts', '42'],
    ['empty-layer-dir', `${RUN}/l/${L2}`],
    ['empty-layer-dir', `${RUN}/l/${L1}`],
  ]);
  // Nobody runs here any more: gc tears both down and sweeps the layer dirs.
  const plan = planReconcile(inventory, new Set());
  expect(plan.actions.map((action) => action.kind)).toEqual(['teardown-job', 'teardown-job', 'release-layers']);
});

test('mounts under a job directory without a journal', () => {
  const inventory = inventoryNode(snapshot({ jobs: [job('41', [L1, L2]), { id: '42', records: [], hasEntry: false }] }));
  expect(inventory.stale).toEqual([expect.objectContaining({ kind: 'mounts-without-journal', job: '42', detail: '20 mounts and no journal' })]);
  expect(inventory.jobs[1].phase).toBe('empty');
});

test('a job directory that exists only as a mount point is still listed', () => {
  const inventory = inventoryNode(snapshot({ jobs: [job('41', [L1, L2])] }));
  expect(inventory.jobs.map((j) => j.id)).toEqual(['41', '42']);
  expect(inventory.stale.map((item) => item.kind)).toEqual(['mounts-without-journal']);
});

test('a layer mount nobody uses is stale with `release`, a cache with `keep`', () => {
  const mounts = withoutJob('41');
  const released = inventoryNode(snapshot({ mounts, jobs: [job('42', [L1])] }));
  expect(released.layers.find((layer) => layer.id === L2)).toMatchObject({ mounted: true, jobs: [] });
  expect(released.stale).toEqual([expect.objectContaining({ kind: 'unused-layer', path: `${RUN}/l/${L2}` })]);
  expect(inventoryNode(snapshot({ mounts, jobs: [job('42', [L1])], cachePolicy: 'keep' })).stale).toEqual([]);
  // gc with job 42 live: only the sweep.
  expect(planReconcile(released, new Set(['42'])).actions).toEqual([{ kind: 'release-layers', mountPoints: [`${RUN}/l/${L2}`] }]);
});

test('loop devices on store files: leaked (no autoclear) vs held elsewhere (autoclear); others ignored', () => {
  const extra = [
    ...loops,
    { name: '/dev/loop3', backingFile: `${STORE}/layers/sha256/ffff.sqfs`, deleted: false, autoclear: false },
    { name: '/dev/loop4', backingFile: `${STORE}/layers/sha256/eeee.sqfs`, deleted: true, autoclear: true },
  ];
  const inventory = inventoryNode(snapshot({ loops: extra }));
  expect(inventory.stale.map((item) => [item.kind, item.path])).toEqual([
    ['loop-without-mount', '/dev/loop3'],
    ['loop-held-elsewhere', '/dev/loop4'],
  ]);
  const plan = planReconcile(inventory, new Set(['41', '42']));
  // Only the leaked one is detached; an autoclear loop is freed by the kernel when its user goes.
  expect(plan.actions).toEqual([{ kind: 'detach-loop', device: '/dev/loop3', file: `${STORE}/layers/sha256/ffff.sqfs` }]);
});

test('gc keeps live jobs (reporting what is stale about them) and removes finished ones', () => {
  const mounts = withoutJob('42');
  const inventory = inventoryNode(snapshot({ mounts }));
  const plan = planReconcile(inventory, new Set(['41', '42']));
  expect(plan.actions).toEqual([]);
  expect(plan.kept).toEqual([{ job: '42', detail: expect.stringMatching(/^journal-without-mounts: /) }]);
  const gone = planReconcile(inventory, new Set(['41']));
  expect(gone.actions).toEqual([
    { kind: 'teardown-job', job: '42', reason: 'no longer running on this node (ready, nothing mounted, upper 4096 bytes)' },
    { kind: 'release-layers', mountPoints: [] },
  ]);
});

test('planted entries are reported, never acted on; disk uppers without a job are removed', () => {
  const inventory = inventoryNode(
    snapshot({ foreign: [`${RUN}/jobs/evil`, `${RUN}/l/notalayer`], diskUppers: { dir: '/var/tmp/strata', names: ['41', '77'] } }),
  );
  expect(inventory.stale.map((item) => [item.kind, item.path])).toEqual([
    ['upper-without-job', '/var/tmp/strata/77'],
    ['foreign-entry', `${RUN}/jobs/evil`],
    ['foreign-entry', `${RUN}/l/notalayer`],
  ]);
  expect(planReconcile(inventory, new Set(['41', '42'])).actions).toEqual([{ kind: 'remove-upper', job: '77', path: '/var/tmp/strata/77' }]);
});

test('a job killed half-way (journal, no entry.json) is "setting-up"; a user error is "failed"', () => {
  const inventory = inventoryNode(snapshot({ jobs: [job('41', [L1, L2], { hasEntry: false }), job('42', [L1]), { id: '43', records: [], hasEntry: false, error: 'strata: unknown image "x"' }] }));
  expect(inventory.jobs.map((j) => [j.id, j.phase])).toEqual([['41', 'setting-up'], ['42', 'ready'], ['43', 'failed']]);
  expect(inventory.stale).toEqual([]);
});

test('--live-jobs: commas or spaces; bad ids refused', () => {
  expect([...parseLiveJobs('12, 13 14.pbs01')]).toEqual(['12', '13', '14.pbs01']);
  expect(parseLiveJobs('').size).toBe(0);
  expect(() => parseLiveJobs('12,../x')).toThrow(/invalid job id/);
});
