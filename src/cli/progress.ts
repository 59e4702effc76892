// Import progress: on a terminal, one line redrawn in place (layers done, bytes read); in a log or
// a pipe, nothing until the caller prints its one summary line.

import type { ImportProgress } from '../store/import/source-image.js';
import { humanBytes } from '../format.js';

export interface ProgressDisplay {
  progress: ImportProgress;
  /** Clears the line (call before printing anything else). */
  stop(): void;
}

export function progressLine(label: string, out: NodeJS.WriteStream = process.stderr): ProgressDisplay {
  let layers = 0;
  let done = 0;
  let reused = 0;
  let bytes = 0;
  let total: number | undefined;
  const progress: ImportProgress = {
    resolved: (info) => {
      layers = info.layers;
      total = info.bytes;
    },
    bytes: (n) => (bytes += n),
    layerDone: (info) => {
      done++;
      if (info.reused) {
        reused++;
        if (total !== undefined && info.size !== undefined) total -= info.size;
      }
    },
  };
  if (!out.isTTY) return { progress, stop: () => undefined };
  const draw = () => {
    const width = out.columns || 80;
    const amount = total ? `${humanBytes(bytes)}/${humanBytes(total)}` : humanBytes(bytes);
    const line = `${label}: layers ${done}/${layers || '?'}${reused ? ` (${reused} already stored)` : ''}, ${amount}`;
    out.write(`\r\x1b[K${line.slice(0, width - 1)}`);
  };
  const timer = setInterval(draw, 200);
  timer.unref();
  return {
    progress,
    stop: () => {
      clearInterval(timer);
      out.write('\r\x1b[K');
    },
  };
}
