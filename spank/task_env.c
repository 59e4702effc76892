/*
 * The task environment (slurmstepd, as root, after entering the container), with Pyxis's
 * precedence: the image's variables win over the job's, except Slurm's, the PMI/PMIx wire-up and
 * the names the user keeps (STRATA_CONTAINER_ENV).
 */

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <slurm/spank.h>

#include "strata.h"

/* Variables that always come from the job, never from the image: Slurm's, and the PMI/PMIx wire-up. */
static int env_is_slurm(const char *kv)
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
static int in_list(const char *list, const char *name, size_t len)
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

const char *task_env_apply(spank_t sp, struct entry *entry)
{
	static char job_path[PATH_MAX]; /* the job's PATH, when the user keeps it */
	char value[PATH_MAX], keep[1024];
	const char *image_path = NULL;

	/*
	 * Environment, with Pyxis's precedence: the image's variables win over the submit
	 * environment, except Slurm's and the PMI/PMIx ones, and except the names the user lists in
	 * STRATA_CONTAINER_ENV (Pyxis: --container-env), whose submit-side values win when set. The
	 * submit host's locale variables are dropped unless listed there: the image's own (or none)
	 * apply, so programs do not warn about locales the image lacks.
	 */
	if (!job_env(sp, "STRATA_CONTAINER_ENV", keep, sizeof(keep)))
		keep[0] = '\0';
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
