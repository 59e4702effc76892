// `strata resolve REF`: the manifest digest a job will run, as the SPANK plugin and the PBS hook ask
// for it at submit time; an image not in the store yet is imported on first use where the site
// allows it (store/write/on-first-use.ts). Here: the arguments, and what the user sees.

import { isatty, WriteStream } from 'node:tty';
import { parseMountRequests } from '../../runtime/job/request.js';
import type { SourceImage } from '../../store/sources/types.js';
import { resolveOrImport, type FirstUseReport } from '../../store/write/on-first-use.js';
import { progressLine } from '../progress.js';
import { openStore } from '../open-store.js';

export async function resolveCommand(args: { ref: string; recheck?: boolean; mounts?: string }): Promise<number> {
  // The SPANK plugin hands the mount list over at submit: a bad one fails sbatch, not the job.
  if (args.mounts !== undefined) parseMountRequests(args.mounts, { relativeTo: process.cwd() });
  const { config, store } = await openStore();
  const recheck = args.recheck === true || isTrue(process.env.STRATA_IMPORT_RECHECK);
  process.stdout.write(`${await resolveOrImport(config, store, args.ref, { recheck, report: firstUseReport() })}\n`);
  return 0;
}

const isTrue = (value: string | undefined) => value !== undefined && /^(1|true|yes|y)$/i.test(value.trim());

/** Progress goes to the SPANK plugin's terminal, opened only once an import starts. */
function firstUseReport(): FirstUseReport {
  let progress: { stream: WriteStream | undefined } | undefined;
  const out = () => (progress ??= { stream: progressStream() }).stream;
  return { say: (line) => say(out(), line), countLayers: (image, label) => countingLayers(image, out(), label) };
}

/**
 * Where progress goes: the terminal the SPANK plugin hands over as STRATA_PROGRESS_FD (our stderr
 * is its pipe then), else nowhere: run from a terminal by hand, the writer draws progress itself on
 * the stderr we share; in a pipe or a log, nothing but the one summary line.
 */
function progressStream(): WriteStream | undefined {
  const fd = Number(process.env.STRATA_PROGRESS_FD);
  if (!Number.isInteger(fd) || fd < 3 || !isatty(fd)) return undefined;
  const stream = new WriteStream(fd);
  // Writes to a terminal are synchronous: nothing is lost, and the open stream must not keep us running.
  stream.unref();
  return stream;
}

function say(out: WriteStream | undefined, line: string): void {
  // To stderr as well: the SPANK plugin allows an import more time once it reads "strata: importing".
  if (line.startsWith('importing')) process.stderr.write(`strata: ${line}\n`);
  out?.write(`strata: ${line}\n`);
}

/** The layers' bytes as the writer asks for them, counted for the progress line. */
function countingLayers(image: SourceImage, out: WriteStream | undefined, label: string) {
  if (!out) return undefined;
  const display = progressLine(`importing ${label}`, out);
  display.progress.resolved?.({ layers: image.layers.length, bytes: image.layers.reduce((sum, layer) => sum + (layer.size ?? 0), 0) || undefined });
  const layerBytes = async (index: number) => {
    const stream = await image.layers[index].open();
    return (async function* () {
      for await (const chunk of stream) {
        display.progress.bytes?.(chunk.length);
        yield chunk;
      }
      display.progress.layerDone?.({ index, reused: false });
    })();
  };
  return { layerBytes, stop: () => display.stop() };
}
