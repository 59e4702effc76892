/*
 * Drives the plugin's PMIx bind (pmix.c) the way a task does, for the race tests
 * (test/security/pmix-races.test.ts): ATTEMPTS times, a child moves into a mount namespace of its
 * own and binds the host directory PATH at PATH inside ROOTFS, then reports where the bind landed.
 *   test_pmix_bind ROOTFS JOB_TMP PATH UID GID ATTEMPTS
 * Prints "ok N refused N escaped N writable N": escaped counts binds whose mount point is outside
 * ROOTFS, writable the attempts after which the task could write to a read-only ROOTFS.
 * Built by `make -C spank test_pmix_bind` (Slurm's functions stubbed; nothing of Slurm runs).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include <slurm/spank.h>

void slurm_error(const char *fmt, ...) { (void)fmt; }
void slurm_debug(const char *fmt, ...) { (void)fmt; }
spank_err_t spank_get_item(spank_t sp, spank_item_t item, ...) { (void)sp; (void)item; return ESPANK_ERROR; }
spank_err_t spank_getenv(spank_t sp, const char *var, char *buf, int len) { (void)sp; (void)var; (void)buf; (void)len; return ESPANK_ENV_NOEXIST; }
spank_err_t spank_setenv(spank_t sp, const char *var, const char *val, int overwrite) { (void)sp; (void)var; (void)val; (void)overwrite; return ESPANK_SUCCESS; }

#include "pmix.c"

enum { OK, REFUSED, ESCAPED, WRITABLE };

/* Where the bind of `source` (dev/ino) is mounted in this namespace: every mount point showing it. */
static int check_binds(const char *rootfs, const struct stat *source)
{
	FILE *mi = fopen("/proc/self/mountinfo", "r");
	char line[4096], point[PATH_MAX];
	size_t root_len = strlen(rootfs);
	int found = 0, outside = 0;

	if (mi == NULL)
		return ESCAPED;
	while (fgets(line, sizeof(line), mi)) {
		struct stat st;
		char *field = line;
		for (int i = 0; i < 4 && field; i++)
			field = strchr(field + 1, ' ');
		if (field == NULL || sscanf(field + 1, "%4095s", point) != 1)
			continue;
		/* mountinfo escapes spaces and the like as \ooo; test paths have none. */
		if (stat(point, &st) != 0 || st.st_dev != source->st_dev || st.st_ino != source->st_ino)
			continue;
		found++;
		if (strncmp(point, rootfs, root_len) != 0 || point[root_len] != '/')
			outside++;
	}
	fclose(mi);
	return outside || !found ? ESCAPED : OK;
}

static int attempt(const char *rootfs, const char *job_tmp, const char *path, uid_t uid, gid_t gid)
{
	char why[1024];
	struct stat source, tmp;
	int rootfd, readonly, result;

	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return REFUSED;
	if (stat(path, &source) != 0 || (rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return REFUSED;
	struct statvfs vfs;
	readonly = fstatvfs(rootfd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
	if (pmix_bind_dir(rootfd, stat(job_tmp, &tmp) == 0 ? tmp.st_dev : 0, path, uid, gid, why, sizeof(why)) != 0)
		return REFUSED;
	result = check_binds(rootfs, &source);
	if (result == OK && readonly && (mkdirat(rootfd, "probe", 0755) == 0 || errno != EROFS))
		result = WRITABLE;
	return result;
}

int main(int argc, char **argv)
{
	unsigned long counts[4] = { 0 };

	if (argc != 7) {
		fprintf(stderr, "usage: %s ROOTFS JOB_TMP PATH UID GID ATTEMPTS\n", argv[0]);
		return 2;
	}
	for (long i = 0, n = strtol(argv[6], NULL, 10); i < n; i++) {
		pid_t child = fork();
		int status = 0;
		if (child == 0)
			_exit(attempt(argv[1], argv[2], argv[3], (uid_t)strtoul(argv[4], NULL, 10), (gid_t)strtoul(argv[5], NULL, 10)));
		if (child < 0 || waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) > WRITABLE)
			counts[ESCAPED]++;
		else
			counts[WEXITSTATUS(status)]++;
	}
	printf("ok %lu refused %lu escaped %lu writable %lu\n", counts[OK], counts[REFUSED], counts[ESCAPED], counts[WRITABLE]);
	return 0;
}
