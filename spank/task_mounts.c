/*
 * The mounts a task makes for itself before it enters the container, in a mount namespace of its
 * own (root, slurm_spank_task_init_privileged):
 *   - the job's /tmp and /dev/shm from Slurm, when Slurm gave the job its own (job_container/tmpfs):
 *     Slurm's plugin joins each task to the job's mount namespace, where /tmp is the job's own
 *     directory under job_container.conf's BasePath and /dev/shm a tmpfs of the job's, just before
 *     this hook. The container's are then the same (files staged by the site's prolog or by a step
 *     on the host are there), not strata's own /tmp tmpfs, which stays mounted underneath, unused,
 *     nor the node's /dev/shm;
 *   - the step's PMIx directories (pmix.c).
 * A task whose /tmp (/dev/shm) is slurmstepd's own has none of Slurm's: strata's tmpfs (the node's
 * /dev/shm) stays the container's. The namespace is a slave of the one the task was in, as in pmix.c: concurrent
 * tasks never see or race on each other's binds, and nothing is left mounted when the task ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "untrusted.h"
#include "pmix.h"
#include "strata.h"

/* A directory Slurm may give the job a private copy of (job_container/tmpfs: /tmp, /dev/shm). */
struct job_dir {
	const char *path;
	int own_copy;      /* the task's is not slurmstepd's */
	struct stat own;   /* the task's */
	struct stat host;  /* slurmstepd's */
};

/*
 * Whether the task's `dir->path` is not slurmstepd's (the parent's, seen through its root in its
 * own mount namespace). 0, or -1 with the reason in `why`. Both paths are root's (the node's /,
 * /proc), never the user's.
 */
static int job_dir_of_slurm(struct job_dir *dir, char *why, size_t len)
{
	char parent[64];

	dir->own_copy = 0;
	snprintf(parent, sizeof(parent), "/proc/%d/root%s", (int)getppid(), dir->path);
	if (stat(parent, &dir->host) != 0)
		return 0; /* none on the host: nothing of Slurm's to follow either */
	if (stat(dir->path, &dir->own) != 0) {
		snprintf(why, len, "cannot find the job's %s: %s", dir->path, strerror(errno));
		return -1;
	}
	dir->own_copy = dir->own.st_dev != dir->host.st_dev || dir->own.st_ino != dir->host.st_ino;
	return 0;
}

/*
 * Bind the task's `dir` over the same path in the container, if the container still shows
 * `expected` there (strata's own /tmp, the node's /dev/shm): a --container-mounts on it is the
 * user's choice and stays. 1 when bound, 0 when left, -1 with the reason in `why`.
 */
static int bind_job_dir(int rootfd, const struct job_dir *dir, const struct stat *expected, char *why, size_t len)
{
	struct mount_attr attr;
	struct stat st;
	int target, tree = -1, rc = -1;
	const char *stage = "find it in the container";

	target = open_in_root(rootfd, dir->path, 0);
	if (target < 0)
		goto out;
	if (fstat(target, &st) != 0)
		goto out;
	if (st.st_dev != expected->st_dev || st.st_ino != expected->st_ino) {
		rc = 0;
		goto out;
	}
	stage = "bind it";
	/* The task's own copy of it now (only a mount of the caller's namespace can be cloned). */
	tree = open_tree(AT_FDCWD, dir->path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW);
	if (tree < 0)
		goto out;
	if (fstat(tree, &st) != 0 || st.st_dev != dir->own.st_dev || st.st_ino != dir->own.st_ino) {
		errno = ESTALE;
		goto out;
	}
	memset(&attr, 0, sizeof(attr));
	attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
	attr.propagation = MS_PRIVATE;
	if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0 ||
	    move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
		goto out;
	slurm_debug(TAG ": the container's %s is the job's own from Slurm", dir->path);
	rc = 1;
out:
	if (rc < 0)
		snprintf(why, len, "cannot make the job's %s from Slurm the container's (%s: %s)", dir->path, stage, strerror(errno));
	if (tree >= 0)
		close(tree);
	if (target >= 0)
		close(target);
	return rc;
}

int task_mounts(spank_t sp, const char *rootfs, const char *strata_tmp, const char *pmix_tmpdir, char *why, size_t len)
{
	struct job_dir dirs[] = { { .path = "/tmp" }, { .path = "/dev/shm" } };
	enum { TMP, SHM, N_DIRS };
	struct stat own_tmp;
	int rootfd, rc = 0, any = 0;
	int have_own_tmp = stat(strata_tmp, &own_tmp) == 0;

	for (int i = 0; i < N_DIRS; i++) {
		if (job_dir_of_slurm(&dirs[i], why, len) < 0)
			return -1;
		any |= dirs[i].own_copy;
	}
	if (!any && !pmix_step_active())
		return 0;
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) {
		snprintf(why, len, "cannot give the task a mount namespace of its own: %s", strerror(errno));
		return -1;
	}
	rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rootfd < 0) {
		snprintf(why, len, "cannot open the container root %s: %s", rootfs, strerror(errno));
		return -1;
	}
	/* Mount points for the PMIx client directory may be made in strata's own /tmp only. */
	dev_t tmp_dev = have_own_tmp ? own_tmp.st_dev : 0;
	if (dirs[TMP].own_copy && have_own_tmp) {
		rc = bind_job_dir(rootfd, &dirs[TMP], &own_tmp, why, len);
		if (rc == 1)
			tmp_dev = 0;
	}
	/* The container's /dev is the node's, bound with its submounts: so is its /dev/shm. */
	if (rc >= 0 && dirs[SHM].own_copy)
		rc = bind_job_dir(rootfd, &dirs[SHM], &dirs[SHM].host, why, len);
	if (rc >= 0)
		rc = pmix_bind_step(sp, rootfd, tmp_dev, pmix_tmpdir, why, len);
	close(rootfd);
	return rc < 0 ? -1 : 0;
}
