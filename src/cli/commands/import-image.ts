// `strata import docker://... | oci:... | oci-archive:... | docker-archive:...`: progress on a
// terminal, the manifest digest on stdout, one summary line on stderr and in the log.

import { userError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { importFromSource } from '../../store/image-import.js';
import { hostPlatform, parsePlatform } from '../../store/sources/manifest.js';
import { openImageSource, type ParsedSource } from '../../store/sources/open.js';
import { importProgressDisplay } from '../progress.js';
import { humanBytes, openStore, type ImportArgs } from './images.js';

export async function importImageCommand(args: ImportArgs, parsed: ParsedSource): Promise<number> {
  if (args.base !== undefined) throw userError('E_BAD_SOURCE', '--base is for dir: and tar: sources', { hint: 'an image source brings all its layers; drop --base' });
  if (args.insecure && parsed.kind !== 'docker') throw userError('E_BAD_SOURCE', '--insecure is for docker:// sources', { hint: 'drop it' });
  const { config, store } = await openStore();
  const platform = args.platform ? parsePlatform(args.platform) : hostPlatform();
  const source = openImageSource(parsed, { platform, insecure: args.insecure });
  // No log file configured: the summary line on stderr is the record (no JSON on the terminal).
  const log = config.log.file ? createLogger(config, { phase: 'import' }) : undefined;
  const display = importProgressDisplay(`importing ${source.description}`);
  let result;
  try {
    result = await importFromSource(store, source, {
      sourceText: args.source,
      tag: args.tag,
      compression: config.import.compression,
      parallelLayers: config.import.parallelLayers,
      flatten: args.flatten,
      flattenAbove: config.import.flattenAbove,
      lustreStripeCount: config.import.lustreStripeCount,
      progress: display.progress,
    });
  } catch (error) {
    display.stop();
    log?.error('import failed', { source: args.source, error: (error as Error).message });
    throw error;
  }
  display.stop();
  const seconds = (result.durationMs / 1000).toFixed(2);
  const summary = `imported ${result.tag} (${result.digest}) from ${source.description}: ${result.flattened ? 'flattened to 1 layer' : `${result.layers} layers`} (${result.reusedLayers} already stored), ${humanBytes(result.bytesRead)} read, in ${seconds}s`;
  process.stdout.write(`${result.digest}\n`);
  process.stderr.write(`${summary}\n`);
  log?.info('image imported', { source: args.source, tag: result.tag, digest: result.digest, layers: result.layers, reused: result.reusedLayers, bytes: result.bytesRead, durationMs: Math.round(result.durationMs) });
  return 0;
}
