/*
 * Task side (slurmstepd, remote context): enter the rootfs the prolog prepared, or fail with its
 * message. task_enter runs as root in the task's process (slurm_spank_task_init_privileged),
 * task_start in the same process once Slurm dropped privileges (slurm_spank_task_init).
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "strata.h"

#ifndef SLURM_BATCH_SCRIPT
#define SLURM_BATCH_SCRIPT 0xfffffffb
#endif
#ifndef SLURM_EXTERN_CONT
#define SLURM_EXTERN_CONT 0xfffffffc
#endif

static struct {
	int fail;                 /* fail the task in task_init, printing `message` */
	char message[MSG_MAX];
	int entered;              /* chrooted */
	/* chdir here in task_init ("" = stay where Slurm put the task) */
	char workdir[PATH_MAX];
} task;

static void task_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void task_fail(const char *fmt, ...)
{
	va_list ap;

	if (task.fail)
		return;
	task.fail = 1;
	va_start(ap, fmt);
	vsnprintf(task.message, sizeof(task.message), fmt, ap);
	va_end(ap);
}

/* A file or directory only root can have written: owned by root, no group/other write, no symlink. */
static int root_owned(const char *path, mode_t type)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return -1;
	if ((st.st_mode & S_IFMT) != type || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/* `path` is a real directory (no symlink) with a file system of its own, below `parent`. */
static int is_mount_point(const char *path, const char *parent)
{
	struct stat st, pst;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && lstat(parent, &pst) == 0 && st.st_dev != pst.st_dev;
}

/* Reads a root-owned regular file (at most cap-1 bytes); returns its length or -1. */
static ssize_t read_root_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	size_t len = 0;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	while (len < cap - 1) {
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/* The prolog's one-line message for the user, made printable. */
static void load_error(const char *path)
{
	char msg[MSG_MAX];

	if (read_root_file(path, msg, sizeof(msg)) < 0) {
		task_fail("container set-up failed on this node (its message could not be read: %s)", strerror(errno));
		return;
	}
	msg[strcspn(msg, "\n")] = '\0';
	for (char *c = msg; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	if (!strncmp(msg, TAG ": ", strlen(TAG ": ")))
		memmove(msg, msg + strlen(TAG ": "), strlen(msg + strlen(TAG ": ")) + 1);
	task_fail("%s", msg[0] ? msg : "container set-up failed on this node");
}

/*
 * The batch script lives in slurmd's spool directory, which is not inside the container. Open it
 * while still outside and run it through /proc/self/fd/N (inherited across exec, not close-on-exec);
 * its #! interpreter is then found inside the container.
 */
static int batch_script_through_fd(spank_t sp)
{
	int argc = 0, fd;
	char **argv = NULL;
	char path[64];

	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 1 || argv == NULL || !argv[0]) {
		task_fail("cannot find the batch script");
		return -1;
	}
	fd = open(argv[0], O_RDONLY | O_NOFOLLOW);
	if (fd < 0) {
		task_fail("cannot open the batch script %s: %s", argv[0], strerror(errno));
		return -1;
	}
	if (fd < 10) { /* keep it out of the way of stdio and of low numbers scripts use */
		int high = fcntl(fd, F_DUPFD, 10);
		close(fd);
		fd = high;
		if (fd < 0) {
			task_fail("cannot keep the batch script open: %s", strerror(errno));
			return -1;
		}
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	argv[0] = strdup(path); /* in this task process only; the old string stays owned by slurmstepd */
	return argv[0] ? 0 : -1;
}

/*
 * srun resolves the command against the submit host's PATH (e.g. /usr/bin/cat), which the image
 * may not have. If the absolute path does not exist inside the container, look its name up in the
 * container's PATH instead.
 */
static void command_in_container(spank_t sp, const char *path_var)
{
	int argc = 0;
	char **argv = NULL;
	const char *name, *p;
	char candidate[PATH_MAX];

	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 1 || argv == NULL || !argv[0])
		return;
	if (argv[0][0] != '/' || access(argv[0], X_OK) == 0)
		return;
	name = strrchr(argv[0], '/') + 1;
	if (*name == '\0')
		return;
	for (p = path_var; p && *p;) {
		size_t n = strcspn(p, ":");
		if (n > 0 && (size_t)snprintf(candidate, sizeof(candidate), "%.*s/%s", (int)n, p, name) < sizeof(candidate) &&
		    candidate[0] == '/' && access(candidate, X_OK) == 0) {
			slurm_debug(TAG ": running %s for %s", candidate, argv[0]);
			argv[0] = strdup(candidate);
			return;
		}
		p += n + (p[n] == ':');
	}
}

void task_enter(spank_t sp)
{
	char dir[512], path[PATH_MAX], why[128], value[PATH_MAX];
	static char text[256 * 1024]; /* entry.json; static: task processes may run on a small stack */
	uint32_t jobid = 0, stepid = 0;
	uid_t uid = 0;
	int batch, batch_host, want;
	struct entry entry;
	const char *image_path = NULL;

	if (spank_get_item(sp, S_JOB_ID, &jobid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_STEPID, &stepid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS) {
		task_fail("cannot identify the job");
		return;
	}
	if (stepid == SLURM_EXTERN_CONT)
		return;
	batch = stepid == SLURM_BATCH_SCRIPT;

	/*
	 * A container job (an image option on the command line, or the pin the submit side left in
	 * the job environment) must find its container set up; any other job runs as usual.
	 */
	want = (args.value[OPT_IMAGE] && !args.from_env[OPT_IMAGE]) ||
	       job_env(sp, "SLURM_SPANK_STRATA_IMAGE_DIGEST", value, sizeof(value));
	options_from_env(sp);
	/*
	 * Options reach slurmstepd through the job environment, which --export=NONE empties; the
	 * values the submit side handed over (SLURM_SPANK_STRATA_*) are always there.
	 */
	if (!args.value[OPT_BATCH] && job_env(sp, "SLURM_SPANK_STRATA_BATCH", value, sizeof(value)))
		opt_set(OPT_BATCH, value, 1);
	if (!args.value[OPT_WORKDIR] && job_env(sp, "SLURM_SPANK_STRATA_WORKDIR", value, sizeof(value)))
		opt_set(OPT_WORKDIR, value, 1);
	batch_host = args.value[OPT_BATCH] ? parse_batch(args.value[OPT_BATCH]) == 1 : conf.batch_host;

	snprintf(dir, sizeof(dir), "%s/jobs/%u", conf.runtime_dir, jobid);
	snprintf(path, sizeof(path), "%s/error", dir);
	if (access(path, F_OK) == 0) {
		load_error(path);
		return;
	}
	snprintf(path, sizeof(path), "%s/entry.json", dir);
	if (access(path, F_OK) != 0) {
		if (want)
			task_fail("the container of job %u is not set up on this node (%s: %s); was the strata prolog run?",
				  jobid, path, strerror(errno));
		/*
		 * An image only in the job's environment, never pinned: the submit side did not run
		 * (slurmrestd, or the variable given only through --export). Never the bare host.
		 */
		else if (args.value[OPT_IMAGE] && args.from_env[OPT_IMAGE])
			task_fail("this job asks for image %s (%s in its environment), but strata's plugin never set it up: "
				  "jobs submitted through slurmrestd, or with the variable only in --export, bypass it; "
				  "submit with sbatch/srun --%s=%s, or unset %s to run without a container",
				  args.value[OPT_IMAGE], args.env_name[OPT_IMAGE], opt_names[OPT_IMAGE], args.value[OPT_IMAGE],
				  args.env_name[OPT_IMAGE]);
		return; /* not a container job */
	}
	if (batch && batch_host)
		return;

	if (root_owned(conf.runtime_dir, S_IFDIR) < 0 || root_owned(dir, S_IFDIR) < 0) {
		task_fail("refusing to use %s: not a root-owned directory", dir);
		return;
	}
	if (read_root_file(path, text, sizeof(text)) < 0) {
		task_fail("cannot read %s: %s", path, strerror(errno));
		return;
	}
	if (entry_parse(text, strlen(text), &entry, why, sizeof(why)) < 0) {
		task_fail("%s is damaged: %s", path, why);
		return;
	}
	if (entry.uid >= 0 && (uid_t)entry.uid != uid) {
		task_fail("%s belongs to uid %lld, not to this job's user (uid %u)", path, entry.uid, (unsigned)uid);
		goto out;
	}

	if (batch && batch_script_through_fd(sp) < 0)
		goto out;

	snprintf(path, sizeof(path), "%s/rootfs", dir);
	if (!is_mount_point(path, dir)) {
		task_fail("the container root %s is not mounted", path);
		goto out;
	}
	if (chroot(path) < 0 || chdir("/") < 0) {
		task_fail("cannot enter the container at %s: %s", path, strerror(errno));
		goto out;
	}
	/*
	 * No setuid or file-capability gains inside the container, whatever the image holds and
	 * however it is mounted (the image mounts are nosuid too; this also covers the binds).
	 */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		task_fail("cannot set no_new_privs: %s", strerror(errno));
		goto out;
	}

	/*
	 * Working directory: --container-workdir if given (the prolog puts it in entry.workdir);
	 * otherwise the job's own working directory, which the prolog binds at the same path and
	 * Slurm changes to right after this hook.
	 */
	task.entered = 1;
	if (args.value[OPT_WORKDIR])
		snprintf(task.workdir, sizeof(task.workdir), "%s", entry.workdir && entry.workdir[0] ? entry.workdir : args.value[OPT_WORKDIR]);

	image_path = task_env_apply(sp, &entry);
	if (!batch)
		command_in_container(sp, image_path ? image_path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
out:
	entry_free(&entry);
}

/* mkdir -p, as the calling user (mode 0755 less the umask); EEXIST at any level is fine. */
static int make_dirs(const char *path)
{
	char partial[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(partial)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(partial, path, len + 1);
	for (char *slash = partial + 1;; slash++) {
		if (*slash != '/' && *slash != '\0')
			continue;
		char keep = *slash;
		*slash = '\0';
		if (mkdir(partial, 0755) < 0 && errno != EEXIST)
			return -1;
		*slash = keep;
		if (keep == '\0')
			return 0;
	}
}

void task_start(spank_t sp)
{
	int local_task = 0;

	if (task.fail) {
		/* One copy of the message per node is enough: print it from the first local task. */
		if (spank_get_item(sp, S_TASK_ID, &local_task) != ESPANK_SUCCESS || local_task == 0) {
			char host[256] = "";
			gethostname(host, sizeof(host) - 1);
			fprintf(stderr, TAG ": %s: %s\n", host, task.message);
		}
		/*
		 * This is the task's own process, just before exec: end it here, as Slurm would on a
		 * failed hook (exit 1), without adding "Failed to invoke spank plugin stack" to the
		 * user's output.
		 */
		fflush(NULL);
		_exit(1);
	}
	if (task.entered && task.workdir[0] && chdir(task.workdir) < 0) {
		/*
		 * A working directory the image lacks is created (Pyxis fails there), as the job's user (this is
		 * the task's process, privileges already dropped) in the job's own layer. Where that
		 * fails too (a read-only container), say why in strata's words and end the task as a
		 * failed hook would, without Slurm's generic "task_init() failed" line.
		 */
		int err = errno;
		if (err != ENOENT || make_dirs(task.workdir) < 0 || chdir(task.workdir) < 0) {
			if (err == ENOENT)
				err = errno;
			if (spank_get_item(sp, S_TASK_ID, &local_task) != ESPANK_SUCCESS || local_task == 0) {
				char host[256] = "";
				gethostname(host, sizeof(host) - 1);
				fprintf(stderr, TAG ": %s: cannot change to the working directory %s in the container: %s%s\n", host,
					task.workdir, strerror(err),
					err == EROFS ? " (it does not exist in the image, and the container is read-only)" : "");
			}
			fflush(NULL);
			_exit(1);
		}
	}
}

