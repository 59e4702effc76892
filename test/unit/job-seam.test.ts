// The job lifecycle against recording fakes of the host (NodeOps, TeardownOps): in milliseconds,
// that every step is journalled before it is carried out, that teardown takes mounts down children
// first and the layers under the node lock, that a repeated teardown is harmless, and what a
// teardown does with journals of an older (1) or a newer format. The root-only integration tests
// check the same against the real kernel.

import { applyPlan, type NodeOps } from '../../src/runtime/job/apply.js';
import { planJob, type Step } from '../../src/runtime/job/plan.js';
import { JOURNAL_VERSION, type JournalRecord } from '../../src/runtime/job/records.js';
import { teardownJob, type TeardownOps } from '../../src/runtime/job/teardown.js';
import type { MountEntry } from '../../src/host/mountinfo.js';
import { defaultConfig } from '../../src/config/validate.js';
import { userError } from '../../src/errors.js';
import type { ResolvedImage } from '../../src/store/store.js';

const config = defaultConfig();
const JOB = '42';
const DIR = `${config.runtimeDir}/jobs/${JOB}`;
const ROOTFS = `${DIR}/rootfs`;

function image(): ResolvedImage {
  const layer = (n: number) => ({ digest: `sha256:${String(n).repeat(64)}`, path: `/store/layers/sha256/${n}.sqfs`, size: 1, mediaType: 'application/vnd.oci.image.layer.v1.tar' });
  return { ref: 'app:1', manifestDigest: `sha256:${'f'.repeat(64)}`, layers: [layer(1), layer(2)], config: { config: { Env: ['PATH=/bin'] } } } as unknown as ResolvedImage;
}

const plan = (writable = false) =>
  planJob({ jobId: JOB, uid: 1000, gid: 1000, home: '/home/al', writable, mounts: [{ source: '/lustre/p', target: '/data', readonly: true, optional: false, recursive: false }] }, config, image());

/** NodeOps that record what happens, in order. */
function recordingOps(failOn?: (step: Step) => boolean, failure = () => userError('E_BAD_MOUNT', 'refused')) {
  const events: string[] = [];
  const journal: JournalRecord[] = [];
  const did = (step: Step) => {
    if (failOn?.(step)) throw failure();
    events.push(`do ${step.op} ${'target' in step ? step.target : ''}`);
  };
  const ops: NodeOps = {
    checkReady: () => events.push('ready'),
    makeJobDir: () => events.push('jobdir'),
    openJournal: () => ({
      append: (record) => {
        journal.push(record);
        events.push(`journal ${record.op} ${'target' in record ? record.target : ''}`);
      },
      close: () => events.push('journal closed'),
    }),
    mountUpperTmpfs: async (step) => did(step),
    makeUpperDir: (step) => did(step),
    makeDir: (step) => did(step),
    mountRootfs: async (step) => did(step),
    bind: async (step) => did(step),
    makeReadonly: async (step) => did(step),
    putFile: async (step) => did(step),
    device: async (step) => did(step),
    startIdentityLookup: () => async () => ({ groups: [] }),
    writeJobFiles: async (step) => did(step),
    mountTmp: async (step) => did(step),
    writeSlurmWrappers: (step) => did(step),
    writeEntry: (path, entry) => did({ op: 'entry', path, entry }),
  };
  return { ops, events, journal };
}

describe('applyPlan', () => {
  test('every step is journalled right before it is carried out, after the begin record (format 2)', async () => {
    const { ops, events, journal } = recordingOps();
    const planned = plan();
    await applyPlan(planned, { config, image: 'sha256:x', uid: 1000, gid: 1000, timings: {} }, ops);
    expect(events.slice(0, 3)).toEqual(['ready', 'jobdir', 'journal begin ']);
    expect(journal[0]).toMatchObject({ op: 'begin', v: JOURNAL_VERSION, jobId: JOB, uid: 1000 });
    expect(events.at(-1)).toBe('journal closed');
    const rest = events.slice(3, -1);
    expect(rest).toHaveLength(planned.steps.length * 2);
    for (let i = 0; i < rest.length; i += 2) expect(rest[i + 1].replace(/^do /, '')).toBe(rest[i].replace(/^journal /, ''));
    expect(journal.slice(1)).toEqual(planned.steps);
    expect(rest[rest.length - 1]).toMatch(/^do entry/);
  });

  test('a step that fails stops the set-up there: nothing after it is journalled or done, except the binds sent in the same run (each journalled first)', async () => {
    const { ops, events } = recordingOps((step) => step.op === 'bind' && step.target === '/data');
    await expect(applyPlan(plan(), { config, image: 'sha256:x', uid: 1000, gid: 1000, timings: {} }, ops)).rejects.toMatchObject({ code: 'E_BAD_MOUNT' });
    expect(events.at(-1)).toBe('journal closed');
    const failed = events.indexOf('journal bind /data');
    expect(failed).toBeGreaterThan(0);
    // After it: only binds of its run, each journalled right before it is done.
    const after = events.slice(failed + 1, -1);
    expect(after.every((event) => /^(journal|do) bind /.test(event))).toBe(true);
    for (let i = 0; i < after.length; i += 2) expect(after[i + 1]).toBe(after[i].replace(/^journal /, 'do '));
    expect(events.some((event) => /readonly|entry/.test(event))).toBe(false);
  });

  test('a kernel without erofs fails the node where erofs is the site\'s layer format (the default), the job where it is not', async () => {
    const noErofs = () => userError('E_NO_EROFS', "this node's kernel cannot mount erofs layers");
    const onRootfs = (step: Step) => step.op === 'rootfs';
    const siteDefault = recordingOps(onRootfs, noErofs).ops;
    await expect(applyPlan(plan(), { config, image: 'sha256:x', uid: 1000, gid: 1000, timings: {} }, siteDefault)).rejects.toMatchObject({ kind: 'node', code: 'E_NO_EROFS' });
    const squashfsSite = { ...config, import: { ...config.import, compression: 'zstd' as const } };
    const userChoice = recordingOps(onRootfs, noErofs).ops;
    await expect(applyPlan(plan(), { config: squashfsSite, image: 'sha256:x', uid: 1000, gid: 1000, timings: {} }, userChoice)).rejects.toMatchObject({ kind: 'user', code: 'E_NO_EROFS' });
  });
});

