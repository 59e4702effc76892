/*
 * Unit tests of the plugin's pure parts (plugstack arguments, option values, entry.json), without
 * Slurm: linked with the plugin's objects (built with sanitizers), the Slurm functions they call stubbed.
 * Run with `make -C spank check`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/spank.h>

#include "strata.h"

static char last_error[1024];

void slurm_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}
void slurm_verbose(const char *fmt, ...) { (void)fmt; }
void slurm_debug(const char *fmt, ...) { (void)fmt; }
spank_context_t spank_context(void) { return S_CTX_ALLOCATOR; }
int spank_remote(spank_t sp) { (void)sp; return 0; }
spank_err_t spank_option_register(spank_t sp, struct spank_option *opt) { (void)sp; (void)opt; return ESPANK_SUCCESS; }
spank_err_t spank_get_item(spank_t sp, spank_item_t item, ...) { (void)sp; (void)item; return ESPANK_ERROR; }
spank_err_t spank_getenv(spank_t sp, const char *var, char *buf, int len) { (void)sp; (void)var; (void)buf; (void)len; return ESPANK_ENV_NOEXIST; }
spank_err_t spank_setenv(spank_t sp, const char *var, const char *val, int overwrite) { (void)sp; (void)var; (void)val; (void)overwrite; return ESPANK_SUCCESS; }
spank_err_t spank_unsetenv(spank_t sp, const char *var) { (void)sp; (void)var; return ESPANK_SUCCESS; }
spank_err_t spank_job_control_setenv(spank_t sp, const char *n, const char *v, int o) { (void)sp; (void)n; (void)v; (void)o; return ESPANK_SUCCESS; }


static int failures;
#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: FAILED: %s (last error: %s)\n", __FILE__, __LINE__, #cond, last_error); \
			failures++;                                                  \
		}                                                                    \
	} while (0)

static int parse(const char *line)
{
	char copy[512], *av[16];
	int ac = 0;

	snprintf(copy, sizeof(copy), "%s", line);
	for (char *tok = strtok(copy, " "); tok && ac < 16; tok = strtok(NULL, " "))
		av[ac++] = tok;
	return config_parse(ac, av);
}

static void test_config(void)
{
	CHECK(parse("") == 0 && !strcmp(conf.prefix, "container") && !strcmp(conf.runtime_dir, "/run/strata"));
	CHECK(parse("prefix=strata strata=/opt/strata/bin/strata.js runtime_dir=/run/s config=/etc/s.yaml batch=host timeout=5") == 0);
	CHECK(!strcmp(conf.prefix, "strata") && !strcmp(conf.strata, "/opt/strata/bin/strata.js") && conf.batch_host == 1 && conf.timeout == 5);
	CHECK(parse("bogus=1") < 0 && strstr(last_error, "unknown option \"bogus\""));
	CHECK(parse("strata") < 0 && strstr(last_error, "expected key=value"));
	CHECK(parse("strata=relative/path") < 0);
	CHECK(parse("prefix=Bad_Prefix") < 0);
	CHECK(parse("prefix=-x") < 0);
	CHECK(parse("batch=elsewhere") < 0);
	CHECK(parse("timeout=0") < 0 && parse("timeout=abc") < 0);
	CHECK(parse("import_timeout=7200") == 0 && conf.import_timeout == 7200 && conf.timeout == 60);
	CHECK(parse("import_timeout=0") < 0 && strstr(last_error, "import_timeout must be 1-86400 seconds"));
	CHECK(parse("node=") == 0 && conf.node[0] == '\0');
}

static void test_values(void)
{
	parse("");

	const char *good[] = { "1", "4096", "512M", "4G", "4g", "1.5G", "2GiB", "3T", "10 M", "7MB" };
	const char *bad[] = { "", "0", "0G", "G", "-1G", "+1G", "1.G", ".5G", "1X", "1GiBs", "lots", "1 2" };
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		CHECK(valid_size(good[i]) == 0 || !fprintf(stderr, "  size %s\n", good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		CHECK(valid_size(bad[i]) < 0 || !fprintf(stderr, "  size %s\n", bad[i]));

	CHECK(valid_digest("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
	CHECK(!valid_digest("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
	CHECK(!valid_digest("sha256:0123"));
	CHECK(!valid_digest("busybox:1"));
}

static void test_entry(void)
{
	struct entry e;
	char err[128];
	const char *full = "{\"jobId\":\"7\",\"env\":[\"PATH=/bin:/usr/bin\",\"A=\\u00e9\\n\",\"E=\\ud83d\\ude00\"],"
			   "\"workdir\":\"/w\",\"entrypoint\":[],\"cmd\":[\"sh\",\"-c\"],\"uid\":1000,\"gid\":100,"
			   "\"writable\":true,\"nested\":{\"a\":[1,2.5e3,null,false]},"
			   /* CDI fields the plugin does not use (docs/gpus.md): skipped */
			   "\"devices\":[\"nvidia.com/gpu=0\"],\"additionalGids\":[44]}";

	CHECK(entry_parse(full, strlen(full), &e, err, sizeof(err)) == 0);
	CHECK(e.env_len == 3 && !strcmp(e.env[0], "PATH=/bin:/usr/bin") && !strcmp(e.env[1], "A=\xc3\xa9\n"));
	CHECK(!strcmp(e.env[2], "E=\xf0\x9f\x98\x80") && e.env[3] == NULL);
	CHECK(e.workdir && !strcmp(e.workdir, "/w") && e.uid == 1000 && e.gid == 100);
	entry_free(&e);

	CHECK(entry_parse("{}", 2, &e, err, sizeof(err)) == 0 && e.env_len == 0 && e.env && e.env[0] == NULL && e.uid == -1);
	entry_free(&e);

	const char *bad[] = { "", "[]", "{", "{\"env\":[1]}", "{\"env\":[\"a\"]", "{\"uid\":1.5}", "{\"a\":tru}",
			      "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"x\"} x", "{\"a\":\"\x01\"}", "{\"a\" 1}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CHECK(entry_parse(bad[i], strlen(bad[i]), &e, err, sizeof(err)) < 0 || !fprintf(stderr, "  json %s\n", bad[i]));
		CHECK(err[0] != '\0');
	}
	/* nesting is bounded */
	char deep[200];
	memset(deep, '[', sizeof(deep));
	memcpy(deep, "{\"a\":", 5);
	CHECK(entry_parse(deep, sizeof(deep), &e, err, sizeof(err)) < 0);
}

