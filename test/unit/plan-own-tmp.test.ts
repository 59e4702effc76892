// A mount point under /tmp (a job submitted from a directory on the node's /tmp, or a user mount
// onto /tmp/...): the container's /tmp is the job's own tmpfs bound over the image's, so the mount
// point cannot be made in the image layer; the mount helper may make it on that tmpfs, and only
// there (helper/untrusted.c open_in_root_also). What the planner and the applier must get right
// for that, checked with a recording fake of the host; the e2e tests run it for real.

import { applyPlan, type NodeOps } from '../../src/runtime/job/apply.js';
import { planJob, type Step } from '../../src/runtime/job/plan.js';
import { RuntimePaths } from '../../src/runtime/paths.js';
import { defaultConfig } from '../../src/config/validate.js';
import type { ResolvedImage } from '../../src/store/store.js';

const config = defaultConfig();
const JOB = '77';
const OWN_TMP = new RuntimePaths(config.runtimeDir).job(JOB).tmp;
const SUBMIT_DIR = '/tmp/submit-77';

function image(): ResolvedImage {
  const layer = { digest: `sha256:${'1'.repeat(64)}`, path: '/store/layers/sha256/1.sqfs', size: 1, mediaType: 'application/vnd.oci.image.layer.v1.tar' };
  return { ref: 'app:1', manifestDigest: `sha256:${'f'.repeat(64)}`, layers: [layer], config: { config: {} } } as unknown as ResolvedImage;
}

const plan = () =>
  planJob(
    {
      jobId: JOB,
      uid: 1000,
      gid: 1000,
      home: '/home/al',
      jobWorkDir: SUBMIT_DIR,
      writable: false,
      mounts: [{ source: '/lustre/p', target: '/tmp/data', readonly: true, optional: false, recursive: false }],
    },
    config,
    image(),
  );

const binds = (steps: Step[]) => steps.flatMap((step, index) => (step.op === 'bind' ? [{ index, target: step.target, source: step.source, trusted: step.trusted ?? false }] : []));

test("the job's /tmp tmpfs is made and bound at /tmp before any bind whose mount point lies under /tmp", () => {
  const { steps } = plan();
  const tmpfs = steps.findIndex((step) => step.op === 'tmp-tmpfs');
  expect(steps[tmpfs]).toMatchObject({ op: 'tmp-tmpfs', target: OWN_TMP });
  const all = binds(steps);
  const tmp = all.find((bind) => bind.target === '/tmp');
  expect(tmp).toMatchObject({ source: OWN_TMP, trusted: true });
  const under = all.filter((bind) => bind.target.startsWith('/tmp/'));
  // The submit directory at its own path, and the user's mount: both opened as the user, not trusted.
  expect(under.map(({ target, source, trusted }) => ({ target, source, trusted }))).toEqual(
    expect.arrayContaining([
      { target: SUBMIT_DIR, source: SUBMIT_DIR, trusted: false },
      { target: '/tmp/data', source: '/lustre/p', trusted: false },
    ]),
  );
  expect(under).toHaveLength(2);
  for (const bind of under) expect(bind.index).toBeGreaterThan(tmp!.index);
  expect(tmp!.index).toBeGreaterThan(tmpfs);
  // --readonly comes after them all: the mount points are made first.
  expect(steps.findIndex((step) => step.op === 'readonly')).toBeGreaterThan(Math.max(...under.map((bind) => bind.index)));
});

test("every bind may make its mount point on the job's own /tmp (the tmpfs bound there), as the job's user for its own sources", async () => {
  const seen: Array<{ target: string; uid: number; deny: string; ownTmp?: string }> = [];
  const noop = async () => undefined;
  const ops: NodeOps = {
    checkReady: () => undefined,
    makeJobDir: () => undefined,
    openJournal: () => ({ append: () => undefined, close: () => undefined }),
    mountUpperTmpfs: noop,
    makeUpperDir: () => undefined,
    makeDir: () => undefined,
    mountRootfs: noop,
    bind: async (step, uid, _gid, deny, ownTmp) => void seen.push({ target: step.target, uid, deny, ownTmp }),
    makeReadonly: noop,
    putFile: noop,
    device: noop,
    startIdentityLookup: () => async () => ({ groups: [] }),
    writeJobFiles: noop,
    mountTmp: noop,
    writeEntry: () => undefined,
    writeSlurmWrappers: () => undefined,
  };
  await applyPlan(plan(), { config, image: 'sha256:x', uid: 1000, gid: 1000, timings: {} }, ops);
  const at = (target: string) => seen.find((bind) => bind.target === target);
  expect(at(SUBMIT_DIR)).toEqual({ target: SUBMIT_DIR, uid: 1000, deny: config.runtimeDir, ownTmp: OWN_TMP });
  expect(at('/tmp/data')).toEqual({ target: '/tmp/data', uid: 1000, deny: config.runtimeDir, ownTmp: OWN_TMP });
  // Nowhere else: every bind names the same directory, the one the plan mounts the job's /tmp on.
  expect(new Set(seen.map((bind) => bind.ownTmp))).toEqual(new Set([OWN_TMP]));
});
