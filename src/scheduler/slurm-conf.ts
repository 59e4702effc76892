// Reading slurm.conf (pure): what install-slurm, the doctor and device checks need of it.

/**
 * The file `strata install-slurm` writes in plugstack.conf.d. Slurm loads the included files in
 * name order, and strata's plugin must load after every other one: it chroots into the image in
 * task_init_privileged, so a plugin after it would run its own privileged task hook as root inside
 * the image (docs/slurm.md). "zz-" sorts after the names sites and packages give their snippets.
 */
export const PLUGSTACK_SNIPPET = 'zz-strata.conf';
/** The name install-slurm used before PLUGSTACK_SNIPPET: an upgrade renames it (docs/decisions.md). */
export const OLD_PLUGSTACK_SNIPPET = 'strata.conf';

/**
 * The PrologFlags that make the prolog run on every node at allocation: Alloc, and those that imply
 * it (slurm.conf(5)): Contain and X11 (22.05), ForceRequeueOnFail (23.02+), RunInJob (24.05+).
 * A site on 24.11 with PrologFlags=RunInJob must not be told to add Alloc.
 */
const ALLOC_FLAGS = ['alloc', 'contain', 'x11', 'forcerequeueonfail', 'runinjob'];

/** PrologFlags as a list of lower-case flags. */
export const prologFlagList = (prologFlags: string | undefined): string[] => (prologFlags ?? '').split(',').map((flag) => flag.trim().toLowerCase());

/** Whether PrologFlags makes the prolog run on every node at allocation. */
export function prologRunsAtAllocation(prologFlags: string | undefined): boolean {
  return prologFlagList(prologFlags).some((flag) => ALLOC_FLAGS.includes(flag));
}

/** slurm.conf's Key=Value settings (last one wins; node and partition lines are skipped). */
export function parseSlurmConf(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const match = /^([A-Za-z]+)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    const key = match[1].toLowerCase();
    if (key === 'nodename' || key === 'partitionname' || key === 'nodeset' || key === 'downnodes' || key === 'frontendname') continue;
    settings.set(key, match[2].trim());
  }
  return settings;
}
