/*
 * strata SPANK plugin: `--container-*` options, submit-time pinning, and task entry.
 *
 *   local (srun) and allocator (sbatch, salloc) context, slurm_spank_init_post_opt:
 *     read the options (or their STRATA_CONTAINER_* environment fallbacks), run
 *     `strata resolve IMAGE` as the submitting user to validate the reference and pin it to a
 *     manifest digest, and hand everything to the prolog with spank_job_control_setenv
 *     (STRATA_IMAGE -> SPANK_STRATA_IMAGE in the prolog's environment, and so on). An unknown
 *     image fails sbatch/srun/salloc with the tool's message, before any job exists.
 *
 *   remote context (slurmstepd), in each task process before exec:
 *     slurm_spank_task_init_privileged (root): if the prolog recorded a user error for the job,
 *       remember it; else chroot into <runtime_dir>/jobs/<jobid>/rootfs, set no_new_privs and
 *       apply the image environment. Slurm then drops privileges as usual.
 *     slurm_spank_task_init (the user, stdio connected to the task's): print the remembered
 *       error on the task's stderr and end the task with exit status 1, or chdir to the
 *       container working directory given with --container-workdir.
 *
 * The plugin mounts nothing in the node's mount namespace: the prolog prepares the rootfs, the
 * epilog removes it. Only Slurm's per-step PMIx directories, which exist from step start on, are
 * bound by the task itself in a mount namespace of its own (pmix.c).
 * It defines no slurm_spank_job_prolog/epilog on purpose: with one, slurmd strips SPANK option
 * variables from the prolog environment (see docs/slurm.md).
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "json.h"
#include "pmix.h"

SPANK_PLUGIN(strata, 1);

#ifndef SLURM_BATCH_SCRIPT
#define SLURM_BATCH_SCRIPT 0xfffffffb
#endif
#ifndef SLURM_EXTERN_CONT
#define SLURM_EXTERN_CONT 0xfffffffc
#endif

#define TAG "strata"
#define MSG_MAX 4096

/* ---------------------------------------------------------------------------------------------
 * Configuration: plugstack.conf arguments
 *   required /usr/lib/x86_64-linux-gnu/slurm/strata.so [key=value ...]
 * --------------------------------------------------------------------------------------------- */

static struct {
	char prefix[32];          /* option prefix: --<prefix>-image ... */
	char strata[PATH_MAX];    /* the strata CLI (executable, or a .js run by `node`) */
	char node[PATH_MAX];      /* interpreter for a .js CLI; "" = run `strata` directly */
	char runtime_dir[256];     /* short: it is also in overlay mount options */
	char config[PATH_MAX];    /* STRATA_CONFIG for `strata resolve`; "" = strata's default */
	int batch_host;           /* site default for the batch step: 0 in the container, 1 on the host */
	int timeout;              /* seconds allowed for `strata resolve` */
	int import_timeout;       /* seconds once it says it imports the image on first use */
	char pmix_tmpdir[PATH_MAX]; /* where Slurm makes PMIx client directories: slurm.conf TmpFS */
} conf;

static int parse_bool(const char *s)
{
	if (!strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "y"))
		return 1;
	if (!strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "n"))
		return 0;
	return -1;
}

/* "container" / "host" for the batch step placement; -1 if neither. */
static int parse_batch(const char *s)
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

