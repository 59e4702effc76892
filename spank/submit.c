/*
 * Submit side (srun, sbatch, salloc; S_CTX_LOCAL and S_CTX_ALLOCATOR): validate the options, run
 * `strata resolve IMAGE` as the submitting user to check the reference and pin it to a manifest
 * digest, and hand everything to the prolog with spank_job_control_setenv (STRATA_IMAGE ->
 * SPANK_STRATA_IMAGE in the prolog's environment, and so on). An unknown image fails
 * sbatch/srun/salloc with the tool's message, before any job exists.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <slurm/spank.h>

#include "strata.h"

/* Print a tool's message, one slurm_error line per line, each prefixed once with "strata: ". */
static void print_lines(const char *text, const char *fallback)
{
	char *copy = strdup(text), *rest = copy, *line;
	int printed = 0;

	while (copy && (line = strsep(&rest, "\n")) != NULL) {
		if (*line == '\0')
			continue;
		if (!strncmp(line, TAG ": ", strlen(TAG ": ")))
			slurm_error("%s", line);
		else
			slurm_error(TAG ": %s", line);
		printed = 1;
	}
	if (!printed)
		slurm_error(TAG ": %s", fallback);
	free(copy);
}

static void append(char *buf, size_t *len, size_t cap, const char *data, size_t n)
{
	if (*len + 1 >= cap)
		return;
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(buf + *len, data, n);
	*len += n;
	buf[*len] = '\0';
}

/* What `strata resolve` writes on stderr when it imports the image on first use (src/cli/commands/resolve.ts). */
#define IMPORT_MARK TAG ": importing "

/*
 * Runs `strata resolve REF [--mounts MOUNTS]` as the calling user. Returns the exit status (0
 * digest on stdout, 2 user error, other: failure), or -1 if it could not be run or timed out;
 * `out`/`err` get the (truncated) output. It may import the image on first use: then it says so
 * on stderr and gets import_timeout instead of timeout, and, when our stderr is a terminal, draws
 * its progress there (fd 3, STRATA_PROGRESS_FD), while its messages still come to us.
 */
static int run_resolve(const char *ref, const char *mounts, char *out, size_t outcap, char *err, size_t errcap)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	size_t olen = 0, elen = 0;
	pid_t pid;
	int status = 0, open_fds = 2, importing = 0;
	const char *argv[7];
	int ac = 0;
	struct timespec start, now;

	out[0] = err[0] = '\0';
	if (conf.node[0])
		argv[ac++] = conf.node;
	argv[ac++] = conf.strata;
	argv[ac++] = "resolve";
	argv[ac++] = ref;
	if (mounts) {
		argv[ac++] = "--mounts";
		argv[ac++] = mounts;
	}
	argv[ac] = NULL;

	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		snprintf(err, errcap, "pipe: %s", strerror(errno));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errcap, "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		int tty = isatty(STDERR_FILENO) ? dup(STDERR_FILENO) : -1;
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		dup2(po[1], STDOUT_FILENO);
		dup2(pe[1], STDERR_FILENO);
		/* after the pipes: fd 3 may have been one of them */
		if (tty >= 0 && dup2(tty, 3) == 3) {
			setenv("STRATA_PROGRESS_FD", "3", 1);
			if (tty != 3)
				close(tty);
		}
		if (conf.config[0])
			setenv("STRATA_CONFIG", conf.config, 1);
		execv(argv[0], (char *const *)argv);
		dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (open_fds > 0) {
		struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
		long left_ms;
		int n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left_ms = (long)(importing ? conf.import_timeout : conf.timeout) * 1000 -
			  ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left_ms <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			snprintf(err, errcap, "`%.512s resolve` did not answer within %d s%s", conf.strata,
				 importing ? conf.import_timeout : conf.timeout,
				 importing ? " (import_timeout in plugstack.conf)" : "");
			goto fail;
		}
		n = poll(fds, 2, (int)left_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (int i = 0; i < 2; i++) {
			char chunk[1024];
			ssize_t r;

			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(fds[i].fd, chunk, sizeof(chunk));
			if (r > 0) {
				if (i == 0)
					append(out, &olen, outcap, chunk, (size_t)r);
				else
					append(err, &elen, errcap, chunk, (size_t)r);
				if (!importing && (!strncmp(err, IMPORT_MARK, strlen(IMPORT_MARK)) || strstr(err, "\n" IMPORT_MARK)))
					importing = 1;
			} else if (r == 0 || errno != EINTR) {
				close(fds[i].fd);
				if (i == 0)
					po[0] = -1;
				else
					pe[0] = -1;
				open_fds--;
			}
		}
	}
	for (;;) {
		if (waitpid(pid, &status, 0) == pid)
			break;
		if (errno != EINTR) {
			snprintf(err + elen, errcap - elen, "%swaitpid: %s", elen ? "\n" : "", strerror(errno));
			goto fail;
		}
	}
	if (po[0] >= 0)
		close(po[0]);
	if (pe[0] >= 0)
		close(pe[0]);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	snprintf(err + elen, errcap - elen, "%s`%s resolve` was killed by signal %d", elen ? "\n" : "", conf.strata,
		 WTERMSIG(status));
	return -1;
