/*
 * Slurm's PMIx wire-up inside the container (`srun --mpi=pmix`): the step's PMIx directories
 * bound at their own paths in a mount namespace private to the task. See pmix.c and
 * docs/slurm.md ("MPI").
 */
#ifndef STRATA_PMIX_H
#define STRATA_PMIX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <slurm/spank.h>

/* The step runs Slurm's PMIx server (its PMIX_SERVER_TMPDIR is in slurmstepd's environment). */
int pmix_step_active(void);

/*
 * Root, in the task's process before it enters the container (task_init_privileged), already in
 * a mount namespace of its own (task_mounts.c): when the step runs Slurm's PMIx server, bind the
 * step's server and client directories into the rootfs `rootfd` at their host paths. `tmp_dev`
 * is the job's /tmp filesystem on the node where mount points may be made (0: none). `tmpdir_base`
 * is where Slurm makes the client directory unless the job sets SLURM_PMIX_TMPDIR (slurm.conf
 * TmpFS, default /tmp). 0 when done or nothing to do; -1 with a message for the user in `why`.
 */
int pmix_bind_step(spank_t sp, int rootfd, dev_t tmp_dev, const char *tmpdir_base, char *why, size_t why_len);

/*
 * Bind the host directory `path` at the same path in the rootfs `rootfd` (in the caller's mount
 * namespace), making the mount point in the rootfs mount or on `job_tmp_dev` (0: none); under a
 * read-only rootfs mount, through a writable clone of it. 0, or -1 with the reason in `why`.
 */
int pmix_bind_dir(int rootfd, dev_t job_tmp_dev, const char *path, uid_t uid, gid_t gid, char *why, size_t why_len);

/* Slurm's client directory of a step: <base>/spmix_appdir_<uid>_<job>.<step> (pmixp_info.c). */
int pmix_client_dir(char *buf, size_t len, const char *base, uid_t uid, uint32_t job, uint32_t step);

#endif
