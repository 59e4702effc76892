/*
 * --container-entrypoint: run the image's ENTRYPOINT before the task's command, as Pyxis does.
 * Pyxis starts the container through enroot with `sh -c 'kill -STOP $$'` as the command the
 * entrypoint ends by running ("exec "$@""), reads the environment of that stopped shell, lets it
 * finish, and gives the tasks that environment. Here the same happens in each task's own process,
 * inside the container, as the task's user, after the working directory is set:
 *
 *   - the entrypoint sees the image's environment plus the --container-env names (Pyxis: the host
 *     variables reach the entrypoint only when listed there);
 *   - what it leaves in the environment is then set for the task, except Slurm's and the PMI
 *     variables, shell bookkeeping (PWD, SHLVL, _), and the --container-env names, which keep
 *     the job's values;
 *   - its output is shown with --container-entrypoint-log, else kept and shown only if it fails.
 *
 * An entrypoint that never runs its arguments (a server's) does not end: the task waits, as
 * Pyxis's does, until the job's time limit. Use --no-container-entrypoint for such images.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slurm/spank.h>

#include "strata.h"

#define PROBE "kill -STOP $$; exit 0"
#define ENVIRON_MAX (1 << 20)
#define LOG_MAX (64 * 1024)

/* The devices' directories for variable `name` (entry.json "devicePaths"), or NULL. */
static const char *device_dirs(const struct entry *e, const char *name, size_t len)
{
	for (size_t i = 0; e->device_paths && i < e->device_paths_len; i++)
		if (!strncmp(e->device_paths[i], name, len) && e->device_paths[i][len] == '=')
			return e->device_paths[i] + len + 1;
	return NULL;
}

/*
 * The entrypoint's environment: the image's, with the kept names' job values over them, and the
 * devices' search-path directories after a kept value (an entrypoint may check the driver).
 */
static char **entrypoint_env(spank_t sp, const struct entry *e, const char *keep)
{
	size_t cap = e->env_len + 1, n = 0;
	char **env;

	for (const char *p = keep; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ','))
		cap++;
	env = calloc(cap, sizeof(*env));
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < e->env_len; i++) {
		const char *eq = strchr(e->env[i], '=');
		if (eq && !in_list(keep, e->env[i], (size_t)(eq - e->env[i])))
			env[n++] = e->env[i];
	}
	for (const char *p = keep; p && *p;) {
		size_t len = strcspn(p, ",");
		char name[256], value[PATH_MAX * 4], joined[PATH_MAX * 4];
		const char *dirs = device_dirs(e, p, len);
		snprintf(name, sizeof(name), "%.*s", (int)len, p);
		if (spank_getenv(sp, name, value, sizeof(value)) == ESPANK_SUCCESS &&
		    asprintf(&env[n], "%s=%s", name,
			     dirs && search_path_append(joined, sizeof(joined), value, dirs) == 0 ? joined : value) > 0)
			n++;
		else {
			/* not set in the job: the image's value, if any, as without the name */
			for (size_t i = 0; i < e->env_len; i++)
				if (!strncmp(e->env[i], name, len) && e->env[i][len] == '=')
					env[n++] = e->env[i];
		}
		p += len + (p[len] == ',');
	}
	env[n] = NULL;
	return env;
}

/* Reads /proc/<pid>/environ into a malloc'd buffer; its length in *len. */
static char *read_environ(pid_t pid, size_t *len)
{
	char path[64], *buf = malloc(ENVIRON_MAX);
	int fd;
	ssize_t r;

	*len = 0;
	if (buf == NULL)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	while (*len < ENVIRON_MAX - 1 && ((r = read(fd, buf + *len, ENVIRON_MAX - 1 - *len)) > 0 || (r < 0 && errno == EINTR)))
		if (r > 0)
			*len += (size_t)r;
	close(fd);
	buf[*len] = '\0';
	return buf;
}

/* Shell bookkeeping of the probe, not the entrypoint's choice. */
static int shell_variable(const char *name, size_t len)
{
	return (len == 3 && !strncmp(name, "PWD", 3)) || (len == 5 && !strncmp(name, "SHLVL", 5)) || (len == 1 && name[0] == '_');
}

static void apply_environ(spank_t sp, char *environ_text, size_t len, const char *keep)
{
	for (char *kv = environ_text; kv < environ_text + len; kv += strlen(kv) + 1) {
		char *eq = strchr(kv, '=');
		if (eq == NULL || eq == kv || env_is_slurm(kv) || shell_variable(kv, (size_t)(eq - kv)))
			continue;
		*eq = '\0';
		/* a kept name keeps the job's value when it has one, as in Pyxis (overwrite = 0) */
		if (spank_setenv(sp, kv, eq + 1, !in_list(keep, kv, strlen(kv))) != ESPANK_SUCCESS && !in_list(keep, kv, strlen(kv)))
			slurm_error(TAG ": could not set %s in the task environment", kv);
		*eq = '=';
	}
}

