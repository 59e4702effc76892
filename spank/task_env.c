/*
 * The task environment (slurmstepd, as root, after entering the container), with Pyxis's
 * precedence: the image's variables win over the job's, except Slurm's, the PMI/PMIx wire-up and
 * the names the user keeps (--container-env).
 */

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <slurm/spank.h>

#include "strata.h"

/* Variables that always come from the job, never from the image: Slurm's, and the PMI/PMIx wire-up. */
int env_is_slurm(const char *kv)
{
	return !strncmp(kv, "SLURM_", 6) || !strncmp(kv, "SLURMD_", 7) || !strncmp(kv, "SPANK_", 6) ||
	       !strncmp(kv, "PMI_", 4) || !strncmp(kv, "PMIX_", 5);
}

/* Locale variables of the submit host: an image seldom has the host's locales, and programs warn. */
static const char *const locale_vars[] = {
	"LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY", "LC_MESSAGES",
	"LC_PAPER", "LC_NAME", "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION",
};

/* `name` (length len) is one of the comma-separated names in `list`. */
int in_list(const char *list, const char *name, size_t len)
{
	for (const char *p = list; p && *p;) {
		size_t n = strcspn(p, ",");
		if (n == len && !strncmp(p, name, len))
			return 1;
		p += n + (p[n] == ',');
	}
	return 0;
}

/* A variable of the job's environment, into buf; 1 if set and not empty. */
int job_env(spank_t sp, const char *name, char *buf, size_t len)
{
	return spank_getenv(sp, name, buf, (int)len) == ESPANK_SUCCESS && buf[0] != '\0';
}

const char *task_env_apply(spank_t sp, struct entry *entry, const char *keep)
{
	static char job_path[PATH_MAX]; /* the job's PATH, when the user keeps it */
	char value[PATH_MAX];
	const char *image_path = NULL;

	/*
	 * Environment, with Pyxis's precedence: the image's variables win over the submit
	 * environment, except Slurm's and the PMI/PMIx ones, and except the names the user lists with
	 * --container-env (`keep`), whose values in the job's environment win when set. The
	 * submit host's locale variables are dropped unless listed there: the image's own (or none)
	 * apply, so programs do not warn about locales the image lacks.
	 */
	for (size_t i = 0; i < sizeof(locale_vars) / sizeof(locale_vars[0]); i++)
		if (!in_list(keep, locale_vars[i], strlen(locale_vars[i])))
			spank_unsetenv(sp, locale_vars[i]);
	for (size_t i = 0; i < entry->env_len; i++) {
		char *kv = entry->env[i], *eq = strchr(kv, '=');
		if (eq == NULL || eq == kv || env_is_slurm(kv))
			continue;
		if (in_list(keep, kv, (size_t)(eq - kv))) {
			char name[256];
			snprintf(name, sizeof(name), "%.*s", (int)(eq - kv), kv);
			if (spank_getenv(sp, name, value, sizeof(value)) == ESPANK_SUCCESS) {
				if (!strcmp(name, "PATH")) { /* the job's PATH then finds srun's command (below) */
					snprintf(job_path, sizeof(job_path), "%s", value);
					image_path = job_path;
				}
				continue;
			}
		}
		*eq = '\0';
		if (spank_setenv(sp, kv, eq + 1, 1) != ESPANK_SUCCESS)
			slurm_error(TAG ": could not set %s in the task environment", kv);
		if (!strcmp(kv, "PATH"))
			image_path = eq + 1;
		*eq = '=';
	}
	return image_path;
}

#define SEARCH_PATH_MAX (PATH_MAX * 8)

int search_path_append(char *out, size_t len, const char *value, const char *dirs)
{
	size_t used;

	if (snprintf(out, len, "%s", value ? value : "") >= (int)len)
		return -1;
	used = strlen(out);
	for (const char *p = dirs; *p;) {
		size_t n = strcspn(p, ":");
		int have = 0;
		/* each element of what is there (the user's empty ones included), and of what was added */
		for (const char *q = out; n && *q;) {
			size_t m = strcspn(q, ":");
			if (m == n && !strncmp(q, p, n))
				have = 1;
			q += m + (q[m] == ':');
		}
		if (n && !have) {
			/* no empty element made: one would mean the working directory */
			if (used + (used > 0) + n + 1 > len)
				return -1;
			if (used > 0)
				out[used++] = ':';
			memcpy(out + used, p, n);
			used += n;
			out[used] = '\0';
		}
		p += n + (p[n] == ':');
	}
	return 0;
}

const char *device_paths_apply(spank_t sp, const struct entry *entry)
{
	/*
	 * strata makes no ld.so.cache for the driver (update-ldcache), so the device's library folders
	 * are reachable only through LD_LIBRARY_PATH. The entry environment has them after the image's
	 * value, but a --container-env name (or an entrypoint) can make another value win: add them
	 * after that one, as the cache would rank after LD_LIBRARY_PATH. Same for PATH and the others.
	 */
	static char path[SEARCH_PATH_MAX];
	static char value[SEARCH_PATH_MAX], joined[SEARCH_PATH_MAX];
	const char *task_path = NULL;

	for (size_t i = 0; entry->device_paths && i < entry->device_paths_len; i++) {
		const char *kv = entry->device_paths[i], *eq = strchr(kv, '=');
		char name[256];
		spank_err_t got;

		if (eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof(name))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(eq - kv), kv);
		got = spank_getenv(sp, name, value, sizeof(value));
		if (got != ESPANK_SUCCESS && got != ESPANK_ENV_NOEXIST) {
			slurm_error(TAG ": %s is too long to add the devices' directories %s to", name, eq + 1);
			continue;
		}
		if (search_path_append(joined, sizeof(joined), got == ESPANK_SUCCESS ? value : "", eq + 1) < 0) {
			slurm_error(TAG ": %s is too long to add the devices' directories %s to", name, eq + 1);
			continue;
		}
		if (got == ESPANK_SUCCESS && !strcmp(joined, value))
			continue;
		if (spank_setenv(sp, name, joined, 1) != ESPANK_SUCCESS) {
			slurm_error(TAG ": could not set %s in the task environment", name);
			continue;
		}
		if (!strcmp(name, "PATH")) {
			snprintf(path, sizeof(path), "%s", joined);
			task_path = path;
		}
	}
	return task_path;
}
