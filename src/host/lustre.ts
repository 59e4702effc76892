// Lustre layout hints for new store files: `lfs setstripe` creates the (empty) file with the
// wanted stripe count before the writer opens it (a truncating open keeps the layout). Best effort:
// without lfs, or off Lustre, nothing happens and nothing fails.

import { existsSync } from 'node:fs';
import { runTool } from './exec.js';
import { TOOLS } from './tools.js';

export async function stripeNewFile(path: string, stripeCount: number): Promise<boolean> {
  if (stripeCount === 0 || !existsSync(TOOLS.lfs)) return false;
  const result = await runTool('lfs', ['setstripe', '-c', String(stripeCount), path]).catch(() => undefined);
  return result?.exitCode === 0;
}
