// `strata images` and `strata inspect`: what the store holds, as admins and users see it.

import { humanBytes } from '../../format.js';
import { userUsage } from '../../store/write/quota.js';
import { openStore } from '../open-store.js';

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
