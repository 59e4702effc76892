/*
 * Unit tests of the plugin's pure parts (plugstack arguments, option values, entry.json), without
 * Slurm: the plugin source is included, and the few Slurm functions it calls are stubbed.
 * Run with `make -C spank check`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <slurm/spank.h>

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

#include "strata_spank.c"

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
	CHECK(parse("node=") == 0 && conf.node[0] == '\0');
}

static void test_values(void)
{
	parse("");
	snprintf(opt_names[OPT_MOUNTS], sizeof(opt_names[OPT_MOUNTS]), "container-mounts");
	CHECK(valid_mounts("/a") == 0);
	CHECK(valid_mounts("/a:/b,/c:/d:ro,/e:/f:rw") == 0);
	CHECK(valid_mounts("a:/b") < 0);
	CHECK(valid_mounts("/a:b") < 0);
	CHECK(valid_mounts("/a:/b:rx") < 0 && strstr(last_error, "unknown flag \"rx\""));
	CHECK(valid_mounts("/a:/b:ro:x") < 0 && strstr(last_error, "too many"));
	CHECK(valid_mounts("/a,,/b") < 0 && strstr(last_error, "empty entry"));
	CHECK(valid_mounts("/a::ro") < 0);

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
			   "\"writable\":true,\"nested\":{\"a\":[1,2.5e3,null,false]}}";

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

int main(void)
{
	test_config();
	test_values();
	test_entry();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("spank unit tests: ok\n");
	return 0;
}