/* The first lines of what the entrypoint printed, for a failure message. */
static void append_log(int log_fd, char *why, size_t len)
{
	char text[LOG_MAX];
	ssize_t n;
	size_t used = strlen(why);

	if (log_fd < 0 || lseek(log_fd, 0, SEEK_SET) < 0 || (n = read(log_fd, text, sizeof(text) - 1)) <= 0)
		return;
	text[n] = '\0';
	for (char *c = text; *c; c++)
		if (*c == '\n' || (unsigned char)*c < 0x20)
			*c = ' ';
	snprintf(why + used, len - used, "; it printed: %s", text);
}

int entrypoint_run(spank_t sp, const struct entry *e, const char *keep, int show_log, char *why, size_t len)
{
	char **env, **argv, program[PATH_MAX], *environ_text;
	const char *path_var = DEFAULT_PATH;
	int log_fd = -1, status = 0, rc = -1;
	void (*old_chld)(int) = SIG_ERR;
	size_t environ_len;
	pid_t pid;

	if (e->entrypoint_len == 0)
		return 0; /* nothing to run, as enroot with an image without one */
	env = entrypoint_env(sp, e, keep);
	argv = calloc(e->entrypoint_len + 4, sizeof(*argv));
	if (env == NULL || argv == NULL) {
		snprintf(why, len, "cannot run the image's entrypoint: out of memory");
		goto out;
	}
	for (size_t i = 0; i < e->entrypoint_len; i++)
		argv[i] = e->entrypoint[i];
	argv[e->entrypoint_len] = "/bin/sh";
	argv[e->entrypoint_len + 1] = "-c";
	argv[e->entrypoint_len + 2] = PROBE;
	for (char **v = env; *v; v++)
		if (!strncmp(*v, "PATH=", 5))
			path_var = *v + 5;
	if (strchr(argv[0], '/'))
		snprintf(program, sizeof(program), "%s", argv[0]);
	else if (path_lookup(argv[0], path_var, program, sizeof(program)) < 0) {
		snprintf(why, len, "the image's entrypoint %s is not in the container's PATH (%s); drop --container-entrypoint", argv[0], path_var);
		goto out;
	}
	if (!show_log && (log_fd = memfd_create("strata-entrypoint", MFD_CLOEXEC)) < 0) {
		snprintf(why, len, "cannot run the image's entrypoint: memfd_create: %s", strerror(errno));
		goto out;
	}

	/* slurmstepd's disposition may be "ignore" (children reaped unseen): this one is waited for */
	old_chld = signal(SIGCHLD, SIG_DFL);
	pid = fork();
	if (pid < 0) {
		snprintf(why, len, "cannot run the image's entrypoint: fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL); /* a normal start, whatever slurmstepd blocks */
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		if (log_fd >= 0) {
			dup2(log_fd, STDOUT_FILENO);
			dup2(log_fd, STDERR_FILENO);
		}
		execve(program, argv, env);
		dprintf(STDERR_FILENO, "cannot run %s: %s\n", program, strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, WUNTRACED) < 0) {
		if (errno != EINTR) {
			snprintf(why, len, "cannot wait for the image's entrypoint: %s", strerror(errno));
			goto out;
		}
	}
	if (!WIFSTOPPED(status)) {
		if (WIFEXITED(status))
			snprintf(why, len, "the image's entrypoint (%s) exited with status %d without running the command",
				 program, WEXITSTATUS(status));
		else
			snprintf(why, len, "the image's entrypoint (%s) was killed by signal %d", program, WTERMSIG(status));
		append_log(log_fd, why, len);
		snprintf(why + strlen(why), len - strlen(why), " (if the image has an unusual entrypoint, try --no-container-entrypoint)");
		goto out;
	}
	environ_text = read_environ(pid, &environ_len);
	kill(pid, SIGCONT);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (environ_text == NULL) {
		snprintf(why, len, "cannot read the environment the image's entrypoint left: %s", strerror(errno));
		goto out;
	}
	apply_environ(sp, environ_text, environ_len, keep);
	/* an entrypoint that sets its own LD_LIBRARY_PATH does not hide the driver either */
	device_paths_apply(sp, e);
	free(environ_text);
	rc = 0;
out:
	if (old_chld != SIG_ERR)
		signal(SIGCHLD, old_chld);
	if (env) {
		/* the asprintf'd kept values are the entries not pointing into the entry */
		for (char **v = env; *v; v++) {
			int from_entry = 0;
			for (size_t i = 0; i < e->env_len && !from_entry; i++)
				from_entry = *v == e->env[i];
			if (!from_entry)
				free(*v);
		}
		free(env);
	}
	free(argv);
	if (log_fd >= 0)
		close(log_fd);
	return rc;
}
