/*
 * Unit tests of the plugin's pure parts (plugstack arguments, option values, entry.json), without
 * Slurm: linked with the plugin's objects (built with sanitizers), the Slurm functions they call stubbed.
 * Run with `make -C spank check`.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slurm/spank.h>

#include "pmix.h"
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
/* The task environment spank_getenv/spank_setenv work on: a small table. */
static struct { char name[64], value[256]; } job_environ[32];

spank_err_t spank_getenv(spank_t sp, const char *var, char *buf, int len)
{
	(void)sp;
	for (size_t i = 0; i < sizeof(job_environ) / sizeof(*job_environ); i++)
		if (job_environ[i].name[0] && !strcmp(job_environ[i].name, var))
			return snprintf(buf, (size_t)len, "%s", job_environ[i].value) < len ? ESPANK_SUCCESS : ESPANK_NOSPACE;
	return ESPANK_ENV_NOEXIST;
}
spank_err_t spank_setenv(spank_t sp, const char *var, const char *val, int overwrite)
{
	size_t free_slot = SIZE_MAX;
	(void)sp;
	for (size_t i = 0; i < sizeof(job_environ) / sizeof(*job_environ); i++) {
		if (job_environ[i].name[0] && !strcmp(job_environ[i].name, var)) {
			if (!overwrite)
				return ESPANK_ENV_EXISTS;
			snprintf(job_environ[i].value, sizeof(job_environ[i].value), "%s", val);
			return ESPANK_SUCCESS;
		}
		if (!job_environ[i].name[0] && free_slot == SIZE_MAX)
			free_slot = i;
	}
	if (free_slot == SIZE_MAX)
		return ESPANK_ERROR;
	snprintf(job_environ[free_slot].name, sizeof(job_environ[free_slot].name), "%s", var);
	snprintf(job_environ[free_slot].value, sizeof(job_environ[free_slot].value), "%s", val);
	return ESPANK_SUCCESS;
}
spank_err_t spank_unsetenv(spank_t sp, const char *var)
{
	(void)sp;
	for (size_t i = 0; i < sizeof(job_environ) / sizeof(*job_environ); i++)
		if (!strcmp(job_environ[i].name, var))
			job_environ[i].name[0] = '\0';
	return ESPANK_SUCCESS;
}
static const char *job_value(const char *name)
{
	static char buf[256];
	return spank_getenv(NULL, name, buf, sizeof(buf)) == ESPANK_SUCCESS ? buf : NULL;
}
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
	const char *bad[] = { "", "G", "-1G", "+1G", "1.G", ".5G", "1X", "1GiBs", "lots", "1 2", "1.5" };
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		CHECK(size_bytes(good[i]) > 0 || !fprintf(stderr, "  size %s\n", good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		CHECK(size_bytes(bad[i]) < 0 || !fprintf(stderr, "  size %s\n", bad[i]));
	CHECK(size_bytes("0") == 0 && size_bytes("0G") == 0);

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
			   "\"devices\":[\"nvidia.com/gpu=0\"],\"additionalGids\":[44],"
			   "\"devicePaths\":[\"LD_LIBRARY_PATH=/usr/local/nvidia/lib64\"]}";

	CHECK(entry_parse(full, strlen(full), &e, err, sizeof(err)) == 0);
	CHECK(e.env_len == 3 && !strcmp(e.env[0], "PATH=/bin:/usr/bin") && !strcmp(e.env[1], "A=\xc3\xa9\n"));
	CHECK(!strcmp(e.env[2], "E=\xf0\x9f\x98\x80") && e.env[3] == NULL);
	CHECK(e.device_paths_len == 1 && !strcmp(e.device_paths[0], "LD_LIBRARY_PATH=/usr/local/nvidia/lib64") && e.device_paths[1] == NULL);
	CHECK(e.workdir && !strcmp(e.workdir, "/w") && e.uid == 1000 && e.gid == 100);
	CHECK(e.entrypoint_len == 0 && e.entrypoint && e.entrypoint[0] == NULL && e.run_entrypoint == 0 && e.remap_root == 0);
	entry_free(&e);

	const char *flags = "{\"entrypoint\":[\"/docker-entrypoint.sh\",\"--quiet\"],\"runEntrypoint\":true,\"remapRoot\":false}";
	CHECK(entry_parse(flags, strlen(flags), &e, err, sizeof(err)) == 0);
	CHECK(e.entrypoint_len == 2 && !strcmp(e.entrypoint[1], "--quiet") && e.entrypoint[2] == NULL && e.run_entrypoint == 1 && e.remap_root == 0);
	entry_free(&e);
	CHECK(entry_parse("{\"remapRoot\":1}", 14, &e, err, sizeof(err)) < 0 && strstr(err, "true or false"));

	CHECK(entry_parse("{}", 2, &e, err, sizeof(err)) == 0 && e.env_len == 0 && e.env && e.env[0] == NULL && e.uid == -1);
	CHECK(e.device_paths_len == 0 && e.device_paths && e.device_paths[0] == NULL);
	entry_free(&e);

	const char *bad[] = { "", "[]", "{", "{\"env\":[1]}", "{\"env\":[\"a\"]", "{\"uid\":1.5}", "{\"a\":tru}",
			      "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"x\"} x", "{\"a\":\"\x01\"}", "{\"a\" 1}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CHECK(entry_parse(bad[i], strlen(bad[i]), &e, err, sizeof(err)) < 0 || !fprintf(stderr, "  json %s\n", bad[i]));
		CHECK(err[0] != '\0');
	}
	/* the entry format: absent or 1 is read; another version is refused as such, not as damage */
	CHECK(entry_parse("{\"v\":1,\"uid\":5}", strlen("{\"v\":1,\"uid\":5}"), &e, err, sizeof(err)) == 0 && e.version == 1 && e.uid == 5);
	entry_free(&e);
	CHECK(entry_parse("{}", 2, &e, err, sizeof(err)) == 0 && e.version == 1);
	entry_free(&e);
	const char *other[] = { "{\"v\":2,\"uid\":5}", "{\"uid\":5,\"v\":0}", "{\"v\":-1}", "{\"v\":99999999999999999999}" };
	for (size_t i = 0; i < sizeof(other) / sizeof(*other); i++) {
		CHECK(entry_parse(other[i], strlen(other[i]), &e, err, sizeof(err)) == ENTRY_E_VERSION || !fprintf(stderr, "  entry %s\n", other[i]));
		CHECK(strstr(err, "entry format") && strstr(err, "this plugin reads 1") && e.env == NULL);
	}
	CHECK(entry_parse("{\"v\":2}", strlen("{\"v\":2}"), &e, err, sizeof(err)) == ENTRY_E_VERSION && !strcmp(err, "entry format 2, this plugin reads 1"));
	/* the prolog's notice for the job's output, printed once per job */
	CHECK(entry_parse("{\"notice\":\"size not enforced\"}", strlen("{\"notice\":\"size not enforced\"}"), &e, err, sizeof(err)) == 0);
	CHECK(e.notice && !strcmp(e.notice, "size not enforced"));
	entry_free(&e);
	CHECK(entry_parse("{}", 2, &e, err, sizeof(err)) == 0 && e.notice == NULL);
	entry_free(&e);
	CHECK(notice_here(1, 0, 1) && notice_here(0, 0, 0));
	CHECK(!notice_here(0, 0, 1) && !notice_here(0, 1, 0) && !notice_here(0, 3, 1));

	/* a damaged entry stays damaged whatever its version says */
	CHECK(entry_parse("{\"v\":2,\"env\":[1]}", strlen("{\"v\":2,\"env\":[1]}"), &e, err, sizeof(err)) == -1);
	CHECK(entry_parse("{\"v\":1.5}", strlen("{\"v\":1.5}"), &e, err, sizeof(err)) == -1);

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

/* --container-upper-size: read as the prolog reads it, and refused at submit below the minimum. */
static void test_upper_size(void)
{
	const struct { const char *text; long long bytes; } sizes[] = {
		{ "1M", 1048576 }, { "1m", 1048576 }, { "1MiB", 1048576 }, { "1024K", 1048576 }, { "1048576", 1048576 },
		{ "1.5G", 1610612736 }, { "0.5K", 512 }, { "0.0001K", 0 }, { "1.5", -1 }, { "1.5B", -1 }, { "4097", 4097 },
		{ "8191T", 9006099743113216 }, { "8192T", -1 }, { "99999999999999999999", -1 },
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++)
		CHECK(size_bytes(sizes[i].text) == sizes[i].bytes || !fprintf(stderr, "  size %s: %lld\n", sizes[i].text, size_bytes(sizes[i].text)));

	const char *small[] = { "0.0001K", "0", "0G", "1023K", "4096", "0.99M" };
	for (size_t i = 0; i < sizeof(small) / sizeof(*small); i++) {
		args_reset();
		option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
		option_cb(OPT_UPPER_SIZE, small[i], 0);
		last_error[0] = '\0';
		CHECK(args_validate() < 0 || !fprintf(stderr, "  upper size %s\n", small[i]));
		CHECK(strstr(last_error, "is less than the smallest writable layer strata makes (1M); ask for at least 1M") != NULL);
		CHECK(strchr(last_error, '\n') == NULL);
	}
	args_reset();
	option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
	option_cb(OPT_UPPER_SIZE, "1M", 0);
	CHECK(args_validate() == 0);
	args_reset();
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
	/* PYXIS_CONTAINER_MOUNT_HOME=0 is --no-container-mount-home (Pyxis's env_vars.bats) */
	args_reset();
	setenv("PYXIS_CONTAINER_MOUNT_HOME", "0", 1);
	option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
	options_from_env(NULL);
	CHECK(args.value[OPT_NO_MOUNT_HOME] && !args.value[OPT_MOUNT_HOME] && args_validate() == 0);
	unsetenv("PYXIS_CONTAINER_MOUNT_HOME");
	/* the command line wins over the variable */
	args_reset();
	setenv("PYXIS_CONTAINER_REMAP_ROOT", "1", 1);
	option_cb(OPT_NO_REMAP_ROOT, NULL, 0);
	options_from_env(NULL);
	CHECK(args.value[OPT_NO_REMAP_ROOT] && !args.value[OPT_REMAP_ROOT]);
	unsetenv("PYXIS_CONTAINER_REMAP_ROOT");
	/* --container-env: PYXIS_CONTAINER_ENV, STRATA_CONTAINER_ENV before it, the option before both */
	args_reset();
	setenv("PYXIS_CONTAINER_ENV", "CUDA_VERSION", 1);
	options_from_env(NULL);
	CHECK(args.value[OPT_ENV] && !strcmp(args.value[OPT_ENV], "CUDA_VERSION"));
	args_reset();
	setenv("STRATA_CONTAINER_ENV", "LANG", 1);
	options_from_env(NULL);
	CHECK(!strcmp(args.value[OPT_ENV], "LANG"));
	args_reset();
	option_cb(OPT_ENV, "CUDA_VERSION,LD_LIBRARY_PATH", 0);
	options_from_env(NULL);
	CHECK(!strcmp(args.value[OPT_ENV], "CUDA_VERSION,LD_LIBRARY_PATH"));
	unsetenv("PYXIS_CONTAINER_ENV");
	unsetenv("STRATA_CONTAINER_ENV");
	/* a list of names: no empty one (Pyxis's invalid_args.bats: "FOO,"), no value */
	const char *env_lists[][2] = { { "FOO", "" }, { "FOO,BAR_2", "" }, { "FOO,", "bad" }, { ",FOO", "bad" }, { "FOO,,BAR", "bad" },
				       { "FOO=1", "bad" }, { "FOO BAR", "bad" } };
	for (size_t i = 0; i < sizeof(env_lists) / sizeof(*env_lists); i++) {
		args_reset();
		option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
		option_cb(OPT_ENV, env_lists[i][0], 0);
		int bad = env_lists[i][1][0] != '\0';
		CHECK((bad ? args_validate() < 0 && strstr(last_error, "--container-env: \"") && strstr(last_error, "is not a list of variable names")
			   : args_validate() == 0) || !fprintf(stderr, "  env list %s\n", env_lists[i][0]));
	}

	/* refused options: one line naming the option (or the variable) and what to do instead */
	const struct { enum opt_id id; const char *arg, *says; } refused[] = {
		{ OPT_UNSHARE, "net", "--container-unshare is not supported by strata: strata containers share the node's network" },
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
		args_reset();
		option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
		option_cb((int)refused[i].id, refused[i].arg, 0);
		CHECK((args_validate() < 0 && strstr(last_error, refused[i].says)) || !fprintf(stderr, "  refused %s: %s\n", refused[i].says, last_error));
		CHECK(!strchr(last_error, '\n'));
	}

	/* Pyxis's flag pairs, either half, are accepted */
	const enum opt_id flags[] = { OPT_MOUNT_HOME, OPT_NO_MOUNT_HOME, OPT_REMAP_ROOT, OPT_NO_REMAP_ROOT, OPT_ENTRYPOINT, OPT_NO_ENTRYPOINT, OPT_ENTRYPOINT_LOG };
	for (size_t i = 0; i < sizeof(flags) / sizeof(*flags); i++) {
		args_reset();
		option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
		option_cb((int)flags[i], NULL, 0);
		CHECK(args_validate() == 0 || !fprintf(stderr, "  flag --%s: %s\n", opt_names[flags[i]], last_error));
	}
	args_reset();
	option_cb(OPT_IMAGE, "ubuntu:24.04", 0);
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

static void env_reset(void)
{
	memset(job_environ, 0, sizeof(job_environ));
}

/* Pyxis's env.bats precedence, on the task environment: the image wins unless the name is kept. */
static void test_task_env(void)
{
	/* writable strings, as entry_parse makes them (task_env_apply cuts them at '=' for a moment) */
	char env0[] = "PATH=/usr/local/cuda/bin:/usr/bin:/bin", env1[] = "CUDA_VERSION=11.8.0", env2[] = "LD_LIBRARY_PATH=/usr/local/nvidia/lib",
	     env3[] = "SLURM_TEST=image", env4[] = "PMIX_TEST=image";
	char *image_env[] = { env0, env1, env2, env3, env4, NULL };
	struct entry e = { .env = image_env, .env_len = 5 };
	const struct { const char *keep, *cuda, *ld, *lang; } cases[] = {
		{ "", "11.8.0", "/usr/local/nvidia/lib", NULL },
		{ "CUDA_VERSION", "12.0.0", "/usr/local/nvidia/lib", NULL },
		{ "CUDA_VERSION,LD_LIBRARY_PATH", "12.0.0", "/usr/local/cuda/lib64", NULL },
		{ "LD_LIBRARY_PATH,CUDA_VERSION", "12.0.0", "/usr/local/cuda/lib64", NULL },
		{ "LANG", "11.8.0", "/usr/local/nvidia/lib", "en_US.UTF-8" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		env_reset();
		spank_setenv(NULL, "CUDA_VERSION", "12.0.0", 1);
		spank_setenv(NULL, "LD_LIBRARY_PATH", "/usr/local/cuda/lib64", 1);
		spank_setenv(NULL, "LANG", "en_US.UTF-8", 1);
		spank_setenv(NULL, "SLURM_TEST", "job", 1);
		task_env_apply(NULL, &e, cases[i].keep);
		CHECK((!strcmp(job_value("CUDA_VERSION"), cases[i].cuda) && !strcmp(job_value("LD_LIBRARY_PATH"), cases[i].ld)) ||
		      !fprintf(stderr, "  keep \"%s\": CUDA_VERSION=%s LD_LIBRARY_PATH=%s\n", cases[i].keep, job_value("CUDA_VERSION"), job_value("LD_LIBRARY_PATH")));
		CHECK(cases[i].lang ? job_value("LANG") && !strcmp(job_value("LANG"), cases[i].lang) : job_value("LANG") == NULL);
		CHECK(!strcmp(job_value("SLURM_TEST"), "job") && job_value("PMIX_TEST") == NULL);
	}
	/* a kept name the job does not set: the image's value (Pyxis: "referencing an unset variable") */
	env_reset();
	task_env_apply(NULL, &e, "CUDA_VERSION");
	CHECK(job_value("CUDA_VERSION") && !strcmp(job_value("CUDA_VERSION"), "11.8.0"));
	env_reset();
}

/*
 * A CUDA job that keeps its own LD_LIBRARY_PATH (--container-env=LD_LIBRARY_PATH, as Pyxis's env
 * test does) still finds the driver: no ld.so.cache has it, so the device's folders go after
 * whatever value wins, each once; PATH likewise, and the command is looked up in that PATH.
 */
static void test_device_paths(void)
{
	char env0[] = "PATH=/usr/local/cuda/bin:/usr/bin:/bin:/usr/local/nvidia/bin", env1[] = "LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/nvidia/lib64";
	char dp0[] = "LD_LIBRARY_PATH=/usr/local/nvidia/lib64", dp1[] = "PATH=/usr/local/nvidia/bin";
	char *image_env[] = { env0, env1, NULL }, *paths[] = { dp0, dp1, NULL };
	struct entry e = { .env = image_env, .env_len = 2, .device_paths = paths, .device_paths_len = 2 };
	const struct { const char *keep, *job_ld, *ld, *path; int path_changed; } cases[] = {
		/* the image's values win: they have the folders already */
		{ "", "/home/u/lib", "/usr/local/cuda/lib64:/usr/local/nvidia/lib64", "/usr/local/cuda/bin:/usr/bin:/bin:/usr/local/nvidia/bin", 0 },
		{ "LD_LIBRARY_PATH", "/home/u/lib", "/home/u/lib:/usr/local/nvidia/lib64", NULL, 0 },
		{ "LD_LIBRARY_PATH", "/usr/local/nvidia/lib64:/home/u/lib", "/usr/local/nvidia/lib64:/home/u/lib", NULL, 0 },
		{ "LD_LIBRARY_PATH", "", "/usr/local/nvidia/lib64", NULL, 0 },
		{ "PATH,LD_LIBRARY_PATH", "/a::/b", "/a::/b:/usr/local/nvidia/lib64", "/home/u/bin:/usr/bin:/usr/local/nvidia/bin", 1 },
	};
	char out[16];

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const char *path;
		env_reset();
		spank_setenv(NULL, "LD_LIBRARY_PATH", cases[i].job_ld, 1);
		spank_setenv(NULL, "PATH", "/home/u/bin:/usr/bin", 1);
		task_env_apply(NULL, &e, cases[i].keep);
		path = device_paths_apply(NULL, &e);
		CHECK(!strcmp(job_value("LD_LIBRARY_PATH"), cases[i].ld) ||
		      !fprintf(stderr, "  keep \"%s\", job \"%s\": LD_LIBRARY_PATH=%s\n", cases[i].keep, cases[i].job_ld, job_value("LD_LIBRARY_PATH")));
		if (cases[i].path)
			CHECK(!strcmp(job_value("PATH"), cases[i].path) || !fprintf(stderr, "  keep \"%s\": PATH=%s\n", cases[i].keep, job_value("PATH")));
		CHECK(cases[i].path_changed ? path && !strcmp(path, cases[i].path) : path == NULL);
	}
	/* a variable the task does not have at all gets the folders alone */
	env_reset();
	e.env_len = 0;
	e.env[0] = NULL;
	device_paths_apply(NULL, &e);
	CHECK(job_value("LD_LIBRARY_PATH") && !strcmp(job_value("LD_LIBRARY_PATH"), "/usr/local/nvidia/lib64"));
	CHECK(search_path_append(out, sizeof(out), "/0123456789", "/abcdef") < 0);
	env_reset();
}

static void write_script(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, 0755);
}

/* The image's entrypoint runs before the command; what it exports reaches the task (entrypoint.bats). */
static void test_entrypoint(void)
{
	char dir[] = "/tmp/strata-spank-test-XXXXXX", ok[128], fails[128], why[MSG_MAX];
	char env0[] = "PATH=/usr/bin:/bin", env1[] = "DOCKER_TLS_VERIFY=";
	char *entry_env[] = { env0, env1, NULL };
	char *argv_ok[] = { ok, NULL }, *argv_fails[] = { fails, NULL };
	struct entry e = { .env = entry_env, .env_len = 2, .entrypoint = argv_ok, .entrypoint_len = 1 };

	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(ok, sizeof(ok), "%s/docker-entrypoint.sh", dir);
	snprintf(fails, sizeof(fails), "%s/broken.sh", dir);
	/* as docker:dind's: the port depends on a variable the user may pass with --container-env */
	write_script(ok, "#!/bin/sh\necho banner\nif [ -n \"$DOCKER_TLS_VERIFY\" ]; then export DOCKER_HOST=tcp://docker:2376; "
			 "else export DOCKER_HOST=tcp://docker:2375; fi\nexport SLURM_FAKE=ep\nexec \"$@\"\n");
	write_script(fails, "#!/bin/sh\necho cannot start: no config >&2\nexit 3\n");

	env_reset();
	spank_setenv(NULL, "DOCKER_TLS_VERIFY", "1", 1); /* in the job, but not kept: the entrypoint does not see it */
	spank_setenv(NULL, "SLURM_FAKE", "job", 1);
	CHECK(entrypoint_run(NULL, &e, "", 0, why, sizeof(why)) == 0 || !fprintf(stderr, "  %s\n", why));
	CHECK(job_value("DOCKER_HOST") && !strcmp(job_value("DOCKER_HOST"), "tcp://docker:2375"));
	CHECK(!strcmp(job_value("SLURM_FAKE"), "job") && job_value("SHLVL") == NULL);

	env_reset();
	spank_setenv(NULL, "DOCKER_TLS_VERIFY", "1", 1);
	CHECK(entrypoint_run(NULL, &e, "DOCKER_TLS_VERIFY", 0, why, sizeof(why)) == 0 || !fprintf(stderr, "  %s\n", why));
	CHECK(job_value("DOCKER_HOST") && !strcmp(job_value("DOCKER_HOST"), "tcp://docker:2376"));
	CHECK(!strcmp(job_value("DOCKER_TLS_VERIFY"), "1"));

	/*
	 * The devices' folders: the entrypoint sees them after a kept LD_LIBRARY_PATH, and an entrypoint
	 * that sets LD_LIBRARY_PATH itself does not hide them from the command.
	 */
	char dp0[] = "LD_LIBRARY_PATH=/usr/local/nvidia/lib64", seen[128];
	char *paths[] = { dp0, NULL }, *argv_ld[] = { seen, NULL };
	snprintf(seen, sizeof(seen), "%s/ld.sh", dir);
	write_script(seen, "#!/bin/sh\nexport SEEN_LD=\"$LD_LIBRARY_PATH\"\nexport LD_LIBRARY_PATH=/opt/app/lib\nexec \"$@\"\n");
	e.device_paths = paths;
	e.device_paths_len = 1;
	e.entrypoint = argv_ld;
	env_reset();
	spank_setenv(NULL, "LD_LIBRARY_PATH", "/home/u/lib", 1);
	CHECK(entrypoint_run(NULL, &e, "LD_LIBRARY_PATH", 0, why, sizeof(why)) == 0 || !fprintf(stderr, "  %s\n", why));
	CHECK(job_value("SEEN_LD") && !strcmp(job_value("SEEN_LD"), "/home/u/lib:/usr/local/nvidia/lib64"));
	CHECK(!strcmp(job_value("LD_LIBRARY_PATH"), "/home/u/lib:/usr/local/nvidia/lib64"));
	env_reset();
	CHECK(entrypoint_run(NULL, &e, "", 0, why, sizeof(why)) == 0 || !fprintf(stderr, "  %s\n", why));
	CHECK(!strcmp(job_value("LD_LIBRARY_PATH"), "/opt/app/lib:/usr/local/nvidia/lib64"));
	unlink(seen);
	e.device_paths = NULL;
	e.device_paths_len = 0;
	e.entrypoint = argv_ok;

	/* one that ends without running the command: a one-line reason with what it printed */
	e.entrypoint = argv_fails;
	CHECK(entrypoint_run(NULL, &e, "", 0, why, sizeof(why)) < 0);
	CHECK(strstr(why, "exited with status 3 without running the command") && strstr(why, "cannot start: no config") &&
	      strstr(why, "--no-container-entrypoint") && !strchr(why, '\n'));
	/* a name not in the container's PATH */
	char *argv_missing[] = { "no-such-entrypoint", NULL };
	e.entrypoint = argv_missing;
	CHECK(entrypoint_run(NULL, &e, "", 0, why, sizeof(why)) < 0 && strstr(why, "no-such-entrypoint is not in the container's PATH"));
	/* none in the image: nothing runs */
	e.entrypoint_len = 0;
	CHECK(entrypoint_run(NULL, &e, "", 0, why, sizeof(why)) == 0);
	unlink(ok);
	unlink(fails);
	rmdir(dir);
	env_reset();
}

/*
 * --container-remap-root, for real where the test runs as root: the helper is started as root, the
 * process drops to an unprivileged user, then is uid 0 in its namespace, and what it writes is
 * the user's on the host.
 */
static void test_remap_root(void)
{
	const uid_t user = 65534;
	char dir[] = "/tmp/strata-spank-remap-XXXXXX", file[128];
	struct stat st;
	int status = -1;
	pid_t pid;

	if (geteuid() != 0) {
		printf("spank unit tests: remap-root skipped (not root)\n");
		return;
	}
	if (!mkdtemp(dir) || chmod(dir, 01777) < 0) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(file, sizeof(file), "%s/written-as-root", dir);
	pid = fork();
	if (pid == 0) {
		struct remap r;
		char why[512];
		if (remap_prepare(&r, user, user) < 0 || setgroups(0, NULL) < 0 || setresgid(user, user, user) < 0 ||
		    setresuid(user, user, user) < 0)
			_exit(10);
		if (remap_enter(&r, why, sizeof(why)) < 0) {
			fprintf(stderr, "  remap: %s\n", why);
			_exit(11);
		}
		if (getuid() != 0 || getgid() != 0 || geteuid() != 0)
			_exit(12);
		FILE *f = fopen(file, "w");
		_exit(f && fclose(f) == 0 ? 0 : 13);
	}
	waitpid(pid, &status, 0);
	CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0) || !fprintf(stderr, "  remap child: status %d\n", status));
	CHECK(stat(file, &st) == 0 && st.st_uid == user && st.st_gid == user);
	unlink(file);
	rmdir(dir);
}