static void args_reset(void)
{
	for (int i = 0; i < OPT_COUNT; i++) {
		free(args.value[i]);
		args.value[i] = NULL;
		args.from_env[i] = 0;
		args.env_name[i] = NULL;
	}
	last_error[0] = '\0';
}

static const char *const PYXIS_VARS[] = { "PYXIS_CONTAINER_IMAGE", "PYXIS_CONTAINER_MOUNTS", "PYXIS_CONTAINER_READONLY",
					  "PYXIS_CONTAINER_WRITABLE", "PYXIS_CONTAINER_REMAP_ROOT", "PYXIS_CONTAINER_NAME",
					  "PYXIS_CONTAINER_MOUNT_HOME", "STRATA_CONTAINER_IMAGE", NULL };

/* Pyxis's options and PYXIS_* variables (Pyxis's args.c and tests/invalid_args.bats, env_vars.bats). */
static void test_pyxis_options(void)
{
	parse("");
	CHECK(options_register(NULL) == 0);
	CHECK(!strcmp(opt_names[OPT_NO_MOUNT_HOME], "no-container-mount-home") && !strcmp(opt_names[OPT_ENTRYPOINT_LOG], "container-entrypoint-log"));
	for (int i = 0; PYXIS_VARS[i]; i++)
		unsetenv(PYXIS_VARS[i]);

	/* PYXIS_* are read when nothing else says; STRATA_CONTAINER_* and options win */
	args_reset();
	setenv("PYXIS_CONTAINER_IMAGE", "nvcr.io#nvidia/pytorch:24.05-py3", 1);
	setenv("PYXIS_CONTAINER_MOUNTS", "./data:/data:ro+rprivate", 1);
	options_from_env(NULL);
	CHECK(args.value[OPT_IMAGE] && !strcmp(args.value[OPT_IMAGE], "nvcr.io#nvidia/pytorch:24.05-py3"));
	CHECK(args.value[OPT_MOUNTS] && !strcmp(args.value[OPT_MOUNTS], "./data:/data:ro+rprivate"));
	CHECK(args_validate() == 0);
	args_reset();
	setenv("STRATA_CONTAINER_IMAGE", "pytorch:24.05", 1);
	options_from_env(NULL);
	CHECK(!strcmp(args.value[OPT_IMAGE], "pytorch:24.05"));
	args_reset();
	option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
	options_from_env(NULL);
	CHECK(!strcmp(args.value[OPT_IMAGE], "ubuntu:24.04"));
	unsetenv("STRATA_CONTAINER_IMAGE");

	/* a boolean variable sets its flag, or (false) the other half of the pair */
	args_reset();
	setenv("PYXIS_CONTAINER_READONLY", "0", 1);
	options_from_env(NULL);
	CHECK(args.value[OPT_WRITABLE] && !args.value[OPT_READONLY]);
	CHECK(args_validate() == 0);
	args_reset();
	setenv("PYXIS_CONTAINER_READONLY", "yes", 1);
	options_from_env(NULL);
	CHECK(args.value[OPT_READONLY] && !args.value[OPT_WRITABLE]);
	args_reset();
	setenv("PYXIS_CONTAINER_READONLY", "maybe", 1); /* not a boolean: ignored, as by Pyxis */
	options_from_env(NULL);
	CHECK(!args.value[OPT_READONLY] && !args.value[OPT_WRITABLE]);
	unsetenv("PYXIS_CONTAINER_READONLY");
	args_reset();
	setenv("PYXIS_CONTAINER_MOUNT_HOME", "0", 1);
	options_from_env(NULL);
	CHECK(args_validate() < 0 && strstr(last_error, "PYXIS_CONTAINER_MOUNT_HOME (--no-container-mount-home) is not supported by strata: strata always mounts your home directory"));
	unsetenv("PYXIS_CONTAINER_MOUNT_HOME");

	/* refused options: one line naming the option (or the variable) and what to do instead */
	const struct { enum opt_id id; const char *arg, *says; } refused[] = {
		{ OPT_REMAP_ROOT, NULL, "--container-remap-root is not supported by strata: tasks run as you" },
		{ OPT_ENTRYPOINT, NULL, "--container-entrypoint is not supported by strata: run the entrypoint yourself" },
		{ OPT_ENV, "FOO", "--container-env is not supported by strata: set the variables in the job itself" },
		{ OPT_UNSHARE, "net", "--container-unshare is not supported by strata: strata containers share the node's network" },
		{ OPT_NO_MOUNT_HOME, NULL, "--no-container-mount-home is not supported by strata" },
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
		args_reset();
		option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
		option_cb((int)refused[i].id, refused[i].arg, 0);
		CHECK((args_validate() < 0 && strstr(last_error, refused[i].says)) || !fprintf(stderr, "  refused %s: %s\n", refused[i].says, last_error));
		CHECK(!strchr(last_error, '\n'));
	}
	args_reset();
	setenv("PYXIS_CONTAINER_REMAP_ROOT", "1", 1);
	option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
	options_from_env(NULL);
	CHECK(args_validate() < 0 && strstr(last_error, "PYXIS_CONTAINER_REMAP_ROOT (--container-remap-root) is not supported by strata"));
	unsetenv("PYXIS_CONTAINER_REMAP_ROOT");

	/* accepted: what strata does anyway */
	args_reset();
	option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
	option_cb(OPT_MOUNT_HOME, NULL, 0);
	option_cb(OPT_NO_REMAP_ROOT, NULL, 0);
	option_cb(OPT_NO_ENTRYPOINT, NULL, 0);
	option_cb(OPT_ENTRYPOINT_LOG, NULL, 0);
	option_cb(OPT_SAVE, "/tmp/x.sqsh", 0);
	option_cb(OPT_NAME, "args-test:no_exec", 0);
	CHECK(args_validate() == 0 && args.value[OPT_SAVE] && !strcmp(args.value[OPT_SAVE], "/tmp/x.sqsh"));
	/* both halves of a pair */
	option_cb(OPT_ENTRYPOINT, NULL, 0);
	CHECK(args_validate() < 0 && strstr(last_error, "--container-entrypoint and --no-container-entrypoint exclude each other"));
	args_reset();
	option_cb(OPT_READONLY, NULL, 0);
	option_cb(OPT_WRITABLE, NULL, 0);
	option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
	CHECK(args_validate() < 0 && strstr(last_error, "--container-writable and --container-readonly exclude each other"));
	/* Pyxis's options without an image, on the command line: refused as strata's are */
	args_reset();
	option_cb(OPT_NAME, "args-test", 0);
	CHECK(args_validate() < 0 && strstr(last_error, "--container-name needs --container-image: strata keeps no container after its job"));
	/* ... except inside a container job: the name is the job's container (Pyxis's second srun) */
	setenv("SLURM_SPANK_STRATA_IMAGE", "ubuntu:24.04", 1);
	CHECK(args_validate() == 0);
	unsetenv("SLURM_SPANK_STRATA_IMAGE");
	args_reset();
	option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
	option_cb(OPT_NAME, "c:sometimes", 0);
	CHECK(args_validate() < 0 && strstr(last_error, "is not NAME[:auto|create|exec|no_exec]"));
	/* srun in an allocation without an image, the image from PYXIS_*: refused, never the bare host */
	args_reset();
	unsetenv("SLURM_SPANK_STRATA_IMAGE");
	setenv("PYXIS_CONTAINER_IMAGE", "ubuntu:24.04", 1);
	options_from_env(NULL);
	CHECK(step_in_allocation(args.value[OPT_IMAGE]) < 0 &&
	      strstr(last_error, "PYXIS_CONTAINER_IMAGE (--container-image) on srun inside an allocation without an image is not supported"));
	/* in a container job, the job's own image (inherited through the environment) is the step's */
	setenv("SLURM_SPANK_STRATA_IMAGE", "ubuntu:24.04", 1);
	CHECK(step_in_allocation(args.value[OPT_IMAGE]) == 0);
	unsetenv("SLURM_SPANK_STRATA_IMAGE");
	unsetenv("PYXIS_CONTAINER_IMAGE");
	/* an argument is required */
	args_reset();
	CHECK(option_cb(OPT_ENV, "", 0) < 0 && strstr(last_error, "--container-env: argument required"));
	args_reset();
}

int main(void)
{
	test_config();
	test_values();
	test_pyxis_options();
	test_entry();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("spank unit tests: ok\n");
	return 0;
}
