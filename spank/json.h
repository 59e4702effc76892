/* Reader for the prolog's entry.json (the one JSON document the plugin reads). */
#ifndef STRATA_JSON_H
#define STRATA_JSON_H

#include <stddef.h>

/*
 * <runtime_dir>/jobs/<jobid>/entry.json, written by the prolog once the rootfs is ready:
 *   {"v": 1, "env": ["K=V", ...], "workdir": "/path", "entrypoint": [...], "cmd": [...], "uid": N,
 *    "gid": N, "runEntrypoint": bool, "remapRoot": bool, "pytorchEnv": bool, "notice": "...",
 *    "devicePaths": ["NAME=DIR:DIR", ...]}
 * Unknown keys are skipped, so the prolog may add fields without breaking older plugins; a field
 * an older plugin must not skip comes with a new "v", which this plugin then refuses rather than
 * enter a container half-understood.
 */

/* The entry format this plugin reads: ENTRY_VERSION in src/runtime/job/records.ts (a unit test,
 * test/unit/c-constants.test.ts, checks they agree). An entry without "v" is version 1. */
#define STRATA_ENTRY_VERSION 1

/* entry_parse's result for a well-formed entry of a format this plugin does not read. */
#define ENTRY_E_VERSION (-2)
struct entry {
	char **env;        /* NULL-terminated "K=V" strings */
	size_t env_len;
	char **entrypoint; /* NULL-terminated; empty when the image has none */
	size_t entrypoint_len;
	int run_entrypoint; /* the job's (or the site's) choice; 0 when absent */
	int remap_root;    /* idem */
	char *workdir;     /* NULL when absent */
	long long uid;     /* -1 when absent */
	long long gid;     /* -1 when absent */
	int pytorch_env;   /* "pytorchEnv": true: set the PyTorch distributed variables per task */
	long long version; /* "v"; 1 when absent */
	char *notice;      /* "notice": one line for the job's output (e.g. a size not enforced); NULL when absent */
	char **device_paths; /* "devicePaths": NULL-terminated "NAME=DIR:DIR", the devices' search-path dirs */
	size_t device_paths_len;
};

/* Parse `len` bytes of `text`. Returns 0; -1 with a short reason in `err` for a damaged entry;
 * ENTRY_E_VERSION with the versions in `err` for an entry whose "v" is not STRATA_ENTRY_VERSION. */
int entry_parse(const char *text, size_t len, struct entry *out, char *err, size_t errlen);
void entry_free(struct entry *e);

#endif