fail:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	return -1;
}

int valid_digest(const char *s)
{
	return !strncmp(s, "sha256:", 7) && strlen(s + 7) == 64 && strspn(s + 7, "0123456789abcdef") == 64;
}

static int setenv_job(spank_t sp, const char *name, const char *value)
{
	if (spank_job_control_setenv(sp, name, value, 1) != ESPANK_SUCCESS) {
		slurm_error(TAG ": could not pass %s to the job", name);
		return -1;
	}
	return 0;
}

/*
 * sbatch or salloc inside a container job with that job's own image (Slurm hands the job's options
 * on through SLURM_SPANK__* variables, so a plain `sbatch` in the batch script has it too): the new
 * job runs the very image this one is pinned to, as the job's steps do, without `strata resolve`,
 * which a batch script in the container could not run (neither strata nor the store is inside).
 * 1 with the digest in `out`, else 0.
 */
static int job_own_image(const char *image, char *out, size_t len)
{
	const char *job_image = getenv("SLURM_SPANK_STRATA_IMAGE");
	const char *job_digest = getenv("SLURM_SPANK_STRATA_IMAGE_DIGEST");

	if (!(getenv("SLURM_JOB_ID") || getenv("SLURM_JOBID")) || !job_image || !job_digest || strcmp(job_image, image) ||
	    !valid_digest(job_digest))
		return 0;
	snprintf(out, len, "%s", job_digest);
	return 1;
}

int step_in_allocation(const char *image)
{
	const char *job_image = getenv("SLURM_SPANK_STRATA_IMAGE");
	const char *job_digest = getenv("SLURM_SPANK_STRATA_IMAGE_DIGEST");
	char out[512], err[MSG_MAX];

	/*
	 * An image from the environment inside a container job: the job's own, inherited by its steps
	 * (the job's pinned image wins). Inside a job without one, it would run the step on the bare
	 * host without a word (a script exporting PYXIS_CONTAINER_IMAGE for its sruns): refused below.
	 */
	if ((args.from_env[OPT_IMAGE] && job_image) || (job_image && !strcmp(job_image, image)))
		return 0;
	if (job_image && job_digest && run_resolve(image, NULL, out, sizeof(out), err, sizeof(err)) == 0) {
		out[strcspn(out, "\r\n")] = '\0';
		if (!strcmp(out, job_digest))
			return 0;
	}
	if (job_image)
		slurm_error(TAG ": this job runs in image %s; its steps cannot use another image (--%s=%s)", job_image,
			    opt_names[OPT_IMAGE], image);
	else
		slurm_error(TAG ": %s on srun inside an allocation without an image is not supported: give the image to "
			    "sbatch or salloc (e.g. #SBATCH --%s=%s); job steps then run in it",
			    opt_label(OPT_IMAGE), opt_names[OPT_IMAGE], image);
	return -1;
}

/* "1" if the flag was given, "0" if its negation was, NULL if neither. */
static const char *flag_pair(enum opt_id yes, enum opt_id no)
{
	return args.value[yes] ? "1" : args.value[no] ? "0" : NULL;
}

