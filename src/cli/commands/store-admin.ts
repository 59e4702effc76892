// Store management for admins: `strata tag SRC DST`, `strata rm REF`, `strata gc [--dry-run]`,
// `strata verify`.

import { userError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { runGc } from '../../store/gc.js';
import { parseImageRef, parseTagRef } from '../../store/ref.js';
import { removeTag, setTag } from '../../store/tags.js';
import { verifyStore } from '../../store/verify-store.js';
import { humanBytes, openStore } from './images.js';

export async function tagCommand(args: { source: string; target: string }): Promise<number> {
  const { store } = await openStore();
  const digest = await store.resolve(args.source);
  const target = parseTagRef(args.target);
  await setTag(store.layout, target.name, target.tag, digest);
  process.stderr.write(`tagged ${target.name}:${target.tag} → ${digest}\n`);
  return 0;
}

export async function rmCommand(args: { refs: string[] }): Promise<number> {
  const { store } = await openStore();
  for (const text of args.refs) {
    const ref = parseImageRef(text);
    if (!ref.name || ref.digest) throw userError('E_BAD_REF', `strata rm removes tags; "${text}" is not a NAME:TAG`, { hint: 'name the tag (see `strata images`); unreferenced images go at `strata gc`' });
    const digest = await removeTag(store.layout, ref.name, ref.tag!);
    process.stderr.write(`removed tag ${ref.name}:${ref.tag} (was ${digest}; its layers go at gc if nothing else uses them)\n`);
  }
  return 0;
}

export async function gcCommand(args: { dryRun?: boolean }): Promise<number> {
  const { config, store } = await openStore();
  await store.checkReachable();
  const result = await runGc(store, { graceSeconds: config.store.gcGrace, runtimeDir: config.runtimeDir, dryRun: args.dryRun ?? false });
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
