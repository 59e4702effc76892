/*
 * Task side (slurmstepd, remote context): enter the rootfs the prolog prepared, or fail with its
 * message. task_enter runs as root in the task's process (slurm_spank_task_init_privileged),
 * task_start in the same process once Slurm dropped privileges (slurm_spank_task_init). With
 * --container-remap-root the container is entered in task_start instead (userns.c), and with
 * --container-entrypoint the image's entrypoint runs there last (entrypoint.c).
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

#include "pmix.h"
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
	int entered;              /* chrooted, or (remapped) to be chrooted in task_start */
	/* chdir here in task_init ("" = stay where Slurm put the task) */
	char workdir[PATH_MAX];
	int batch;
	int remap;                /* --container-remap-root: enter in task_start, in a user namespace */
	int rootfd;               /* the rootfs, for that late entry */
	struct remap userns;
	const char *path_var;     /* where srun's command is looked up, for that late entry */
	int run_entrypoint;
	int entrypoint_log;
	char keep[1024];          /* --container-env: names whose job values win */
	struct entry entry;       /* kept for the entrypoint */
} task = { .rootfd = -1 };

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

/*
 * End the task (as the user, stdio the task's) with strata's one line, printed by the node's first
 * task only: as Slurm would on a failed hook (exit 1), without its "Failed to invoke spank plugin
 * stack" or "task_init() failed" lines in the user's output.
 */
