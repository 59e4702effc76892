/*
 * Options: --<prefix>-image and friends, with STRATA_CONTAINER_* (then Pyxis's PYXIS_CONTAINER_*)
 * environment fallbacks, and their validation on the submit side.
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/spank.h>

#include "strata.h"

/* The option table: one row per option, indexed by enum opt_id. */
static const struct {
	const char *suffix;  /* option name after "<prefix>-" (after "no-<prefix>-" when `negated`) */
	int negated;
	const char *env;     /* environment fallback */
	const char *pyxis_env; /* Pyxis's fallback, read after `env` (a boolean sets this flag or `opposite`) */
	enum opt_id opposite; /* the other half of a flag pair; NO_OPT if none */
	const char *arginfo; /* NULL for flags */
	const char *usage;
	const char *refused; /* NULL: supported; else why not and what to do instead */
} opt_spec[OPT_COUNT] = {
	[OPT_IMAGE] = { "image", 0, "STRATA_CONTAINER_IMAGE", "PYXIS_CONTAINER_IMAGE", NO_OPT,
		"NAME[:TAG]|[USER@][REGISTRY#]IMAGE[:TAG]|PATH",
		"[strata] run the job in this image: a name from the site's image store (see `strata images`), "
		"~/NAME:TAG for your own, or, as Pyxis takes them, a registry image or a squashfs file (imported on first use where the site allows it)", NULL },
	[OPT_MOUNTS] = { "mounts", 0, "STRATA_CONTAINER_MOUNTS", "PYXIS_CONTAINER_MOUNTS", NO_OPT, "SRC[:DST[:FLAGS]][,...]",
		"[strata] bind mounts into the container, comma-separated; FLAGS ro or rw, joined with + as in Pyxis; "
		"a ./relative SRC starts from the job's working directory", NULL },
	[OPT_WORKDIR] = { "workdir", 0, "STRATA_CONTAINER_WORKDIR", "PYXIS_CONTAINER_WORKDIR", NO_OPT, "PATH",
		"[strata] working directory inside the container", NULL },
	[OPT_WRITABLE] = { "writable", 0, "STRATA_CONTAINER_WRITABLE", "PYXIS_CONTAINER_WRITABLE", OPT_READONLY, NULL,
		"[strata] make the container's root filesystem writable (changes are discarded at the end of the job)", NULL },
	[OPT_READONLY] = { "readonly", 0, "STRATA_CONTAINER_READONLY", "PYXIS_CONTAINER_READONLY", OPT_WRITABLE, NULL,
		"[strata] make the container's root filesystem read-only", NULL },
	[OPT_UPPER_SIZE] = { "upper-size", 0, "STRATA_CONTAINER_UPPER_SIZE", NULL, NO_OPT, "SIZE",
		"[strata] size of the writable layer on each node, e.g. 4G", NULL },
	[OPT_BATCH] = { "batch", 0, "STRATA_CONTAINER_BATCH", NULL, NO_OPT, "container|host",
		"[strata] where the batch script runs: in the container (default) or on the host; "
		"job steps (srun) always run in the container", NULL },
	/* Checked by the prolog (a bad name fails the job there, with the spec's offer in the message). */
	[OPT_DEVICES] = { "devices", 0, "STRATA_CONTAINER_DEVICES", NULL, NO_OPT, "VENDOR/CLASS=NAME[,...]",
		"[strata] CDI devices for the container, e.g. nvidia.com/gpu=all", NULL },
	/* Pyxis's named container with container_scope=job: the job's own, shared by all its steps. */
	[OPT_NAME] = { "name", 0, NULL, "PYXIS_CONTAINER_NAME", NO_OPT, "NAME[:auto|create|exec|no_exec]",
		"[strata] accepted for Pyxis scripts: every step of a job on a node runs in the job's one container, "
		"whatever its name; nothing is kept after the job (use --container-save=~/NAME:TAG)", NULL },
	/* Checked by the prolog, saved by the epilog on each node (src/runtime/save/). */
	[OPT_SAVE] = { "save", 0, "STRATA_CONTAINER_SAVE", "PYXIS_CONTAINER_SAVE", NO_OPT, "PATH|~/NAME:TAG",
		"[strata] at the end of the job, save the container's writable layer as a squashfs file (relative to the "
		"job's working directory), or with ~/NAME:TAG as an image of your own (the job's image plus that layer)", NULL },
	/* Pyxis's flag pairs: the job's choice reaches the prolog (mount-home) and entry.json; a step's wins in its tasks. */
	[OPT_MOUNT_HOME] = { "mount-home", 0, "STRATA_CONTAINER_MOUNT_HOME", "PYXIS_CONTAINER_MOUNT_HOME", OPT_NO_MOUNT_HOME, NULL,
		"[strata] bind mount your home directory at its own path (the site's default, usually on)", NULL },
	[OPT_NO_MOUNT_HOME] = { "mount-home", 1, NULL, NULL, OPT_MOUNT_HOME, NULL,
		"[strata] do not bind mount your home directory (the job's working directory still is)", NULL },
	[OPT_REMAP_ROOT] = { "remap-root", 0, "STRATA_CONTAINER_REMAP_ROOT", "PYXIS_CONTAINER_REMAP_ROOT", OPT_NO_REMAP_ROOT, NULL,
		"[strata] run as root (uid 0) in a user namespace mapped to you: files you write are yours on the host; "
		"needs unprivileged user namespaces on the nodes", NULL },
	[OPT_NO_REMAP_ROOT] = { "remap-root", 1, NULL, NULL, OPT_REMAP_ROOT, NULL,
		"[strata] run as yourself in the container (the site's default, usually so)", NULL },
	[OPT_ENTRYPOINT] = { "entrypoint", 0, "STRATA_CONTAINER_ENTRYPOINT", "PYXIS_CONTAINER_ENTRYPOINT", OPT_NO_ENTRYPOINT, NULL,
		"[strata] run the image's entrypoint before the command (its output shows with --container-entrypoint-log)", NULL },
	[OPT_NO_ENTRYPOINT] = { "entrypoint", 1, NULL, NULL, OPT_ENTRYPOINT, NULL,
		"[strata] do not run the image's entrypoint (the site's default, usually so)", NULL },
	[OPT_ENTRYPOINT_LOG] = { "entrypoint-log", 0, "STRATA_CONTAINER_ENTRYPOINT_LOG", "PYXIS_CONTAINER_ENTRYPOINT_LOG", NO_OPT, NULL,
		"[strata] show the output of the image's entrypoint", NULL },
	[OPT_ENV] = { "env", 0, "STRATA_CONTAINER_ENV", "PYXIS_CONTAINER_ENV", NO_OPT, "NAME[,NAME...]",
		"[strata] these variables of your environment override the image's (and its entrypoint sees them)", NULL },
	[OPT_UNSHARE] = { "unshare", 0, NULL, "PYXIS_CONTAINER_UNSHARE", NO_OPT, "NS[,NS...]",
		"[strata] not supported (Pyxis: new net, ipc or uts namespaces)",
		"strata containers share the node's network, IPC and host name, as Pyxis's do by default; drop it" },
};

