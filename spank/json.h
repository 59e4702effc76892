/* Reader for the prolog's entry.json (the one JSON document the plugin reads). */
#ifndef STRATA_JSON_H
#define STRATA_JSON_H

#include <stddef.h>

/*
 * <runtime_dir>/jobs/<jobid>/entry.json, written by the prolog once the rootfs is ready:
 *   {"env": ["K=V", ...], "workdir": "/path", "entrypoint": [...], "cmd": [...], "uid": N, "gid": N,
 *    "runEntrypoint": bool, "remapRoot": bool, "pytorchEnv": bool, "devicePaths": ["NAME=DIR:DIR", ...]}
 * Unknown keys are skipped, so the prolog may add fields without breaking older plugins.
 */
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
	char **device_paths; /* "devicePaths": NULL-terminated "NAME=DIR:DIR", the devices' search-path dirs */
	size_t device_paths_len;
};

/* Parse `len` bytes of `text`. Returns 0, or -1 with a short reason in `err`. */
int entry_parse(const char *text, size_t len, struct entry *out, char *err, size_t errlen);
void entry_free(struct entry *e);

#endif