static void task_exit(spank_t sp, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void task_exit(spank_t sp, const char *fmt, ...)
{
	int local_task = 0;
	va_list ap;

	if (spank_get_item(sp, S_TASK_ID, &local_task) != ESPANK_SUCCESS || local_task == 0) {
		char host[256] = "";
		gethostname(host, sizeof(host) - 1);
		fprintf(stderr, TAG ": %s: ", host);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fflush(NULL);
	_exit(1);
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
 * Options reach slurmstepd through the job environment, which --export=NONE empties; the values
 * the submit side handed over (SLURM_SPANK_STRATA_*) are always there.
 */
static void options_handed_over(spank_t sp)
{
	static const struct { enum opt_id id; const char *name; } handed[] = {
		{ OPT_BATCH, "SLURM_SPANK_STRATA_BATCH" },
		{ OPT_WORKDIR, "SLURM_SPANK_STRATA_WORKDIR" },
		{ OPT_ENV, "SLURM_SPANK_STRATA_ENV" },
		{ OPT_ENTRYPOINT_LOG, "SLURM_SPANK_STRATA_ENTRYPOINT_LOG" },
	};
	char value[PATH_MAX];

	for (size_t i = 0; i < sizeof(handed) / sizeof(handed[0]); i++)
		if (!args.value[handed[i].id] && job_env(sp, handed[i].name, value, sizeof(value)))
			opt_set(handed[i].id, value, 1);
}

/* A flag pair for this task: the step's own option (or variable), else the job's from entry.json. */
static int flag_choice(enum opt_id yes, enum opt_id no, int job_choice)
{
	return args.value[yes] ? 1 : args.value[no] ? 0 : job_choice;
}

/* Enter the container now (chroot), or get ready to enter it later as root of a user namespace. */
static int enter_rootfs(const char *path, uid_t uid, gid_t gid)
{
	if (!task.remap) {
		if (chroot(path) < 0 || chdir("/") < 0) {
			task_fail("cannot enter the container at %s: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	task.rootfd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (task.rootfd < 0 || remap_prepare(&task.userns, uid, gid) < 0) {
		task_fail("cannot prepare the container at %s for --container-remap-root: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Whether this task prints the prolog's notice: once per job where possible, not once per task or
 * step. The batch script prints it; a step of a batch job (sbatch sets ENVIRONMENT=BATCH, which its
 * steps inherit) does not; a step outside one (srun, salloc) prints it from its first task.
 */
int notice_here(int batch_step, uint32_t global_task, int in_batch_job)
{
	return batch_step || (!in_batch_job && global_task == 0);
}

void task_enter(spank_t sp)
{
	char dir[512], path[PATH_MAX], why[1024], value[PATH_MAX];
	static char text[256 * 1024]; /* entry.json; static: task processes may run on a small stack */
	uint32_t jobid = 0, stepid = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	int batch_host, want, rc;
	struct entry *entry = &task.entry;
	const char *image_path, *device_path;

	if (spank_get_item(sp, S_JOB_ID, &jobid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_STEPID, &stepid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS || spank_get_item(sp, S_JOB_GID, &gid) != ESPANK_SUCCESS) {
		task_fail("cannot identify the job");
		return;
	}
	if (stepid == SLURM_EXTERN_CONT)
		return;
	task.batch = stepid == SLURM_BATCH_SCRIPT;

	/*
	 * A container job (an image option on the command line, or the pin the submit side left in
	 * the job environment) must find its container set up; any other job runs as usual.
	 */
	want = (args.value[OPT_IMAGE] && !args.from_env[OPT_IMAGE]) ||
	       job_env(sp, "SLURM_SPANK_STRATA_IMAGE_DIGEST", value, sizeof(value));
	options_from_env(sp);
	options_handed_over(sp);
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
	if (task.batch && batch_host)
		return;

	if (root_owned(conf.runtime_dir, S_IFDIR) < 0 || root_owned(dir, S_IFDIR) < 0) {
		task_fail("refusing to use %s: not a root-owned directory", dir);
		return;
	}
	if (read_root_file(path, text, sizeof(text)) < 0) {
		task_fail("cannot read %s: %s", path, strerror(errno));
		return;
	}
	rc = entry_parse(text, strlen(text), entry, why, sizeof(why));
	if (rc == ENTRY_E_VERSION) {
		/* A prolog and a plugin of different strata releases: the node is half upgraded. */
		task_fail("%s was written by a different strata (%s): finish the strata upgrade on this node (strata install-slurm), then run the job again", path, why);
		return;
	}
	if (rc < 0) {
		task_fail("%s is damaged: %s", path, why);
		return;
	}
	if (entry->uid >= 0 && (uid_t)entry->uid != uid) {
		task_fail("%s belongs to uid %lld, not to this job's user (uid %u)", path, entry->uid, (unsigned)uid);
		goto fail;
	}
	if (entry->notice) {
		uint32_t global = 1;
		char environment[16];

		(void)spank_get_item(sp, S_TASK_GLOBAL_ID, &global);
		if (notice_here(task.batch, global,
				job_env(sp, "ENVIRONMENT", environment, sizeof(environment)) && !strcmp(environment, "BATCH")))
			fprintf(stderr, TAG ": %s\n", entry->notice);
	}
	task.remap = flag_choice(OPT_REMAP_ROOT, OPT_NO_REMAP_ROOT, entry->remap_root);
	task.run_entrypoint = flag_choice(OPT_ENTRYPOINT, OPT_NO_ENTRYPOINT, entry->run_entrypoint);
	task.entrypoint_log = args.value[OPT_ENTRYPOINT_LOG] != NULL;
	snprintf(task.keep, sizeof(task.keep), "%s", args.value[OPT_ENV] ? args.value[OPT_ENV] : "");

	if (task.batch && batch_script_through_fd(sp, why, sizeof(why)) < 0) {
		task_fail("%s", why);
		goto fail;
	}

	snprintf(path, sizeof(path), "%s/rootfs", dir);
	if (!is_mount_point(path, dir)) {
		task_fail("the container root %s is not mounted", path);
		goto fail;
	}
	/*
	 * The job's /tmp from Slurm (job_container/tmpfs) and the step's PMIx directories (srun
	 * --mpi=pmix), in a mount namespace of the task's own.
	 */
	snprintf(value, sizeof(value), "%s/tmp/t", dir);
	if (task_mounts(sp, path, value, conf.pmix_tmpdir, why, sizeof(why)) < 0) {
		task_fail("%s", why);
		goto fail;
	}
	if (enter_rootfs(path, uid, gid) < 0)
		goto fail;
	/*
	 * No setuid or file-capability gains inside the container, whatever the image holds and
	 * however it is mounted (the image mounts are nosuid too; this also covers the binds).
	 */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		task_fail("cannot set no_new_privs: %s", strerror(errno));
		goto fail;
	}

	/*
	 * Working directory: --container-workdir if given (the prolog puts it in entry.workdir);
	 * otherwise the job's own working directory, which the prolog binds at the same path and
	 * Slurm changes to right after this hook.
	 */
	task.entered = 1;
	if (args.value[OPT_WORKDIR])
		snprintf(task.workdir, sizeof(task.workdir), "%s", entry->workdir && entry->workdir[0] ? entry->workdir : args.value[OPT_WORKDIR]);

	/* entry stays: the environment's strings and the entrypoint are used again in task_start */
	image_path = task_env_apply(sp, entry, task.keep);
	if ((device_path = device_paths_apply(sp, entry)) != NULL)
		image_path = device_path; /* the command is looked up in the PATH the task gets */
	pytorch_env_apply(sp, entry, task.keep);
	task.path_var = image_path ? image_path : DEFAULT_PATH;
	if (!task.batch && !task.remap)
		command_in_container(sp, task.path_var);
	return;
fail:
	entry_free(entry);
}

/*
 * As the user: the remapped entry (userns.c), then the same command lookup as task_enter's.
 * Slurm has already changed to the job's working directory, on the host; the prolog binds it at
 * the same path, so the task returns there inside (else to /tmp, as Slurm falls back).
 */
static void enter_remapped(spank_t sp)
{
	char why[512], cwd[PATH_MAX];

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		cwd[0] = '\0';
	if (remap_enter(&task.userns, why, sizeof(why)) < 0)
		task_exit(sp, "%s", why);
	if (fchdir(task.rootfd) < 0 || chroot(".") < 0 || chdir("/") < 0)
		task_exit(sp, "--container-remap-root: cannot enter the container: %s", strerror(errno));
	if (cwd[0] != '/' || chdir(cwd) < 0)
		(void)!chdir("/tmp");
	close(task.rootfd);
	task.rootfd = -1;
	if (!task.batch)
		command_in_container(sp, task.path_var);
}

void task_start(spank_t sp)
{
	char why[MSG_MAX];

	if (task.fail)
		task_exit(sp, "%s", task.message);
	if (!task.entered)
		return;
	if (task.remap)
		enter_remapped(sp);
	if (task.workdir[0] && chdir(task.workdir) < 0) {
		/*
		 * A working directory the image lacks is created (Pyxis fails there), as the job's user (this is
		 * the task's process, privileges already dropped) in the job's own layer. Where that
		 * fails too (a read-only container), say why in strata's words.
		 */
		int err = errno;
		if (err != ENOENT || make_dirs(task.workdir) < 0 || chdir(task.workdir) < 0) {
			if (err == ENOENT)
				err = errno;
			task_exit(sp, "cannot change to the working directory %s in the container: %s%s", task.workdir, strerror(err),
				  err == EROFS ? " (it does not exist in the image, and the container is read-only)" : "");
		}
	}
	if (task.run_entrypoint && entrypoint_run(sp, &task.entry, task.keep, task.entrypoint_log, why, sizeof(why)) < 0)
		task_exit(sp, "%s", why);
}