static int config_parse(int ac, char **av)
{
	memset(&conf, 0, sizeof(conf));
	strcpy(conf.prefix, "container");
	strcpy(conf.strata, "/usr/bin/strata");
	strcpy(conf.runtime_dir, "/run/strata");
	strcpy(conf.pmix_tmpdir, "/tmp");
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
		} else if (KEY("pmix_tmpdir")) {
			if (copy_path(conf.pmix_tmpdir, sizeof(conf.pmix_tmpdir), "pmix_tmpdir", v, 0) < 0)
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

/* ---------------------------------------------------------------------------------------------
 * Options: --<prefix>-image and friends, with STRATA_CONTAINER_* environment fallbacks
 * --------------------------------------------------------------------------------------------- */

enum opt_id {
	OPT_IMAGE, OPT_MOUNTS, OPT_WORKDIR, OPT_WRITABLE, OPT_READONLY, OPT_UPPER_SIZE, OPT_BATCH, OPT_DEVICES,
	/* Pyxis's other options: accepted where strata does what Pyxis means, else refused (`refused`) */
	OPT_NAME, OPT_SAVE, OPT_MOUNT_HOME, OPT_NO_MOUNT_HOME, OPT_REMAP_ROOT, OPT_NO_REMAP_ROOT,
	OPT_ENTRYPOINT, OPT_NO_ENTRYPOINT, OPT_ENTRYPOINT_LOG, OPT_ENV, OPT_UNSHARE,
	OPT_COUNT
};

#define NO_OPT OPT_COUNT

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
	[OPT_NAME] = { "name", 0, NULL, "PYXIS_CONTAINER_NAME", NO_OPT, "NAME",
		"[strata] not supported (Pyxis's named containers)",
		"strata keeps no container after its job; within a job, every step on a node already runs in the job's "
		"container and sees what earlier steps wrote, so drop it (to keep software, build an image: strata import dir:DIR --base IMAGE --tag ~/NAME:TAG)" },
	[OPT_SAVE] = { "save", 0, NULL, "PYXIS_CONTAINER_SAVE", NO_OPT, "PATH",
		"[strata] not supported yet (Pyxis: save the container as a squashfs file)",
		"to keep what a job installed, copy it out in the job and build an image from it: strata import dir:DIR --base IMAGE --tag ~/NAME:TAG" },
	[OPT_MOUNT_HOME] = { "mount-home", 0, NULL, "PYXIS_CONTAINER_MOUNT_HOME", OPT_NO_MOUNT_HOME, NULL,
		"[strata] bind mount your home directory (strata always does)", NULL },
	[OPT_NO_MOUNT_HOME] = { "mount-home", 1, NULL, NULL, OPT_MOUNT_HOME, NULL,
		"[strata] not supported: strata always mounts your home directory",
		"strata always mounts your home directory; to hide it, mount an empty directory over it "
		"(--container-mounts=/path/to/empty:$HOME)" },
	[OPT_REMAP_ROOT] = { "remap-root", 0, NULL, "PYXIS_CONTAINER_REMAP_ROOT", OPT_NO_REMAP_ROOT, NULL,
		"[strata] not supported yet (Pyxis: run as root in a user namespace)",
		"tasks run as you; install software into an image instead (strata import dir:DIR --base IMAGE --tag ~/NAME:TAG)" },
	[OPT_NO_REMAP_ROOT] = { "remap-root", 1, NULL, NULL, OPT_REMAP_ROOT, NULL,
		"[strata] run as yourself in the container (always so)", NULL },
	[OPT_ENTRYPOINT] = { "entrypoint", 0, NULL, "PYXIS_CONTAINER_ENTRYPOINT", OPT_NO_ENTRYPOINT, NULL,
		"[strata] not supported yet (Pyxis: run the image's entrypoint first)",
		"run the entrypoint yourself as the command (e.g. srun --container-image=IMAGE /entrypoint.sh CMD...)" },
	[OPT_NO_ENTRYPOINT] = { "entrypoint", 1, NULL, NULL, OPT_ENTRYPOINT, NULL,
		"[strata] do not run the image's entrypoint (always so)", NULL },
	[OPT_ENTRYPOINT_LOG] = { "entrypoint-log", 0, NULL, "PYXIS_CONTAINER_ENTRYPOINT_LOG", NO_OPT, NULL,
		"[strata] accepted for Pyxis scripts; no effect (strata runs no entrypoint)", NULL },
	[OPT_ENV] = { "env", 0, NULL, "PYXIS_CONTAINER_ENV", NO_OPT, "NAME[,NAME...]",
		"[strata] not supported yet (Pyxis: host values that override the image's)",
		"set the variables in the job itself (export them in the batch script, or srun ... env NAME=VALUE CMD)" },
	[OPT_UNSHARE] = { "unshare", 0, NULL, "PYXIS_CONTAINER_UNSHARE", NO_OPT, "NS[,NS...]",
		"[strata] not supported (Pyxis: new net, ipc or uts namespaces)",
		"strata containers share the node's network, IPC and host name, as Pyxis's do by default; drop it" },
};

static char opt_names[OPT_COUNT][SPANK_OPTION_MAXLEN + 1];

static struct {
	char *value[OPT_COUNT]; /* NULL = not given; flags store "1" */
	int from_env[OPT_COUNT];
	const char *env_name[OPT_COUNT]; /* the variable it came from, for messages */
} args;

static int option_cb(int val, const char *optarg, int remote);

static void opt_set(enum opt_id id, const char *value, int from_env)
{
	args.env_name[id] = NULL;
	free(args.value[id]);
	args.value[id] = strdup(value);
	args.from_env[id] = from_env;
}

static int option_cb(int val, const char *optarg, int remote)
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

static int options_register(spank_t sp)
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
static void options_from_env(spank_t sp)
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
static const char *opt_label(enum opt_id id)
{
	static char labels[OPT_COUNT][SPANK_OPTION_MAXLEN + 48]; /* one per option: a message may name two */

	if (args.from_env[id])
		snprintf(labels[id], sizeof(labels[id]), "%s (--%s)", args.env_name[id] ? args.env_name[id] : opt_spec[id].env,
			 opt_names[id]);
	else
		snprintf(labels[id], sizeof(labels[id]), "--%s", opt_names[id]);
	return labels[id];
}

/* ---------------------------------------------------------------------------------------------
 * Submit side (srun, sbatch, salloc): validate, resolve, pin, hand over to the prolog
 * --------------------------------------------------------------------------------------------- */