char opt_names[OPT_COUNT][SPANK_OPTION_MAXLEN + 1];

struct option_values args;

void opt_set(enum opt_id id, const char *value, int from_env)
{
	args.env_name[id] = NULL;
	free(args.value[id]);
	args.value[id] = strdup(value);
	args.from_env[id] = from_env;
}

int option_cb(int val, const char *optarg, int remote)
{
	enum opt_id id = (enum opt_id)val;
	int flag;

	if (val < 0 || id >= OPT_COUNT)
		return -1;
	flag = opt_spec[id].arginfo == NULL;
	if (!flag && (optarg == NULL || *optarg == '\0')) {
		slurm_error(TAG ": --%s: argument required", opt_names[id]);
		return -1;
	}
	/*
	 * The last value wins: srun inside an allocation first gets the job's options from its
	 * environment (SLURM_SPANK__SLURM_SPANK_OPTION_*), then the command line's.
	 */
	opt_set(id, flag ? "1" : optarg, 0);
	return 0;
}

int options_register(spank_t sp)
{
	for (int i = 0; i < OPT_COUNT; i++) {
		struct spank_option opt = {
			.name = opt_names[i],
			.arginfo = (char *)opt_spec[i].arginfo,
			.usage = (char *)opt_spec[i].usage,
			.has_arg = opt_spec[i].arginfo != NULL,
			.val = i,
			.cb = option_cb,
		};
		snprintf(opt_names[i], sizeof(opt_names[i]), "%s%s-%s", opt_spec[i].negated ? "no-" : "", conf.prefix,
			 opt_spec[i].suffix);
		if (spank_option_register(sp, &opt) != ESPANK_SUCCESS) {
			slurm_error(TAG ": could not register option --%s", opt_names[i]);
			return -1;
		}
	}
	return 0;
}