int submit_side(spank_t sp)
{
	char out[512], err[MSG_MAX];
	const char *image;
	int rc;

	options_from_env(sp);
	if (args_validate() < 0)
		return -1;
	image = args.value[OPT_IMAGE];
	if (image == NULL)
		return 0;

	/*
	 * srun inside an existing allocation (a batch script, salloc): the prolog ran at allocation
	 * time, and every step of a container job enters its container by itself. So the image may
	 * only be the job's own (which srun also sees through the job's SLURM_SPANK_* variables).
	 */
	if (spank_context() == S_CTX_LOCAL && (getenv("SLURM_JOB_ID") || getenv("SLURM_JOBID"))) {
		/* The layer is the job's, saved at its end: a step cannot ask for that on its own. */
		if (args.value[OPT_SAVE] && !args.from_env[OPT_SAVE]) {
			slurm_error(TAG ": --%s on srun inside an allocation is not supported: the writable layer is the job's, "
				    "saved at its end; give it to sbatch or salloc (e.g. #SBATCH --%s=%s)",
				    opt_names[OPT_SAVE], opt_names[OPT_SAVE], args.value[OPT_SAVE]);
			return -1;
		}
		return step_in_allocation(image);
	}

	if (job_own_image(image, out, sizeof(out)))
		rc = 0;
	else if (getenv("SLURM_SPANK_STRATA_IMAGE_DIGEST") && access(conf.strata, F_OK) != 0) {
		slurm_error(TAG ": %s=%s: another image cannot be checked from inside a container job (%s is not in the "
			    "container); submit it from a login node, or run this script with --%s-batch=host",
			    opt_label(OPT_IMAGE), image, conf.strata, conf.prefix);
		return -1;
	} else
		rc = run_resolve(image, args.value[OPT_MOUNTS], out, sizeof(out), err, sizeof(err));
	out[strcspn(out, "\r\n")] = '\0';
	if (rc == 2) {
		print_lines(err, "unknown image");
		return -1;
	}
	if (rc != 0 || !valid_digest(out)) {
		slurm_error(TAG ": could not check image \"%s\": `%s resolve` failed (exit status %d)", image, conf.strata, rc);
		print_lines(err, rc == 0 ? "no digest in its output" : "no message");
		return -1;
	}
	slurm_verbose(TAG ": %s pinned to %s", image, out);

	{
		/* What the prolog reads, as SPANK_<name>. */
		const struct { const char *name, *value; } handover[] = {
			{ "STRATA_IMAGE", image },
			{ "STRATA_IMAGE_DIGEST", out },
			{ "STRATA_MOUNTS", args.value[OPT_MOUNTS] },
			{ "STRATA_WORKDIR", args.value[OPT_WORKDIR] },
			{ "STRATA_WRITABLE", flag_pair(OPT_WRITABLE, OPT_READONLY) },
			{ "STRATA_UPPER_SIZE", args.value[OPT_UPPER_SIZE] },
			{ "STRATA_DEVICES", args.value[OPT_DEVICES] },
			{ "STRATA_SAVE", args.value[OPT_SAVE] },
			/* Pyxis's flag pairs, yes/no; unset = the site's default (strata.yaml container.*) */
			{ "STRATA_MOUNT_HOME", flag_pair(OPT_MOUNT_HOME, OPT_NO_MOUNT_HOME) },
			{ "STRATA_ENTRYPOINT", flag_pair(OPT_ENTRYPOINT, OPT_NO_ENTRYPOINT) },
			{ "STRATA_REMAP_ROOT", flag_pair(OPT_REMAP_ROOT, OPT_NO_REMAP_ROOT) },
			/*
			 * For the task side, in the job environment as SLURM_SPANK_STRATA_*: there also under
			 * --export=NONE, which empties what carries the options themselves to the job's steps.
			 */
			{ "STRATA_BATCH", args.value[OPT_BATCH] },
			{ "STRATA_ENV", args.value[OPT_ENV] },
			{ "STRATA_ENTRYPOINT_LOG", args.value[OPT_ENTRYPOINT_LOG] },
		};
		for (size_t i = 0; i < sizeof(handover) / sizeof(handover[0]); i++)
			if (handover[i].value && setenv_job(sp, handover[i].name, handover[i].value) < 0)
				return -1;
	}
	return 0;
}
