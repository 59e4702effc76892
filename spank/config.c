/*
 * Configuration: plugstack.conf arguments, read in every context
 *   required /usr/lib/x86_64-linux-gnu/slurm/strata.so [key=value ...]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <slurm/spank.h>

#include "strata.h"

struct plugin_conf conf;

int parse_bool(const char *s)
{
	if (!strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "y"))
		return 1;
	if (!strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "n"))
		return 0;
	return -1;
}

int parse_batch(const char *s)
{
	if (!strcmp(s, "container"))
		return 0;
	if (!strcmp(s, "host"))
		return 1;
	return -1;
}

static int copy_path(char *dst, size_t len, const char *key, const char *value, int empty_ok)
{
	if ((*value == '\0' && !empty_ok) || (*value != '\0' && *value != '/')) {
		slurm_error(TAG ": plugstack.conf: %s must be an absolute path: \"%s\"", key, value);
		return -1;
	}
	if (strlen(value) >= len) {
		slurm_error(TAG ": plugstack.conf: %s is too long", key);
		return -1;
	}
	strcpy(dst, value);
	return 0;
}

int config_parse(int ac, char **av)
{
	memset(&conf, 0, sizeof(conf));
	strcpy(conf.prefix, "container");
	strcpy(conf.strata, "/usr/bin/strata");
	strcpy(conf.runtime_dir, "/run/strata");
	conf.timeout = 60;
	conf.import_timeout = 3600;

	for (int i = 0; i < ac; i++) {
		const char *arg = av[i];
		const char *eq = strchr(arg, '=');
		size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
		const char *v = eq ? eq + 1 : "";
		int b;

#define KEY(name) (klen == strlen(name) && !strncmp(arg, name, klen))
		if (eq == NULL) {
			slurm_error(TAG ": plugstack.conf: expected key=value, got \"%s\"", arg);
			return -1;
		} else if (KEY("prefix")) {
			size_t n = strlen(v);
			if (n == 0 || n > 20 || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != n ||
			    v[0] == '-' || v[n - 1] == '-') {
				slurm_error(TAG ": plugstack.conf: prefix must be 1-20 of a-z, 0-9 and inner '-': \"%s\"", v);
				return -1;
			}
			strcpy(conf.prefix, v);
		} else if (KEY("strata")) {
			if (copy_path(conf.strata, sizeof(conf.strata), "strata", v, 0) < 0)
				return -1;
		} else if (KEY("node")) {
			if (copy_path(conf.node, sizeof(conf.node), "node", v, 1) < 0)
				return -1;
		} else if (KEY("runtime_dir")) {
			if (copy_path(conf.runtime_dir, sizeof(conf.runtime_dir), "runtime_dir", v, 0) < 0)
				return -1;
		} else if (KEY("config")) {
			if (copy_path(conf.config, sizeof(conf.config), "config", v, 1) < 0)
				return -1;
		} else if (KEY("batch")) {
			if ((b = parse_batch(v)) < 0) {
				slurm_error(TAG ": plugstack.conf: batch must be \"container\" or \"host\": \"%s\"", v);
				return -1;
			}
			conf.batch_host = b;
		} else if (KEY("timeout") || KEY("import_timeout")) {
			char *end;
			long t = strtol(v, &end, 10);
			int import = KEY("import_timeout");
			if (*v == '\0' || *end != '\0' || t < 1 || t > (import ? 86400 : 3600)) {
				slurm_error(TAG ": plugstack.conf: %s must be 1-%d seconds: \"%s\"", import ? "import_timeout" : "timeout",
					    import ? 86400 : 3600, v);
				return -1;
			}
			if (import)
				conf.import_timeout = (int)t;
			else
				conf.timeout = (int)t;
		} else {
			slurm_error(TAG ": plugstack.conf: unknown option \"%.*s\"", (int)klen, arg);
			return -1;
		}
#undef KEY
	}
	return 0;
}