/* A variable of the caller's environment (the job's, in slurmstepd); NULL if unset or empty. */
static const char *env_value(spank_t sp, const char *name, char *buf, size_t len)
{
	const char *v = NULL;

	if (name == NULL)
		return NULL;
	if (spank_context() == S_CTX_REMOTE) {
		if (spank_getenv(sp, name, buf, (int)len) == ESPANK_SUCCESS)
			v = buf;
	} else {
		v = getenv(name);
	}
	return v && *v ? v : NULL;
}

/*
 * Environment fallbacks, for jobs submitted without options (slurmrestd, wrappers, scripts written
 * for Pyxis). Options win, then STRATA_CONTAINER_*, then Pyxis's PYXIS_CONTAINER_*. A flag's
 * boolean variable sets the flag (true) or the other half of its pair (false), as in Pyxis.
 */
void options_from_env(spank_t sp)
{
	static char bufs[2][PATH_MAX * 4];

	for (int i = 0; i < OPT_COUNT; i++) {
		const char *names[2] = { opt_spec[i].env, opt_spec[i].pyxis_env };
		enum opt_id other = opt_spec[i].opposite;

		for (int k = 0; k < 2; k++) {
			const char *v;
			enum opt_id target = (enum opt_id)i;

			if (args.value[i] || (other != NO_OPT && args.value[other]))
				break;
			if ((v = env_value(sp, names[k], bufs[k], sizeof(bufs[k]))) == NULL)
				continue;
			if (opt_spec[i].arginfo == NULL) { /* flag: boolean value */
				int b = parse_bool(v);
				if (b < 0 || (b == 0 && (k == 0 || other == NO_OPT)))
					continue;
				if (b == 0)
					target = other;
				v = "1";
			}
			opt_set(target, v, 1);
			args.env_name[target] = names[k];
		}
	}
}

/* How an option is named in messages: the option, or the environment variable it came from. */
const char *opt_label(enum opt_id id)
{
	static char labels[OPT_COUNT][SPANK_OPTION_MAXLEN + 48]; /* one per option: a message may name two */

	if (args.from_env[id])
		snprintf(labels[id], sizeof(labels[id]), "%s (--%s)", args.env_name[id] ? args.env_name[id] : opt_spec[id].env,
			 opt_names[id]);
	else
		snprintf(labels[id], sizeof(labels[id]), "--%s", opt_names[id]);
	return labels[id];
}

/*
 * Bytes of a size as strata reads it (parseSize in src/config/validate.ts): 512M, 4G, 1.5GiB, 4096;
 * binary units, a fraction only with a unit, rounded to whole bytes. -1 when it is not a size.
 * Digits are read by hand, not with strtod, whose decimal point follows the caller's locale.
 */
long long size_bytes(const char *s)
{
	static const char units[] = "KMGT";
	const char *p = s, *unit;
	unsigned long long whole = 0;
	long double frac = 0, scale = 0.1L, bytes;
	int fraction = 0;

	while (*p >= '0' && *p <= '9') {
		if (whole > SIZE_BYTES_MAX / 10)
			return -1;
		whole = whole * 10 + (unsigned long long)(*p++ - '0');
	}
	if (p == s)
		return -1;
	if (*p == '.') {
		const char *digits = ++p;
		fraction = 1;
		for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += (long double)(*p - '0') * scale;
		if (p == digits)
			return -1;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	bytes = (long double)whole + frac;
	if (*p && (unit = strchr(units, *p & ~0x20)) != NULL) {
		bytes *= (long double)(1ULL << (10 * (unit - units + 1)));
		p++;
		if (*p == 'i' || *p == 'I')
			p++;
	} else if (fraction) {
		return -1;
	}
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p != '\0' || bytes + 0.5L > (long double)SIZE_BYTES_MAX)
		return -1;
	return (long long)(bytes + 0.5L);
}

/* NAME[,NAME...]: no empty name (Pyxis refuses "FOO,"), no '=' (a value belongs in the environment). */
int valid_env_names(const char *list)
{
	for (const char *p = list;;) {
		size_t n = strcspn(p, ",");
		if (n == 0 || memchr(p, '=', n) != NULL)
			return -1;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f)
				return -1;
		if (p[n] == '\0')
			return 0;
		p += n + 1;
	}
}