/** A node: a mount table and files, changed only through TeardownOps. */
function fakeNode(records: JournalRecord[], mounts: Omit<MountEntry, 'device' | 'options' | 'propagation' | 'source' | 'superOptions'>[]) {
  const table: MountEntry[] = mounts.map((mount) => ({ device: '0:0', options: 'rw', propagation: [], source: 'x', superOptions: '', ...mount }));
  const files = new Set([DIR, `${DIR}/journal`, `${DIR}/entry.json`, `${config.runtimeDir}/l`]);
  const events: string[] = [];
  let locked = false;
  const unreachable = new Set<number>();
  const ops: TeardownOps = {
    readJournal: () => (files.has(`${DIR}/journal`) ? records : []),
    isLink: () => false,
    exists: (path) => files.has(path),
    removeFile: (path) => files.delete(path),
    removeDir: (path) => files.delete(path),
    removeTree: async (path) => {
      for (const file of [...files]) if (file === path || file.startsWith(`${path}/`)) files.delete(file);
      events.push(`rm -r ${path}`);
    },
    mounts: () => [...table],
    unmount: async (_, entry, options) => {
      const index = table.findIndex((mounted) => mounted.id === entry.id);
      if (index < 0) return 'not-mounted';
      const lazy = (options?.retries ?? 0) < 0;
      if (unreachable.has(entry.id) && !lazy) return 'unreachable';
      const children = table.filter((mounted) => mounted.parentId === entry.id);
      if (children.length && !lazy) throw new Error(`${entry.mountPoint} unmounted before its children ${children.map((child) => child.mountPoint)}`);
      // The job's overlay itself (not a bind stacked on it) goes only under the node lock.
      const stackedOnItself = table.some((parent) => parent.id === entry.parentId && parent.mountPoint === entry.mountPoint);
      if (entry.fsType === 'overlay' && !lazy && !stackedOnItself) expect(locked).toBe(true);
      const gone = new Set([entry.id]);
      for (let grew = true; grew; ) {
        grew = false;
        for (const mounted of table) if (!gone.has(mounted.id) && gone.has(mounted.parentId)) (gone.add(mounted.id), (grew = true));
      }
      for (let i = table.length - 1; i >= 0; i--) if (gone.has(table[i].id)) table.splice(i, 1);
      events.push(`${lazy ? 'detach' : 'umount'} ${entry.mountPoint}`);
      return lazy ? 'lazy' : 'unmounted';
    },
    underNodeLock: async (_, action) => {
      locked = true;
      try {
        return await action();
      } finally {
        locked = false;
      }
    },
    releaseUnusedLayers: async () => {
      expect(locked).toBe(true);
      events.push('release layers');
    },
  };
  return { ops, events, table, files, unreachable };
}

const JOB_MOUNTS = [
  { id: 10, parentId: 1, mountPoint: `${DIR}/upper`, fsType: 'tmpfs' },
  { id: 11, parentId: 1, mountPoint: ROOTFS, fsType: 'overlay' },
  { id: 12, parentId: 11, mountPoint: `${ROOTFS}/proc`, fsType: 'proc' },
  { id: 13, parentId: 11, mountPoint: `${ROOTFS}/dev`, fsType: 'devtmpfs' },
  { id: 14, parentId: 13, mountPoint: `${ROOTFS}/dev/pts`, fsType: 'devpts' },
  { id: 15, parentId: 11, mountPoint: `${ROOTFS}/data`, fsType: 'lustre' },
];
const HOST = { id: 1, parentId: 0, mountPoint: '/', fsType: 'ext4' };

