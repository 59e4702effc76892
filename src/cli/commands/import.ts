// `strata import SOURCE [--tag NAME:TAG]`: the manifest digest on stdout, progress on a terminal
// and one summary line on stderr. The store's owner writes directly; anyone else's write goes
// through the owner's writer (store/write/through-owner.ts), with the source read here, as them.

import type { Compression } from '../../config/types.js';
import { userError } from '../../errors.js';
import { layerSourceBytes, localLayerSource } from '../../store/import/layer-source.js';
import { hostPlatform, parsePlatform } from '../../store/sources/manifest.js';
import { openImageSource, parseImageSource, type ParsedSource } from '../../store/sources/open.js';
import { writeLayerImage, writeSourceImage } from '../../store/write/requests.js';
import { storeWriteRoute } from '../../store/write/route.js';
import { relaySourceImage, writeThroughOwner } from '../../store/write/through-owner.js';
import { openStore } from '../open-store.js';
import { terminalWriteReport } from '../write-report.js';

export interface ImportArgs {
  source: string;
  tag?: string;
  base?: string;
  platform?: string;
  insecure?: boolean;
  flatten?: boolean;
  /** This import's layer format instead of import.compression (`none`: erofs). */
  compression?: Compression;
}

export async function importCommand(args: ImportArgs): Promise<number> {
  const parsed = parseImageSource(args.source);
  return parsed ? imageSourceCommand(args, parsed) : layerSourceCommand(args);
}

/** docker://, oci:, oci-archive:, docker-archive: a whole image. */
async function imageSourceCommand(args: ImportArgs, parsed: ParsedSource): Promise<number> {
  if (args.base !== undefined) throw userError('E_BAD_SOURCE', '--base is for dir: and tar: sources', { hint: 'an image source brings all its layers; drop --base' });
  if (args.insecure && parsed.kind !== 'docker') throw userError('E_BAD_SOURCE', '--insecure is for docker:// sources', { hint: 'drop it' });
  const { config, store } = await openStore();
  const platform = args.platform ? parsePlatform(args.platform) : hostPlatform();
  const source = openImageSource(parsed, { platform, insecure: args.insecure });
  const route = await storeWriteRoute(config);
  if (route.how === 'direct') {
    process.stdout.write(`${await writeSourceImage(config, store, terminalWriteReport(), source, { sourceText: args.source, tag: args.tag, flatten: args.flatten, compression: args.compression })}\n`);
    return 0;
  }
  try {
    const outcome = await relaySourceImage(route, source, await source.resolve(), { sourceText: args.source, tag: args.tag, flatten: args.flatten, compression: args.compression });
    if (outcome.digest) process.stdout.write(`${outcome.digest}\n`);
    return outcome.status;
  } finally {
    await source.close();
  }
}

/** dir:PATH or tar:PATH: one new layer, on top of --base if given. */
async function layerSourceCommand(args: ImportArgs): Promise<number> {
  if (args.insecure || args.platform || args.flatten) {
    throw userError('E_BAD_SOURCE', `--${args.insecure ? 'insecure' : args.platform ? 'platform' : 'flatten'} is for image sources (docker://, oci:, archives), not ${args.source.split(':')[0]}:`, { hint: 'drop it' });
  }
  if (!args.tag) throw userError('E_BAD_REF', `importing ${args.source} needs --tag NAME:TAG`, { hint: 'name the image, e.g. --tag myimage:1' });
  const { config, store } = await openStore();
  const route = await storeWriteRoute(config);
  if (route.how === 'direct') {
    process.stdout.write(`${await writeLayerImage(config, store, terminalWriteReport(), { sourceText: args.source, tag: args.tag, base: args.base, compression: args.compression })}\n`);
    return 0;
  }
  const local = await localLayerSource(args.source);
  const outcome = await writeThroughOwner(route, { op: 'import-layer', sourceText: args.source, what: `${local.kind === 'dir' ? 'directory' : 'layer tar'} ${local.path}`, tag: args.tag, base: args.base, compression: args.compression }, async () => layerSourceBytes(local));
  if (outcome.digest) process.stdout.write(`${outcome.digest}\n`);
  return outcome.status;
}