/* NAME[:FLAGS] with Pyxis's flags; 0 if valid. */
static int valid_container_name(const char *s)
{
	const char *colon = strchr(s, ':');
	size_t length = colon ? (size_t)(colon - s) : strlen(s);

	if (length == 0)
		return -1;
	if (!colon)
		return 0;
	return strcmp(colon + 1, "auto") && strcmp(colon + 1, "create") && strcmp(colon + 1, "exec") &&
	       strcmp(colon + 1, "no_exec") ? -1 : 0;
}

int args_validate(void)
{
	if (args.value[OPT_NAME] && valid_container_name(args.value[OPT_NAME]) < 0) {
		slurm_error(TAG ": %s: \"%s\" is not NAME[:auto|create|exec|no_exec]", opt_label(OPT_NAME), args.value[OPT_NAME]);
		return -1;
	}
	if (!args.value[OPT_IMAGE]) {
		for (int i = 0; i < OPT_COUNT; i++) {
			/* srun --container-name=NAME in a container job: Pyxis's way to reach the job's container. */
			if (i == OPT_NAME && getenv("SLURM_SPANK_STRATA_IMAGE"))
				continue;
			if (i == OPT_NAME && args.value[i] && !args.from_env[i]) {
				slurm_error(TAG ": --%s needs --%s: strata keeps no container after its job, so a name only "
					    "refers to the running job's own container; to reuse what a job installed, save it "
					    "with --%s=~/NAME:TAG and run that image", opt_names[i], opt_names[OPT_IMAGE], opt_names[OPT_SAVE]);
				return -1;
			}
			if (args.value[i] && !args.from_env[i]) {
				slurm_error(TAG ": --%s needs --%s", opt_names[i], opt_names[OPT_IMAGE]);
				return -1;
			}
		}
		return 0;
	}
	for (int i = 0; i < OPT_COUNT; i++) {
		enum opt_id other = opt_spec[i].opposite;
		if (other != NO_OPT && (int)other > i && args.value[i] && args.value[other]) {
			slurm_error(TAG ": %s and %s exclude each other", opt_label((enum opt_id)i), opt_label(other));
			return -1;
		}
	}
	/* Pyxis's options that strata cannot honour: one line each, naming it and what to do instead. */
	for (int i = 0; i < OPT_COUNT; i++) {
		if (args.value[i] && opt_spec[i].refused) {
			slurm_error(TAG ": %s is not supported by strata: %s", opt_label((enum opt_id)i), opt_spec[i].refused);
			return -1;
		}
	}
	if (args.value[OPT_ENV] && valid_env_names(args.value[OPT_ENV]) < 0) {
		slurm_error(TAG ": %s: \"%s\" is not a list of variable names; use e.g. NAME or NAME1,NAME2 (the values come from your environment)",
			    opt_label(OPT_ENV), args.value[OPT_ENV]);
		return -1;
	}
	/* The mount list is checked by `strata resolve --mounts` (one parser, the prolog's). */
	if (args.value[OPT_WORKDIR] && args.value[OPT_WORKDIR][0] != '/') {
		slurm_error(TAG ": %s must be an absolute path: \"%s\"", opt_label(OPT_WORKDIR), args.value[OPT_WORKDIR]);
		return -1;
	}
	if (args.value[OPT_UPPER_SIZE] && size_bytes(args.value[OPT_UPPER_SIZE]) < 0) {
		slurm_error(TAG ": %s: \"%s\" is not a size; use e.g. 512M or 4G", opt_label(OPT_UPPER_SIZE),
			    args.value[OPT_UPPER_SIZE]);
		return -1;
	}
	/* Refused here, at submit, rather than when the job starts: the prolog refuses it too. */
	if (args.value[OPT_UPPER_SIZE] && size_bytes(args.value[OPT_UPPER_SIZE]) < STRATA_MIN_UPPER_SIZE) {
		slurm_error(TAG ": %s: \"%s\" is less than the smallest writable layer strata makes (%s); ask for at least %s, e.g. 512M",
			    opt_label(OPT_UPPER_SIZE), args.value[OPT_UPPER_SIZE], STRATA_MIN_UPPER_SIZE_TEXT, STRATA_MIN_UPPER_SIZE_TEXT);
		return -1;
	}
	if (args.value[OPT_BATCH] && parse_batch(args.value[OPT_BATCH]) < 0) {
		slurm_error(TAG ": %s must be \"container\" or \"host\": \"%s\"", opt_label(OPT_BATCH), args.value[OPT_BATCH]);
		return -1;
	}
	return 0;
}

void options_free(void)
{
	for (int i = 0; i < OPT_COUNT; i++) {
		free(args.value[i]);
		args.value[i] = NULL;
	}
}
