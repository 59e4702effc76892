// Store management for admins: `strata tag SRC DST`, `strata rm REF`, `strata gc [--dry-run]`,
// `strata verify`.

import { userError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { runGc } from '../../store/gc.js';
import { storeInUse } from '../../runtime/node/store-in-use.js';
import { verifyStore } from '../../store/verify-store.js';
import { humanBytes } from '../../format.js';
import { openStore } from '../open-store.js';
import { removeTags, tagImage } from '../../store/write/requests.js';
import { storeWriteRoute } from '../../store/write/route.js';
import { writeThroughOwner } from '../../store/write/through-owner.js';
import { terminalWriteReport } from '../write-report.js';

export async function tagCommand(args: { source: string; target: string }): Promise<number> {
  const { config, store } = await openStore();
  const route = await storeWriteRoute(config);
  if (route.how === 'direct') {
    await tagImage(store, terminalWriteReport(), args.source, args.target);
    return 0;
  }
  return (await writeThroughOwner(route, { op: 'tag', source: args.source, target: args.target })).status;
}

export async function rmCommand(args: { refs: string[] }): Promise<number> {
  const { config, store } = await openStore();
  const route = await storeWriteRoute(config);
  if (route.how === 'direct') {
    await removeTags(store, terminalWriteReport(), args.refs);
    return 0;
  }
  return (await writeThroughOwner(route, { op: 'rm', refs: args.refs })).status;
}

export async function gcCommand(args: { dryRun?: boolean }): Promise<number> {
  const { config, store } = await openStore();
  await store.checkReachable();
  const route = await storeWriteRoute(config);
  // Root may sweep a store a service account owns (it only removes files); a user may not.
  if (route.how === 'relay' && route.user) throw userError('E_STORE_DENIED', `only the store's owner (${route.owner.name}) or root can run strata gc`, { hint: 'ask an admin; remove your own tags with `strata rm ~/NAME:TAG`' });
  const result = await runGc(store, { graceSeconds: config.store.gcGrace, nodeUse: await storeInUse(store.layout.root, config.runtimeDir), dryRun: args.dryRun ?? false });
  const verb = args.dryRun ? 'would remove' : 'removed';
  if (args.dryRun) {
    for (const layer of result.removeLayers) process.stdout.write(`layer ${layer.digest} ${humanBytes(layer.size)}\n`);
    for (const blob of result.removeBlobs) process.stdout.write(`blob ${blob.digest} ${humanBytes(blob.size)}\n`);
    for (const partial of result.partials) process.stdout.write(`partial ${partial.path} ${humanBytes(partial.size)}\n`);
  }
  const summary = `gc: ${verb} ${result.removeLayers.length} layers, ${result.removeBlobs.length} blobs, ${result.partials.length} stale partial files (${humanBytes(result.bytes)}); kept ${result.keptImages} images`;
  process.stderr.write(`${summary}\n`);
  if (!args.dryRun) createLogger(config, { phase: 'gc' }).info(summary, { layers: result.removeLayers.length, blobs: result.removeBlobs.length, partials: result.partials.length, bytes: result.bytes });
  return 0;
}

export async function verifyCommand(): Promise<number> {
  const { store } = await openStore();
  await store.checkReachable();
  const report = await verifyStore(store);
  for (const problem of report.problems) process.stdout.write(`${problem}\n`);
  const { layers, blobs, tags, bytes } = report.checked;
  process.stderr.write(`verify: ${layers} layers, ${blobs} blobs (${humanBytes(bytes)}) re-hashed, ${tags} tags checked: ${report.problems.length ? `${report.problems.length} problems` : 'all good'}\n`);
  return report.problems.length ? 1 : 0;
}