static void test_pytorch(void)
{
	char host[16], err[128];
	struct entry e;
	static const struct { const char *list, *first; } lists[] = {
		{ "n1", "n1" }, { "n[1-3]", "n1" }, { "gpu[007-010,012]-ib,x1", "gpu007-ib" }, { "a,b", "a" },
		{ "r[2-3]n[10-11]", "r2n10" },
	};

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		CHECK((first_host(lists[i].list, host, sizeof(host)) == 0 && !strcmp(host, lists[i].first)) ||
		      !fprintf(stderr, "  first_host %s -> %s\n", lists[i].list, host));
	CHECK(first_host("", host, sizeof(host)) < 0);
	CHECK(first_host("n[", host, sizeof(host)) < 0);
	CHECK(first_host("n[x]", host, sizeof(host)) < 0);
	CHECK(first_host("averyveryverylongname", host, sizeof(host)) < 0);

	const char *on = "{\"pytorchEnv\":true}", *absent = "{\"env\":[]}", *number = "{\"pytorchEnv\":1}";
	CHECK(entry_parse(on, strlen(on), &e, err, sizeof(err)) == 0 && e.pytorch_env == 1);
	entry_free(&e);
	CHECK(entry_parse(absent, strlen(absent), &e, err, sizeof(err)) == 0 && e.pytorch_env == 0);
	entry_free(&e);
	CHECK(entry_parse(number, strlen(number), &e, err, sizeof(err)) < 0);
}

