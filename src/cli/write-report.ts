// A store write's report on the terminal: the progress line (cli/progress.ts) and summary lines
// on stderr, so stdout stays the digest a script reads.

import type { WriteReport } from '../store/write/requests.js';
import { progressLine } from './progress.js';

export function terminalWriteReport(out: NodeJS.WriteStream = process.stderr): WriteReport {
  return {
    importing: (label) => progressLine(label, out),
    say: (line) => void out.write(`${line}\n`),
  };
}
