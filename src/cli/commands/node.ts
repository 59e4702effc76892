// `strata node status [--json]` and `strata node gc [--dry-run] [--live-jobs ID,...]`: what strata
// holds on this node, and removing what belongs to jobs that no longer run here.

import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../log.js';
import { inventoryNode, readNodeSnapshot, type NodeInventory } from '../../runtime/node/state.js';
import { applyReconcile, describeAction, planReconcile } from '../../runtime/node/reconcile.js';
import { parseLiveJobs, schedulerLiveJobs, type LiveJobs } from '../../scheduler/live-jobs.js';
import { humanBytes } from '../../format.js';

export async function nodeStatusCommand(args: { json?: boolean }): Promise<number> {
  const config = await loadConfig();
  const inventory = inventoryNode(readNodeSnapshot(config));
  process.stdout.write(args.json ? `${JSON.stringify(inventory, null, 2)}\n` : renderInventory(inventory));
  return 0;
}

/** The human view: layer mounts, jobs, stale things; one table each, empty ones left out. */
export function renderInventory(inventory: NodeInventory): string {
  const out: string[] = [];
  if (inventory.layers.length) {
    out.push(table([['LAYER', 'DEVICE', 'JOBS', 'FILE'], ...inventory.layers.map((layer) => [layer.id, layer.mounted ? (layer.device ?? (layer.file ? '(the file)' : '?')) : '(not mounted)', layer.jobs.join(',') || '-', layer.file ?? '-'])]));
  }
  if (inventory.jobs.length) {
    const upper = (job: NodeInventory['jobs'][number]) =>
      job.upper ? `${job.upper.usedBytes === undefined ? '?' : humanBytes(job.upper.usedBytes)}${job.upper.sizeBytes ? `/${humanBytes(job.upper.sizeBytes)}` : ''} ${job.upper.backing}` : '-';
    out.push(
      table([
        ['JOB', 'PHASE', 'IMAGE', 'UID', 'ROOTFS', 'UPPER', 'MOUNTS', 'STARTED'],
        ...inventory.jobs.map((job) => [
          job.id,
          job.phase,
          job.image ? job.image.replace(/^sha256:/, '').slice(0, 12) : '-',
          job.uid === undefined ? '-' : String(job.uid),
          job.rootfs.mounted ? `mounted (${job.layers.length} layers)` : 'not mounted',
          upper(job),
          String(job.mounts.length),
          job.startedAt?.slice(0, 19) ?? '-',
        ]),
      ]),
    );
    for (const job of inventory.jobs.filter((candidate) => candidate.error)) out.push(`job ${job.id} failed to set up: ${job.error}`);
  }
  if (inventory.stale.length) {
    out.push(`STALE (${inventory.stale.length}):`);
    for (const item of inventory.stale) out.push(`  ${item.kind}  ${item.path}  ${item.detail}`);
  }
  if (!out.length) out.push(`no strata jobs, layer mounts or loop devices on this node (${inventory.runtimeDir})`);
  else if (!inventory.stale.length) out.push('nothing stale');
  return `${out.join('\n')}\n`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd()).join('\n');
}

export async function nodeGcCommand(args: { dryRun?: boolean; liveJobs?: string }, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const config = await loadConfig(env);
  const log = createLogger(config, { phase: 'gc' });
  // Snapshot first, then ask the scheduler: a job that starts in between is not in the snapshot.
  const inventory = inventoryNode(readNodeSnapshot(config));
  const live: LiveJobs = args.liveJobs !== undefined ? { jobs: parseLiveJobs(args.liveJobs), source: '--live-jobs' } : await schedulerLiveJobs(config.runtimeDir, env);
  const plan = planReconcile(inventory, live.jobs);
  for (const kept of plan.kept) process.stdout.write(`job ${kept.job}: kept (still running per ${live.source}) although ${kept.detail}\n`);
  const jobs = plan.actions.filter((action) => action.kind === 'teardown-job').length;
  if (args.dryRun) {
    for (const action of plan.actions) process.stdout.write(`would ${describeAction(action)}\n`);
    process.stdout.write(`node gc (dry run): ${jobs} jobs to remove, ${live.jobs.size} live per ${live.source}; nothing changed\n`);
    return 0;
  }
  const outcomes = await applyReconcile(plan, config);
  for (const outcome of outcomes) {
    process.stdout.write(`${outcome.ok ? 'done' : 'FAILED'}: ${describeAction(outcome.action)}${outcome.note ? ` (${outcome.note})` : ''}\n`);
  }
  const failed = outcomes.filter((outcome) => !outcome.ok);
  const summary = `node gc: removed ${jobs - failed.filter((o) => o.action.kind === 'teardown-job').length} of ${jobs} finished jobs, ${live.jobs.size} live per ${live.source}${failed.length ? `, ${failed.length} actions failed` : ''}`;
  process.stdout.write(`${summary}\n`);
  log[failed.length ? 'error' : 'info'](summary, { result: failed.length ? 'node-error' : 'ok', actions: outcomes.map((o) => ({ ...o.action, ok: o.ok, note: o.note })) });
  return failed.length ? 1 : 0;
}
