/*
 * strata SPANK plugin: what its parts share. One file per context, as in Pyxis:
 *   config.c   plugstack.conf arguments (every context)
 *   options.c  the --<prefix>-* option table, environment fallbacks, validation
 *   submit.c   srun/sbatch/salloc: `strata resolve`, pinning, hand-over to the prolog
 *   task.c     slurmstepd: enter the rootfs the prolog prepared, or fail with its message
 *   task_env.c slurmstepd: the task environment (image vs job, Pyxis's precedence)
 *   plugin.c   the SPANK entry points, which only dispatch to the above
 *   json.c     the entry.json reader
 * Only plugin.c's slurm_spank_* symbols leave the shared object (strata.lds).
 */
#ifndef STRATA_SPANK_H
#define STRATA_SPANK_H

#include <limits.h>
#include <stddef.h>

#include <slurm/spank.h>

#include "json.h"

#define TAG "strata"
#define MSG_MAX 4096

/* ---- config.c ---- */

struct plugin_conf {
	char prefix[32];          /* option prefix: --<prefix>-image ... */
	char strata[PATH_MAX];    /* the strata CLI (executable, or a .js run by `node`) */
	char node[PATH_MAX];      /* interpreter for a .js CLI; "" = run `strata` directly */
	char runtime_dir[256];    /* short: it is also in overlay mount options */
	char config[PATH_MAX];    /* STRATA_CONFIG for `strata resolve`; "" = strata's default */
	int batch_host;           /* site default for the batch step: 0 in the container, 1 on the host */
	int timeout;              /* seconds allowed for `strata resolve` */
	int import_timeout;       /* seconds once it says it imports the image on first use */
};

extern struct plugin_conf conf;

int config_parse(int ac, char **av);
/* 1 for 1/true/yes/y, 0 for 0/false/no/n (any case), -1 otherwise. */
int parse_bool(const char *s);
/* "container" -> 0, "host" -> 1 (batch step placement); -1 if neither. */
int parse_batch(const char *s);

/* ---- options.c ---- */

enum opt_id {
	OPT_IMAGE, OPT_MOUNTS, OPT_WORKDIR, OPT_WRITABLE, OPT_READONLY, OPT_UPPER_SIZE, OPT_BATCH, OPT_DEVICES,
	/* Pyxis's other options: accepted where strata does what Pyxis means, else refused (`refused`) */
	OPT_NAME, OPT_SAVE, OPT_MOUNT_HOME, OPT_NO_MOUNT_HOME, OPT_REMAP_ROOT, OPT_NO_REMAP_ROOT,
	OPT_ENTRYPOINT, OPT_NO_ENTRYPOINT, OPT_ENTRYPOINT_LOG, OPT_ENV, OPT_UNSHARE,
	OPT_COUNT
};

#define NO_OPT OPT_COUNT

/* The option values of this process (submit side or task), as given or from the environment. */
struct option_values {
	char *value[OPT_COUNT]; /* NULL = not given; flags store "1" */
	int from_env[OPT_COUNT];
	const char *env_name[OPT_COUNT]; /* the variable it came from, for messages */
};

extern struct option_values args;
/* Full option names as registered ("container-image", "no-container-mount-home", ...). */
extern char opt_names[OPT_COUNT][SPANK_OPTION_MAXLEN + 1];

int options_register(spank_t sp);
int option_cb(int val, const char *optarg, int remote);
void opt_set(enum opt_id id, const char *value, int from_env);
/* Fill options not given from STRATA_CONTAINER_*, then PYXIS_CONTAINER_* (the job's, in slurmstepd). */
void options_from_env(spank_t sp);
/* How an option is named in messages: "--container-x", or "VAR (--container-x)". */
const char *opt_label(enum opt_id id);
/* 0 if the options make sense together; else -1 after one slurm_error line. */
int args_validate(void);
/* A size as strata reads it (512M, 4G, 1.5GiB, 4096; not 0): 0, else -1. */
int valid_size(const char *s);
void options_free(void);

/* ---- submit.c ---- */

int submit_side(spank_t sp);
int step_in_allocation(const char *image);
int valid_digest(const char *s);

/* ---- task.c ---- */

/* slurm_spank_task_init_privileged: as root, enter the container (or remember why not). */
void task_enter(spank_t sp);
/* slurm_spank_task_init: as the user, report a failure and end the task, or change directory. */
void task_start(spank_t sp);

/* ---- task_env.c ---- */

/*
 * Apply the image's environment to the task, with Pyxis's precedence. Returns the PATH to find
 * srun's command in (the image's, the job's when kept, or NULL for none).
 */
const char *task_env_apply(spank_t sp, struct entry *entry);
/* A variable of the job's environment, into buf; 1 if set and not empty. */
int job_env(spank_t sp, const char *name, char *buf, size_t len);

#endif
