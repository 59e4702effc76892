// `strata images`, `strata inspect`, `strata resolve`, `strata import`: the store seen by admins.

import { userError } from '../../errors.js';
import { layerSourceBytes, localLayerSource } from '../../store/import/layer-source.js';
import { parseImageSource } from '../../store/sources/open.js';
import { humanBytes } from '../../format.js';
import { openStore } from '../open-store.js';
import type { ImportArgs } from './import-args.js';

export async function imagesCommand(args: { json?: boolean }): Promise<number> {
  const { config, store } = await openStore();
  const rows = [];
  for (const entry of await store.listTags()) {
    const manifest = await store.readManifest(entry.digest, `${entry.name}:${entry.tag}`).catch(() => undefined);
    const size = manifest?.layers.reduce((sum, layer) => sum + layer.size, 0) ?? 0;
    rows.push({ name: entry.name, tag: entry.tag, digest: entry.digest, layers: manifest?.layers.length ?? 0, size, created: manifest?.annotations?.['org.opencontainers.image.created'] ?? '' });
  }
  if (args.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  const table = [['IMAGE', 'DIGEST', 'LAYERS', 'SIZE', 'CREATED'], ...rows.map((row) => [`${row.name}:${row.tag}`, row.digest.slice(7, 19), String(row.layers), humanBytes(row.size), row.created.slice(0, 19)])];
  const widths = table[0].map((_, column) => Math.max(...table.map((line) => line[column].length)));
  for (const line of table) process.stdout.write(`${line.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd()}\n`);
  // Where users import, each sees what their own images take of their quota (stderr: the table
  // on stdout stays a table).
  if (config.import.userImports && store.self && process.getuid?.() !== 0) {
    const { userUsage } = await import('../../store/write/quota.js');
    const used = (await userUsage(store, store.self)).bytes;
    const quota = config.import.userQuota;
    process.stderr.write(`your images (~${store.self}/) take ${humanBytes(used)} of the store${quota ? ` of your quota of ${humanBytes(quota)}` : ''}\n`);
  }
  return 0;
}

export async function inspectCommand(args: { ref: string }): Promise<number> {
  const { store } = await openStore();
  const image = await store.open(args.ref);
  const tags = (await store.listTags()).filter((entry) => entry.digest === image.manifestDigest).map((entry) => `${entry.name}:${entry.tag}`);
  const annotations = image.manifest.annotations ?? {};
  const output = {
    ref: args.ref,
    digest: image.manifestDigest,
    tags,
    source: annotations['org.strata.source'],
    sourceManifest: annotations['org.strata.source.manifest'],
    created: annotations['org.opencontainers.image.created'],
    platform: `${image.config.os ?? 'linux'}/${image.config.architecture ?? '?'}`,
    size: image.layers.reduce((sum, layer) => sum + layer.size, 0),
    layers: image.layers.map((layer) => ({ digest: layer.digest, size: layer.size, format: layer.format, diffId: layer.diffId, path: layer.path })),
    config: image.config,
    annotations,
  };
  process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  return 0;
}

export type { ImportArgs };

export async function importCommand(args: ImportArgs): Promise<number> {
  const parsed = parseImageSource(args.source);
  if (parsed) return (await import('./import.js')).importImageCommand(args, parsed);
  if (args.insecure || args.platform || args.flatten) {
    throw userError('E_BAD_SOURCE', `--${args.insecure ? 'insecure' : args.platform ? 'platform' : 'flatten'} is for image sources (docker://, oci:, archives), not ${args.source.split(':')[0]}:`, { hint: 'drop it' });
  }
  if (!args.tag) throw userError('E_BAD_REF', `importing ${args.source} needs --tag NAME:TAG`, { hint: 'name the image, e.g. --tag myimage:1' });
  const { config, store } = await openStore();
  const { storeWriteRoute, writeThroughOwner } = await import('./store-write.js');
  const route = await storeWriteRoute(config);
  if (route.how === 'direct') {
    const { importLayer } = await import('../../store/write/requests.js');
    process.stdout.write(`${await importLayer(config, store, { sourceText: args.source, tag: args.tag, base: args.base })}\n`);
    return 0;
  }
  // Someone else writes the store: the directory or tar is read here, as this user, and relayed.
  const local = await localLayerSource(args.source);
  const outcome = await writeThroughOwner(route, { op: 'import-layer', sourceText: args.source, what: `${local.kind === 'dir' ? 'directory' : 'layer tar'} ${local.path}`, tag: args.tag, base: args.base }, async () => layerSourceBytes(local));
  if (outcome.digest) process.stdout.write(`${outcome.digest}\n`);
  return outcome.status;
  return 0;
}
