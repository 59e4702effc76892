/*
 * strata SPANK plugin: what its parts share. One file per context, as in Pyxis:
 *   config.c   plugstack.conf arguments (every context)
 *   options.c  the --<prefix>-* option table, environment fallbacks, validation
 *   submit.c   srun/sbatch/salloc: `strata resolve`, pinning, hand-over to the prolog
 *   task.c     slurmstepd: enter the rootfs the prolog prepared, or fail with its message
 *   task_files.c, task_command.c   its checks of root's files; the command and directory
 *   task_mounts.c  slurmstepd: the task's own binds (the job's Slurm /tmp, PMIx) before entering
 *   task_env.c slurmstepd: the task environment (image vs job, Pyxis's precedence)
 *   entrypoint.c  --container-entrypoint;  userns.c  --container-remap-root
 *   pytorch_env.c slurmstepd: the PyTorch distributed variables per task (site switch)
 *   plugin.c   the SPANK entry points, which only dispatch to the above
 *   json.c     the entry.json reader
 *   pmix.c     slurmstepd: the step's PMIx directories and variables (srun --mpi=pmix), pmix.h
 * Only plugin.c's slurm_spank_* symbols leave the shared object (strata.lds).
 */
#ifndef STRATA_SPANK_H
#define STRATA_SPANK_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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
	char pmix_tmpdir[PATH_MAX]; /* where Slurm makes PMIx client directories: slurm.conf TmpFS */
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
/* The largest size size_bytes reads: 2^53 - 1, as parseSize (Number.isSafeInteger). */
#define SIZE_BYTES_MAX 9007199254740991ULL
/*
 * The smallest writable layer: MIN_UPPER_SIZE in src/runtime/job/plan.ts (tmpfs reads size=0 as
 * "unlimited"); test/unit/c-constants.test.ts checks that the two agree.
 */
#define STRATA_MIN_UPPER_SIZE 1048576
#define STRATA_MIN_UPPER_SIZE_TEXT "1M"
long long size_bytes(const char *s);
/* A --container-env list: NAME[,NAME...]; 0, else -1. */
int valid_env_names(const char *list);
void options_free(void);

/* ---- submit.c ---- */

int submit_side(spank_t sp);
int step_in_allocation(const char *image);
int valid_digest(const char *s);

/* ---- task.c ---- */

/* slurm_spank_task_init_privileged: as root, enter the container (or remember why not). */
void task_enter(spank_t sp);
/* Whether this task prints the prolog's notice (entry "notice"): once per job where it can. */
int notice_here(int batch_step, uint32_t global_task, int in_batch_job);
/* slurm_spank_task_init: as the user, report a failure and end the task, or finish entering. */
void task_start(spank_t sp);

/* ---- task_mounts.c ---- */

/*
 * Root, before entering: in a mount namespace of the task's own (only when needed), bind the job's
 * /tmp and /dev/shm from Slurm (job_container/tmpfs) over strata's own /tmp at `strata_tmp` and the
 * node's /dev/shm, then the step's PMIx directories (pmix.c). 0, or -1 with a message for the user in `why`.
 */
int task_mounts(spank_t sp, const char *rootfs, const char *strata_tmp, const char *pmix_tmpdir, char *why, size_t len);

/* ---- task_files.c ---- */

/* A file or directory only root can have written: owned by root, no group/other write, no symlink. */
int root_owned(const char *path, mode_t type);
/* `path` is a real directory (no symlink) with a file system of its own, below `parent`. */
int is_mount_point(const char *path, const char *parent);
/* Reads a root-owned regular file (at most cap-1 bytes); returns its length or -1. */
ssize_t read_root_file(const char *path, char *buf, size_t cap);

/* ---- task_command.c ---- */

/* The PATH a command is looked up in when the image sets none. */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Make the batch script reachable from inside the container; -1 with a reason in `why`. */
int batch_script_through_fd(spank_t sp, char *why, size_t len);
/* srun's absolute command path, looked up by name in `path_var` when the container lacks it. */
void command_in_container(spank_t sp, const char *path_var);
/* The first executable `name` in a PATH list, into out; 0, or -1 if none. */
int path_lookup(const char *name, const char *path_var, char *out, size_t len);
int make_dirs(const char *path);

/* ---- task_env.c ---- */

/*
 * Apply the image's environment to the task, with Pyxis's precedence; `keep` lists the names
 * whose job values win (--container-env). Returns the PATH to find srun's command in (the
 * image's, the job's when kept, or NULL for none).
 */
const char *task_env_apply(spank_t sp, struct entry *entry, const char *keep);
/*
 * Append the devices' search-path directories (entry.json "devicePaths") to whatever value of each
 * variable the task has now, each once. Returns the task's PATH when it changed it (static), else NULL.
 */
const char *device_paths_apply(spank_t sp, const struct entry *entry);
/* `value` with the directories of `dirs` it lacks appended, into out; -1 if it does not fit. */
int search_path_append(char *out, size_t len, const char *value, const char *dirs);
/* A variable of the job's environment, into buf; 1 if set and not empty. */
int job_env(spank_t sp, const char *name, char *buf, size_t len);
/* "K=V" is Slurm's or the PMI/PMIx wire-up: always the job's, never the image's. */
int env_is_slurm(const char *kv);
/* `name` (length len) is one of the comma-separated names in `list` (NULL: none). */
int in_list(const char *list, const char *name, size_t len);

/* ---- entrypoint.c ---- */

/*
 * Run the image's entrypoint (inside the container, as the task's user) and give the task the
 * environment it leaves; 0, or -1 with a one-line reason in `why`.
 */
int entrypoint_run(spank_t sp, const struct entry *e, const char *keep, int show_log, char *why, size_t len);

/* ---- userns.c ---- */

struct remap {
	pid_t helper; /* root helper that writes the maps; -1 when none */
	int sock;     /* to the helper */
};

/* As root, before privileges are dropped: start the helper. 0, or -1 with errno. */
int remap_prepare(struct remap *r, uid_t uid, gid_t gid);
/* As the user: become uid/gid 0 in a new user namespace; 0, or -1 with a reason in `why`. */
int remap_enter(struct remap *r, char *why, size_t len);

/* ---- pytorch_env.c ---- */

/* MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK for this task, when entry.json asks. */
void pytorch_env_apply(spank_t sp, const struct entry *entry, const char *keep);
/* The first host name of a Slurm host list ("gpu[07-10,12]-ib,x1" -> "gpu07-ib"): 0, or -1. */
int first_host(const char *list, char *out, size_t len);

#endif
