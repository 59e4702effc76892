/*
 * strata SPANK plugin: `--container-*` options, submit-time pinning, and task entry. The SPANK
 * entry points only dispatch (see strata.h for the parts):
 *
 *   local (srun) and allocator (sbatch, salloc) context, slurm_spank_init_post_opt: submit.c
 *     validates the options, pins the image with `strata resolve` and hands them to the prolog.
 *
 *   remote context (slurmstepd), in each task process before exec:
 *     slurm_spank_task_init_privileged (root): if the prolog recorded a user error for the job,
 *       remember it; else chroot into <runtime_dir>/jobs/<jobid>/rootfs, set no_new_privs and
 *       apply the image environment. Slurm then drops privileges as usual.
 *     slurm_spank_task_init (the user, stdio connected to the task's): print the remembered
 *       error on the task's stderr and end the task with exit status 1, or chdir to the
 *       container working directory given with --container-workdir.
 *
 * The plugin never mounts anything: the prolog prepares the rootfs, the epilog removes it.
 * It defines no slurm_spank_job_prolog/epilog on purpose: with one, slurmd strips SPANK option
 * variables from the prolog environment (see docs/slurm.md).
 */

#include <stdlib.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "strata.h"

SPANK_PLUGIN(strata, 1);

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();

	if (config_parse(ac, av) < 0)
		return -1;
	if (ctx == S_CTX_LOCAL || ctx == S_CTX_ALLOCATOR || ctx == S_CTX_REMOTE)
		return options_register(sp);
	return 0;
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();

	/*
	 * A rejected submission ends sbatch/srun/salloc here, with only our message (as Shifter
	 * does); returning -1 would add Slurm's generic plugin-failure lines to it.
	 */
	if ((ctx == S_CTX_LOCAL || ctx == S_CTX_ALLOCATOR) && submit_side(sp) < 0)
		exit(1);
	return 0;
}

int slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
	if (!spank_remote(sp))
		return 0;
	task_enter(sp);
	return 0; /* failures are reported in slurm_spank_task_init, where stderr is the task's */
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	if (!spank_remote(sp))
		return 0;
	task_start(sp);
	return 0;
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	options_free();
	return 0;
}