/* Slurm's PMIx client directory name (pmixp_info.c) and the pmix_tmpdir= plugstack argument. */
static void test_pmix(void)
{
	char dir[64];

	CHECK(pmix_client_dir(dir, sizeof(dir), "/tmp", 1000, 42, 0) == 0 && !strcmp(dir, "/tmp/spmix_appdir_1000_42.0"));
	CHECK(pmix_client_dir(dir, sizeof(dir), "/scratch/", 7, 5, 3) == 0 && !strcmp(dir, "/scratch/spmix_appdir_7_5.3"));
	CHECK(pmix_client_dir(dir, 16, "/tmp", 1000, 42, 0) < 0);
	CHECK(parse("pmix_tmpdir=/scratch/tmp") == 0 && !strcmp(conf.pmix_tmpdir, "/scratch/tmp"));
	CHECK(parse("pmix_tmpdir=tmp") < 0 && strstr(last_error, "pmix_tmpdir must be an absolute path"));
	CHECK(parse("") == 0 && !strcmp(conf.pmix_tmpdir, "/tmp"));
}

int main(void)
{
	test_config();
	test_pmix();
	test_values();
	test_pyxis_options();
	test_upper_size();
	test_entry();
	test_task_env();
	test_device_paths();
	test_entrypoint();
	test_remap_root();
	test_pytorch();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("spank unit tests: ok\n");
	return 0;
}