describe('teardownJob', () => {
  test('children before parents, the overlay and layer release under the node lock, the upper last; then the job dir goes', async () => {
    const node = fakeNode([{ op: 'begin', v: 2, jobId: JOB, uid: 1000, image: 'x', at: 'now' }, ...plan().steps], [HOST, ...JOB_MOUNTS]);
    await teardownJob(JOB, config, undefined, node.ops);
    expect(node.table).toEqual([expect.objectContaining({ id: 1 })]);
    expect(node.events.indexOf(`umount ${ROOTFS}/dev/pts`)).toBeLessThan(node.events.indexOf(`umount ${ROOTFS}/dev`));
    expect(node.events.indexOf(`umount ${ROOTFS}`)).toBeLessThan(node.events.indexOf('release layers'));
    expect(node.events.indexOf('release layers')).toBeLessThan(node.events.indexOf(`umount ${DIR}/upper`));
    expect(node.events[node.events.length - 1]).toBe(`rm -r ${DIR}`);
    expect(node.files.has(DIR)).toBe(false);
  });

  test('remap-root (format 3): the idmapped layer clones go after the overlay and before the layers are released', async () => {
    const remap = planJob({ jobId: JOB, uid: 1000, gid: 1000, writable: true, mounts: [], remapRoot: true }, config, image());
    const clones = [1, 2].map((n, i) => ({ id: 20 + i, parentId: 1, mountPoint: `${DIR}/l/${String(n).repeat(16)}`, fsType: 'squashfs' }));
    const node = fakeNode([{ op: 'begin', v: JOURNAL_VERSION, jobId: JOB, uid: 1000, image: 'x', at: 'now' }, ...remap.steps], [HOST, ...clones, ...JOB_MOUNTS]);
    await teardownJob(JOB, config, undefined, node.ops);
    expect(node.table).toEqual([expect.objectContaining({ id: 1 })]);
    for (const clone of clones) {
      expect(node.events.indexOf(`umount ${ROOTFS}`)).toBeLessThan(node.events.indexOf(`umount ${clone.mountPoint}`));
      expect(node.events.indexOf(`umount ${clone.mountPoint}`)).toBeLessThan(node.events.indexOf('release layers'));
    }
  });

  test('a second teardown is harmless: nothing to unmount, nothing there', async () => {
    const node = fakeNode([{ op: 'begin', v: 2, jobId: JOB, uid: 1000, image: 'x', at: 'now' }, ...plan().steps], [HOST, ...JOB_MOUNTS]);
    await teardownJob(JOB, config, undefined, node.ops);
    const events = node.events.length;
    const again = await teardownJob(JOB, config, undefined, node.ops);
    expect(again).toMatchObject({ nothing: true, steps: 0 });
    expect(node.events.slice(events).filter((event) => !event.startsWith('rm -r') && event !== 'release layers')).toEqual([]);
  });

  test('a format-1 journal (mountpoints, a read-only bind stacked on the rootfs, binds by host path) is torn down', async () => {
    const v1: JournalRecord[] = [
      { op: 'begin', jobId: JOB, uid: 1000, image: 'x', at: 'then' },
      ...plan().steps.filter((step) => step.op === 'upper-tmpfs' || step.op === 'mkdir' || step.op === 'rootfs'),
      { op: 'mountpoints', rootfs: ROOTFS, binds: [] },
      { op: 'readonly', target: ROOTFS },
      { op: 'bind', rootfs: ROOTFS, source: '/proc', target: `${ROOTFS}/proc`, readonly: false, optional: false, recursive: true },
    ];
    const stacked = { id: 16, parentId: 11, mountPoint: ROOTFS, fsType: 'overlay' };
    const node = fakeNode(v1, [HOST, ...JOB_MOUNTS.slice(0, 2), stacked, { id: 17, parentId: 16, mountPoint: `${ROOTFS}/proc`, fsType: 'proc' }]);
    await teardownJob(JOB, config, undefined, node.ops);
    expect(node.table).toEqual([expect.objectContaining({ id: 1 })]);
  });

  test('a journal of a newer strata (unknown steps) is torn down by what mountinfo shows under the job dir', async () => {
    const newer = [{ op: 'begin', v: JOURNAL_VERSION + 1, jobId: JOB, uid: 1000, image: 'x', at: 'later' }, ...plan().steps, { op: 'gpu-magic', target: `${ROOTFS}/dev/gpu0` }] as unknown as JournalRecord[];
    const node = fakeNode(newer, [HOST, ...JOB_MOUNTS, { id: 18, parentId: 13, mountPoint: `${ROOTFS}/dev/gpu0`, fsType: 'devtmpfs' }]);
    await teardownJob(JOB, config, undefined, node.ops);
    expect(node.table).toEqual([expect.objectContaining({ id: 1 })]);
  });

  test('a mount a user made unreachable by its path goes with a lazy detach of the rootfs; no host mount is touched', async () => {
    const node = fakeNode([{ op: 'begin', v: 2, jobId: JOB, uid: 1000, image: 'x', at: 'now' }, ...plan().steps], [HOST, ...JOB_MOUNTS]);
    node.unreachable.add(15);
    await teardownJob(JOB, config, undefined, node.ops);
    expect(node.events).toContain(`detach ${ROOTFS}`);
    expect(node.table).toEqual([expect.objectContaining({ id: 1 })]);
  });
});
