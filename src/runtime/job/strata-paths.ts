// Checks on a user's --container-mounts against strata's own paths (pure): strata's runtime dir may
// be neither the source nor the target, nor may the store be covered. Whether the user may read a
// source is decided by the mount helper, which opens it as the user (host/job-mounts.ts); it also
// refuses a source that only resolves into the runtime dir through links.

import type { Config } from '../../config/types.js';
import { userError } from '../../errors.js';
import type { BindRequest } from './request.js';
import { isWithin } from '../../path-within.js';


const bad = (bind: BindRequest, why: string) =>
  userError('E_BAD_MOUNT', `mount ${bind.source}:${bind.target} refused: ${why}`, { hint: 'mount a path of your own, e.g. in your home or project directory' });

/** Refuse user mounts of strata's own paths (pure). */
export function checkStrataPaths(mounts: BindRequest[], config: Pick<Config, 'runtimeDir' | 'store'>): void {
  for (const bind of mounts) {
    if (isWithin(bind.source, config.runtimeDir)) throw bad(bind, `${bind.source} is inside strata's runtime dir (other jobs' state)`);
    for (const [dir, name] of [[config.runtimeDir, 'runtime dir'], [config.store.path, 'image store']]) {
      if (isWithin(bind.target, dir) || isWithin(dir, bind.target)) throw bad(bind, `${bind.target} would cover strata's ${name} ${dir}`);
    }
  }
}
