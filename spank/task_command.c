/*
 * What the task runs, and where: the batch script through a descriptor, srun's command found in
 * the container's PATH, and a --container-workdir the image lacks made as the user.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slurm/spank.h>

#include "strata.h"

/*
 * The batch script lives in slurmd's spool directory, which is not inside the container. Open it
 * while still outside and run it through /proc/self/fd/N (inherited across exec, not close-on-exec);
 * its #! interpreter is then found inside the container.
 */
int batch_script_through_fd(spank_t sp, char *why, size_t len)
{
	int argc = 0, fd;
	char **argv = NULL;
	char path[64];

	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 1 || argv == NULL || !argv[0]) {
		snprintf(why, len, "cannot find the batch script");
		return -1;
	}
	fd = open(argv[0], O_RDONLY | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(why, len, "cannot open the batch script %s: %s", argv[0], strerror(errno));
		return -1;
	}
	if (fd < 10) { /* keep it out of the way of stdio and of low numbers scripts use */
		int high = fcntl(fd, F_DUPFD, 10);
		close(fd);
		fd = high;
		if (fd < 0) {
			snprintf(why, len, "cannot keep the batch script open: %s", strerror(errno));
			return -1;
		}
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	argv[0] = strdup(path); /* in this task process only; the old string stays owned by slurmstepd */
	if (argv[0] == NULL) {
		snprintf(why, len, "out of memory");
		return -1;
	}
	return 0;
}

int path_lookup(const char *name, const char *path_var, char *out, size_t len)
{
	for (const char *p = path_var; p && *p;) {
		size_t n = strcspn(p, ":");
		if (n > 0 && p[0] == '/' && (size_t)snprintf(out, len, "%.*s/%s", (int)n, p, name) < len && access(out, X_OK) == 0)
			return 0;
		p += n + (p[n] == ':');
	}
	return -1;
}

/*
 * srun resolves the command against the submit host's PATH (e.g. /usr/bin/cat), which the image
 * may not have. If the absolute path does not exist inside the container, look its name up in the
 * container's PATH instead.
 */
void command_in_container(spank_t sp, const char *path_var)
{
	int argc = 0;
	char **argv = NULL;
	const char *name;
	char candidate[PATH_MAX];

	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 1 || argv == NULL || !argv[0])
		return;
	if (argv[0][0] != '/' || access(argv[0], X_OK) == 0)
		return;
	name = strrchr(argv[0], '/') + 1;
	if (*name != '\0' && path_lookup(name, path_var ? path_var : DEFAULT_PATH, candidate, sizeof(candidate)) == 0) {
		slurm_debug(TAG ": running %s for %s", candidate, argv[0]);
		argv[0] = strdup(candidate);
	}
}

/* mkdir -p, as the calling user (mode 0755 less the umask); EEXIST at any level is fine. */
int make_dirs(const char *path)
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
