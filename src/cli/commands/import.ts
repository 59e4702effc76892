// `strata import docker://... | oci:... | oci-archive:... | docker-archive:...`: progress on a
// terminal, the manifest digest on stdout, one summary line on stderr and in the log. When the
// caller is not the store's owner, the owner's writer does the writing (cli/commands/store-write.ts).

import { userError } from '../../errors.js';
import type { LayerBytes } from '../../store/write/relay/caller.js';
import type { WriteRequest } from '../../store/write/relay/writer.js';
import type { ImageSource, SourceImage } from '../../store/sources/types.js';
import type { WriteRoute } from '../../store/write/route.js';
import { hostPlatform, parsePlatform } from '../../store/sources/manifest.js';
import { openImageSource, type ParsedSource } from '../../store/sources/open.js';
import { openStore } from '../open-store.js';
import type { ImportArgs } from './import-args.js';
import { importImageSource } from '../../store/write/requests.js';
import { storeWriteRoute, writeThroughOwner } from './store-write.js';

export async function importImageCommand(args: ImportArgs, parsed: ParsedSource): Promise<number> {
  if (args.base !== undefined) throw userError('E_BAD_SOURCE', '--base is for dir: and tar: sources', { hint: 'an image source brings all its layers; drop --base' });
  if (args.insecure && parsed.kind !== 'docker') throw userError('E_BAD_SOURCE', '--insecure is for docker:// sources', { hint: 'drop it' });
  const { config, store } = await openStore();
  const platform = args.platform ? parsePlatform(args.platform) : hostPlatform();
  const source = openImageSource(parsed, { platform, insecure: args.insecure });
  const route = await storeWriteRoute(config);
  if (route.how === 'direct') {
    process.stdout.write(`${await importImageSource(config, store, source, { sourceText: args.source, tag: args.tag, flatten: args.flatten })}\n`);
    return 0;
  }
  // Someone else writes the store: the source is read here, as this user, and relayed.
  try {
    const outcome = await relayImageImport(route, source, await source.resolve(), { sourceText: args.source, tag: args.tag, flatten: args.flatten });
    if (outcome.digest) process.stdout.write(`${outcome.digest}\n`);
    return outcome.status;
  } finally {
    await source.close();
  }
}

/**
 * Hands a resolved image to the store owner's writer; the layers are read here, as this user.
 * `layerBytes` may wrap the source's streams (progress).
 */
export async function relayImageImport(
  route: Extract<WriteRoute, { how: 'relay' }>,
  source: ImageSource,
  image: SourceImage,
  fields: { sourceText: string; tag?: string; flatten?: boolean },
  layerBytes: LayerBytes = (index) => image.layers[index].open(),
) {
  const request: WriteRequest = {
    op: 'import',
    sourceText: fields.sourceText,
    description: source.description,
    tag: fields.tag,
    flatten: fields.flatten,
    image: {
      manifestDigest: image.manifestDigest,
      config: image.configBytes.toString('base64'),
      configDigest: image.configDigest,
      layers: image.layers.map(({ digest, mediaType, size }) => ({ digest, mediaType, size })),
      suggestedTag: image.suggestedTag,
    },
  };
  return writeThroughOwner(route, request, layerBytes);
}