/* A size as strata reads it (SIZE_RE in src/config/validate.ts): 512M, 4G, 1.5GiB, 4096; not 0. */
static int valid_size(const char *s)
{
	const char *p = s;
	int nonzero = 0;

	while (*p >= '0' && *p <= '9')
		nonzero |= *p++ != '0';
	if (p == s)
		return -1;
	if (*p == '.') {
		const char *frac = ++p;
		while (*p >= '0' && *p <= '9')
			nonzero |= *p++ != '0';
		if (p == frac)
			return -1;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p && strchr("kKmMgGtT", *p)) {
		p++;
		if (*p == 'i' || *p == 'I')
			p++;
	}
	if (*p == 'b' || *p == 'B')
		p++;
	return nonzero && *p == '\0' ? 0 : -1;
}

static int args_validate(void)
{
	if (!args.value[OPT_IMAGE]) {
		for (int i = 0; i < OPT_COUNT; i++) {
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
	/* The mount list is checked by `strata resolve --mounts` (one parser, the prolog's). */
	if (args.value[OPT_WORKDIR] && args.value[OPT_WORKDIR][0] != '/') {
		slurm_error(TAG ": %s must be an absolute path: \"%s\"", opt_label(OPT_WORKDIR), args.value[OPT_WORKDIR]);
		return -1;
	}
	if (args.value[OPT_UPPER_SIZE] && valid_size(args.value[OPT_UPPER_SIZE]) < 0) {
		slurm_error(TAG ": %s: \"%s\" is not a size; use e.g. 512M or 4G", opt_label(OPT_UPPER_SIZE),
			    args.value[OPT_UPPER_SIZE]);
		return -1;
	}
	if (args.value[OPT_BATCH] && parse_batch(args.value[OPT_BATCH]) < 0) {
		slurm_error(TAG ": %s must be \"container\" or \"host\": \"%s\"", opt_label(OPT_BATCH), args.value[OPT_BATCH]);
		return -1;
	}
	return 0;
}

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

static int valid_digest(const char *s)
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

static int step_in_allocation(const char *image)
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

static int submit_side(spank_t sp)
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
	if (spank_context() == S_CTX_LOCAL && (getenv("SLURM_JOB_ID") || getenv("SLURM_JOBID")))
		return step_in_allocation(image);

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
			{ "STRATA_WRITABLE", args.value[OPT_WRITABLE] ? "1" : args.value[OPT_READONLY] ? "0" : NULL },
			{ "STRATA_UPPER_SIZE", args.value[OPT_UPPER_SIZE] },
			{ "STRATA_DEVICES", args.value[OPT_DEVICES] },
			/* for the task side: in the job environment as SLURM_SPANK_STRATA_BATCH */
			{ "STRATA_BATCH", args.value[OPT_BATCH] },
		};
		for (size_t i = 0; i < sizeof(handover) / sizeof(handover[0]); i++)
			if (handover[i].value && setenv_job(sp, handover[i].name, handover[i].value) < 0)
				return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Task side (slurmstepd): enter the rootfs the prolog prepared, or fail with its message
 * --------------------------------------------------------------------------------------------- */

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
static int job_env(spank_t sp, const char *name, char *buf, size_t len)
{
	return spank_getenv(sp, name, buf, (int)len) == ESPANK_SUCCESS && buf[0] != '\0';
}

static void task_enter(spank_t sp)
{
	char dir[512], path[PATH_MAX], why[1024], value[PATH_MAX], keep[1024];
	static char job_path[PATH_MAX]; /* the job's PATH, when the user keeps it */
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
	/* The step's PMIx directories (srun --mpi=pmix), in a mount namespace of the task's own. */
	snprintf(value, sizeof(value), "%s/tmp/t", dir);
	if (pmix_bind_step(sp, path, value, conf.pmix_tmpdir, why, sizeof(why)) < 0) {
		task_fail("%s", why);
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
	for (size_t i = 0; i < entry.env_len; i++) {
		char *kv = entry.env[i], *eq = strchr(kv, '=');
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
	if (!batch)
		command_in_container(sp, image_path ? image_path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
out:
	entry_free(&entry);
}

/* ---------------------------------------------------------------------------------------------
 * SPANK entry points
 * --------------------------------------------------------------------------------------------- */

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();

	if (config_parse(ac, av) < 0)
		return -1;
	if (ctx == S_CTX_LOCAL || ctx == S_CTX_ALLOCATOR || ctx == S_CTX_REMOTE)
		return options_register(sp);
	return 0;
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();

	/*
	 * A rejected submission ends sbatch/srun/salloc here, with only our message (as Shifter
	 * does); returning -1 would add Slurm's generic plugin-failure lines to it.
	 */
	if ((ctx == S_CTX_LOCAL || ctx == S_CTX_ALLOCATOR) && submit_side(sp) < 0)
		exit(1);
	return 0;
}

int slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
	if (!spank_remote(sp))
		return 0;
	task_enter(sp);
	return 0; /* failures are reported in slurm_spank_task_init, where stderr is the task's */
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

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	int local_task = 0;

	if (!spank_remote(sp))
		return 0;
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
	if (task.entered)
		pmix_map_env(sp);
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
	return 0;
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	for (int i = 0; i < OPT_COUNT; i++) {
		free(args.value[i]);
		args.value[i] = NULL;
	}
	return 0;
}
