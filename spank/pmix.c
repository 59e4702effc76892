/*
 * Slurm's PMIx wire-up inside the container (`srun --mpi=pmix`).
 *
 * Slurm's mpi/pmix plugin (src/plugins/mpi/pmix, pmixp_info.c and pmixp_client.c) starts a PMIx
 * server in slurmstepd before the tasks are forked, and makes two directories for the step:
 *   - the server's:  <SlurmdSpoolDir>/pmix.<job>.<step>/, exported as PMIX_SERVER_TMPDIR; the
 *     clients map the server's shared-memory data store (gds ds12/ds21) and find its rendezvous
 *     files there, by the host path the server gives them;
 *   - the clients':  <SLURM_PMIX_TMPDIR, else TmpFS, else /tmp>/spmix_appdir_<uid>_<job>.<step>,
 *     handed to the clients as PMIX_NSDIR (scratch space, removed by Slurm at step end).
 * Both exist only from step start on, after the prolog: they are bound here, in the task's own
 * process, before it enters the container, at the same paths inside. Only this step's
 * directories, never the spool directory itself (it holds every job's credentials and scripts).
 *
 * The binds are made in a mount namespace of the task's own (task_mounts.c; a slave of the node's, so the
 * epilog's unmounts still reach it): concurrent tasks and steps never see or race on each other's
 * binds, and nothing is left mounted in the node's namespace when the task ends. The mount points
 * are made in the job's own layer or its /tmp, resolved in the rootfs by descriptor
 * (helper/untrusted.c): the rootfs is a tree the job's user and the image control. Under
 * --container-readonly the job's layer is made writable for that only through a private, detached
 * clone of the rootfs mount, so the task itself still sees a read-only container.
 *
 * The server's PMIX_PTL_MODULE, PMIX_SECURITY_MODE and PMIX_GDS_MODULE reach the task as Slurm
 * sets them and are not turned into PMIX_MCA_* here (enroot's 50-slurm-pmi.sh hook does): the
 * client library does that itself, as its release needs (PMIx 3 all three, 4 and 5 only
 * psec), and picks from the server's gds list the modules it has. An MCA list instead makes the
 * client open every named component: a PMIx 4 client (Debian 12's Open MPI) under a PMIx 5
 * server (Slurm 24.11 in Debian 13, PMIX_GDS_MODULE=shmem2,hash) printed "A requested component
 * was not found ... Framework: gds Component: shmem2" once per rank.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "untrusted.h" /* helper/, on the include path (Makefile HELPER) */
#include "pmix.h"

#define TAG "strata"

int pmix_client_dir(char *buf, size_t len, const char *base, uid_t uid, uint32_t job, uint32_t step)
{
	size_t base_len = strlen(base);

	while (base_len > 1 && base[base_len - 1] == '/')
		base_len--;
	int n = snprintf(buf, len, "%.*s/spmix_appdir_%u_%u.%u", (int)base_len, base, (unsigned)uid, job, step);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/*
 * The mount point `path` under the read-only rootfs `rootfd`: made in a detached clone of the
 * rootfs mount with the read-only flag cleared (that clone only; it is dissolved on close), then
 * found again in the task's tree. Only on the rootfs mount itself, as open_in_root creates.
 */
static int make_in_readonly_root(int rootfd, const char *path)
{
	struct mount_attr attr;
	int clone, made;

	clone = open_tree(rootfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (clone < 0)
		return -1;
	memset(&attr, 0, sizeof(attr));
	attr.attr_clr = MOUNT_ATTR_RDONLY;
	if (mount_setattr(clone, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
		close(clone);
		return -1;
	}
	made = open_in_root(clone, path, 'd');
	if (made >= 0)
		close(made);
	close(clone);
	return made < 0 ? -1 : open_in_root(rootfd, path, 0);
}

/* The source opened as the job's user (what the user may reach decides), the target resolved and
 * made by descriptor, the mount moved from descriptor to descriptor. nosuid,nodev,noexec, as
 * enroot binds it. */
int pmix_bind_dir(int rootfd, dev_t job_tmp_dev, const char *path, uid_t uid, gid_t gid, char *why, size_t why_len)
{
	struct mount_attr attr;
	struct stat st;
	int source, target = -1, tree = -1, rc = -1;
	const char *stage = "open it";

	source = open_as_user(path, uid, gid, NULL);
	if (source < 0)
		goto out;
	stage = "check it";
	if (fstat(source, &st) != 0)
		goto out;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		goto out;
	}
	stage = "make its mount point";
	target = open_in_root_also(rootfd, path, 'd', job_tmp_dev);
	if (target < 0 && errno == EROFS)
		target = make_in_readonly_root(rootfd, path);
	if (target < 0)
		goto out;
	stage = "bind it";
	tree = open_tree(source, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0)
		goto out;
	memset(&attr, 0, sizeof(attr));
	attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
	attr.propagation = MS_PRIVATE;
	if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0 ||
	    move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
		goto out;
	slurm_debug(TAG ": bound Slurm's PMIx directory %s into the container", path);
	rc = 0;
out:
	if (rc != 0)
		snprintf(why, why_len, "cannot make Slurm's PMIx directory %s visible in the container (%s: %s)", path, stage,
			 strerror(errno));
	if (tree >= 0)
		close(tree);
	if (target >= 0)
		close(target);
	if (source >= 0)
		close(source);
	return rc;
}

int pmix_step_active(void)
{
	/*
	 * slurmstepd's own environment (not the job's, which the user sets): mpi/pmix exports the
	 * server directory there when it starts the step's server, before the tasks are forked.
	 * Without it the step runs no PMIx server (another --mpi, or none).
	 */
	const char *dir = getenv("PMIX_SERVER_TMPDIR");
	return dir != NULL && dir[0] == '/';
}

int pmix_bind_step(spank_t sp, int rootfd, dev_t tmp_dev, const char *tmpdir_base, char *why, size_t why_len)
{
	char server[PATH_MAX], client[PATH_MAX], base[PATH_MAX];
	uint32_t job = 0, step = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	int rc;

	if (!pmix_step_active())
		return 0;
	if (snprintf(server, sizeof(server), "%s", getenv("PMIX_SERVER_TMPDIR")) >= (int)sizeof(server)) {
		snprintf(why, why_len, "Slurm's PMIx directory path is too long");
		return -1;
	}
	for (size_t n = strlen(server); n > 1 && server[n - 1] == '/'; n--)
		server[n - 1] = '\0';
	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS || spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS || spank_get_item(sp, S_JOB_GID, &gid) != ESPANK_SUCCESS) {
		snprintf(why, why_len, "cannot identify the job for its PMIx directories");
		return -1;
	}
	/* Where Slurm made the client directory: SLURM_PMIX_TMPDIR of the job wins, as in pmixp_info.c. */
	if (spank_getenv(sp, "SLURM_PMIX_TMPDIR", base, sizeof(base)) != ESPANK_SUCCESS || base[0] != '/')
		snprintf(base, sizeof(base), "%s", tmpdir_base);
	if (pmix_client_dir(client, sizeof(client), base, uid, job, step) < 0)
		client[0] = '\0';

	rc = pmix_bind_dir(rootfd, tmp_dev, server, uid, gid, why, why_len);
	/* The client directory is scratch space: a site whose TmpFS strata was not told about only
	 * loses the bind, never the step. */
	if (rc == 0 && client[0] && access(client, F_OK) == 0)
		rc = pmix_bind_dir(rootfd, tmp_dev, client, uid, gid, why, why_len);
	return rc;
}
