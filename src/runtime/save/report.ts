// Telling the job's user how --container-save went: the epilog runs after the job, so the line is
// appended to the job's own output file (SLURM_JOB_STDERR, else SLURM_JOB_STDOUT, as Slurm gives
// them to the epilog), as the user: root never opens a path the user chose. Where Slurm gives no
// plain path (an interactive srun/salloc, or a file name pattern with %), the log has it.

import { runAsUser, type JobUser } from '../../host/as-user.js';
import { TOOLS } from '../../host/tools.js';

/** The job output file a line can go to, or undefined. */
export function jobOutputFile(env: NodeJS.ProcessEnv): string | undefined {
  for (const name of ['SLURM_JOB_STDERR', 'SLURM_JOB_STDOUT']) {
    const path = env[name];
    if (path?.startsWith('/') && !path.includes('%') && path !== '/dev/null' && !/[\x00-\x1f]/.test(path)) return path;
  }
  return undefined;
}

/** Appends `line` to the job's output file as the user; false when there is none or it failed. */
export async function tellJobUser(env: NodeJS.ProcessEnv, user: JobUser, line: string): Promise<boolean> {
  const file = jobOutputFile(env);
  if (!file) return false;
  // O_APPEND without O_CREAT: only a file that is already there (the job made it) gets the line.
  const { status } = await runAsUser(user, [TOOLS.sh, '-c', '[ -f "$2" ] && printf "%s\\n" "$1" >> "$2"', 'sh', line, file]);
  return status === 0;
}
