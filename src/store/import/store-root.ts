// The first import creates the store. Where the site configured a store path, only inside an
// existing parent: if the shared filesystem is not mounted, a store quietly created on the local
// disk would hide the problem. The built-in default (/var/lib/strata/store, the embedded store of
// a machine without a shared filesystem) is on the local disk by design: its parents are created.

import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { defaultConfig } from '../../config/validate.js';
import { errnoCode, nodeError } from '../../errors.js';

/** The store path strata uses when no configuration names one. */
export const builtinStorePath = (): string => defaultConfig().store.path;

export async function createStoreRoot(root: string): Promise<void> {
  const builtin = resolve(root) === resolve(builtinStorePath());
  try {
    if (builtin) await mkdir(dirname(root), { recursive: true, mode: 0o755 });
    await mkdir(root, { mode: 0o755 });
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return;
    throw nodeError('E_STORE_UNREACHABLE', `cannot create the image store ${root}: ${(error as Error).message}`, {
      hint: errnoCode(error) === 'ENOENT' ? `create ${dirname(root)} first (is the shared filesystem mounted?) or set store.path in strata.yaml` : 'check permissions on the store path',
    });
  }
}
