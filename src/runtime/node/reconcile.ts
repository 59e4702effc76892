// `strata node gc`: bring the node back in line with the scheduler. Every job strata has state
// for on this node but the scheduler no longer runs here is torn down with the epilog's own
// teardown (journal replay, then mountinfo as the judge); leaked loop devices on store files are
// detached; layer mounts nobody uses are released per `layers.cache`. Planning is pure
// (inventory + live jobs → actions); `applyReconcile` carries the actions out.
//
// The live-job list must come first from the scheduler and the snapshot be taken BEFORE asking
// it: a job that started after the snapshot is then never seen, and one in the snapshot that the
// scheduler no longer lists afterwards has really ended.

import { removeTree } from '../../host/remove-tree.js';
import type { Config } from '../../config/types.js';
import { asStrataError } from '../../errors.js';
import { mustRun } from '../../host/exec.js';
import { listLoopDevices } from '../../host/loop.js';
import { readMountinfo } from '../../host/mountinfo.js';
import { withNodeLock } from '../../host/node-lock.js';
import { releaseUnusedLayers } from '../layers/stack.js';
import type { NodeInventory } from './state.js';
import { RuntimePaths } from '../paths.js';
import { teardownJob } from '../job/teardown.js';

export type ReconcileAction =
  | { kind: 'teardown-job'; job: string; reason: string }
  | { kind: 'remove-upper'; job: string; path: string }
  | { kind: 'detach-loop'; device: string; file: string }
  | { kind: 'release-layers'; mountPoints: string[] };

export interface ReconcilePlan {
  actions: ReconcileAction[];
  /** Stale things kept because the scheduler says their job still runs here. */
  kept: { job: string; detail: string }[];
}

/** What gc does on this node given who is still running. Pure. */
export function planReconcile(inventory: NodeInventory, live: Set<string>): ReconcilePlan {
  const actions: ReconcileAction[] = [];
  const kept: ReconcilePlan['kept'] = [];
  for (const job of inventory.jobs) {
    if (live.has(job.id)) {
      for (const item of inventory.stale.filter((stale) => stale.job === job.id)) kept.push({ job: job.id, detail: `${item.kind}: ${item.detail}` });
      continue;
    }
    const what = [job.phase, job.mounts.length ? `${job.mounts.length} mounts` : 'nothing mounted', job.upper?.usedBytes ? `upper ${job.upper.usedBytes} bytes` : ''].filter(Boolean);
    actions.push({ kind: 'teardown-job', job: job.id, reason: `no longer running on this node (${what.join(', ')})` });
  }
  for (const item of inventory.stale) {
    if (item.kind === 'upper-without-job' && item.job && !live.has(item.job)) actions.push({ kind: 'remove-upper', job: item.job, path: item.path });
    if (item.kind === 'loop-without-mount') actions.push({ kind: 'detach-loop', device: item.path, file: inventory.loops.find((loop) => loop.device === item.path)?.file ?? '' });
  }
  const layers = inventory.stale.filter((item) => item.kind === 'unused-layer' || item.kind === 'empty-layer-dir').map((item) => item.path);
  // Tearing a job down may leave its layers unused: the final sweep decides from mountinfo then.
  if (layers.length || actions.some((action) => action.kind === 'teardown-job')) actions.push({ kind: 'release-layers', mountPoints: layers });
  return { actions, kept };
}

export interface ActionOutcome {
  action: ReconcileAction;
  ok: boolean;
  /** Busy mounts lazily detached, or the error. */
  note?: string;
}

/** Carry out a plan; one failing action does not stop the others. */
export async function applyReconcile(plan: ReconcilePlan, config: Config): Promise<ActionOutcome[]> {
  const runtime = new RuntimePaths(config.runtimeDir);
  const outcomes: ActionOutcome[] = [];
  for (const action of plan.actions) {
    try {
      outcomes.push({ action, ok: true, note: await carryOut(action, runtime, config) });
    } catch (thrown) {
      outcomes.push({ action, ok: false, note: asStrataError(thrown).summary });
    }
  }
  return outcomes;
}

async function carryOut(action: ReconcileAction, runtime: RuntimePaths, config: Config): Promise<string | undefined> {
  switch (action.kind) {
    case 'teardown-job': {
      const result = await teardownJob(action.job, config);
      return result.lazy.length ? `busy, lazily detached: ${result.lazy.join(' ')}` : undefined;
    }
    case 'remove-upper':
      // Never recursive-delete something that might still be mounted.
      if (readMountinfo(action.path).length) return 'still mounted below; left';
      await removeTree(action.path);
      return undefined;
    case 'detach-loop':
      // Re-checked under the node lock (layer mounts are made under it): still on the same file,
      // still without autoclear, still mounted nowhere here.
      return withNodeLock(runtime.lockFile, async () => {
        const device = listLoopDevices().find((loop) => loop.name === action.device);
        if (!device || device.backingFile !== action.file || device.autoclear) return 'changed meanwhile; left';
        if (readMountinfo().some((entry) => entry.source === action.device)) return 'mounted meanwhile; left';
        await mustRun('losetup', ['--detach', action.device]);
        return undefined;
      });
    case 'release-layers':
      await withNodeLock(runtime.lockFile, () => releaseUnusedLayers(runtime, config.layers.cache));
      return undefined;
  }
}

/** One line per action, for the admin. */
export function describeAction(action: ReconcileAction): string {
  switch (action.kind) {
    case 'teardown-job':
      return `job ${action.job}: tear down, ${action.reason}`;
    case 'remove-upper':
      return `job ${action.job}: remove upper ${action.path}`;
    case 'detach-loop':
      return `${action.device}: detach (leaked loop device on ${action.file})`;
    case 'release-layers':
      return action.mountPoints.length ? `release unused layer mounts: ${action.mountPoints.join(' ')}` : 'release layer mounts left unused';
  }
}
