// strata-front: the Slurm Prolog and Epilog that slurmd runs on every node for every job.
//
// Most jobs use no container, and for them the Node.js entry points (prolog/slurm.js,
// epilog/slurm.js) do nothing at all, yet each costs Node's start-up (44-190 ms). This program
// decides, without Node, the cases where the Node entry point would do nothing, and otherwise
// execs it (the `.js` file next to this program's own path) with the same argv and environment:
//
//   prolog: neither SPANK_STRATA_IMAGE nor SPANK_STRATA_IMAGE_DIGEST is set and non-empty
//           (prolog/slurm.ts: no image means exit 0 without even reading the configuration);
//   epilog: the job has no directory under <runtime_dir>/jobs/, nothing is mounted there, and the
//           layer sweep that teardownJob() runs for journal-less jobs (releaseUnusedLayers) would
//           change nothing: every entry of <runtime_dir>/l is a mount that a job overlay lists as
//           a lower, or a mounted layer kept by `layers.cache: keep`.
//
// Otherwise it asks the resident node agent (`strata node agent`, front/agent-client.h) to run
// the job's prolog/epilog in-process, and execs Node only when there is no agent or the agent does
// not answer.
//
// Anything this program does not fully understand (a configuration it cannot read with its small
// scanner, an odd job id, an unreadable directory, an error of its own) means "run Node": Node
// handles it exactly as it did before this program existed. This program never exits non-zero
// except when it cannot start the Node entry point at all, which slurmd would have failed on too.
//
// Built twice from this file (scripts/build.mjs): -DSTRATA_EPILOG for dist/epilog/slurm, without
// for dist/prolog/slurm. No PATH is needed: slurmd gives none.

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#ifdef STRATA_EPILOG
#define PHASE "epilog"
#else
#define PHASE "prolog"
#endif

// Exec the Node entry point: this program's own path with ".js" appended. Returns only on failure.
static int run_node(char **argv) {
  char self[PATH_MAX];
  ssize_t length = readlink("/proc/self/exe", self, sizeof self - 4);
  if (length <= 0) {
    // No /proc: fall back to the path slurmd ran us by (always absolute: there is no PATH).
    if (!argv[0] || argv[0][0] != '/' || strlen(argv[0]) >= sizeof self - 4) {
      fprintf(stderr, "strata: " PHASE ": cannot find the strata entry point (no /proc/self/exe)\n");
      return 1;
    }
    length = (ssize_t)strlen(argv[0]);
    memcpy(self, argv[0], (size_t)length);
  }
  memcpy(self + length, ".js", 4);
  argv[0] = self;
  execve(self, argv, environ);
  fprintf(stderr, "strata: " PHASE ": cannot run %s: %s\n", self, strerror(errno));
  return 1;
}

// A whole file into a NUL-terminated buffer (no NULs inside), or NULL with errno set.
static char *read_file(const char *path, size_t limit) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t size = 0, capacity = 65536;
  char *text = malloc(capacity);
  for (;;) {
    if (!text) break;
    if (size + 1 >= capacity) {
      if (capacity >= limit) {
        free(text);
        text = NULL;
        errno = EFBIG;
        break;
      }
      char *bigger = realloc(text, capacity *= 2);
      if (!bigger) {
        free(text);
        text = NULL;
        break;
      }
      text = bigger;
    }
    ssize_t got = read(fd, text + size, capacity - size - 1);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      free(text);
      text = NULL;
      break;
    }
    if (got == 0) {
      text[size] = '\0';
      if (strlen(text) != size) {
        free(text);
        text = NULL;
        errno = EINVAL;
      }
      break;
    }
    size += (size_t)got;
  }
  int saved = errno;
  close(fd);
  errno = saved;
  return text;
}

struct config {
  char runtime_dir[PATH_MAX];
  int keep_layers;
};

// The value of a `key: value` line with the value a plain scalar: trailing blanks and a
// ` # comment` removed. Anything quoted, flowed, anchored, aliased or tagged is refused (NULL).
static const char *plain_value(char *value) {
  while (*value == ' ') value++;
  char *comment = strstr(value, " #");
  if (*value == '#') *value = '\0';
  else if (comment) *comment = '\0';
  size_t length = strlen(value);
  while (length && (value[length - 1] == ' ' || value[length - 1] == '\t' || value[length - 1] == '\r')) value[--length] = '\0';
  if (strpbrk(value, "\"'{}[]&*!|>%@`\t")) return NULL;
  return value;
}

// The two settings the epilog's decision depends on (runtime_dir, layers.cache), from the YAML
// file strata's configuration loader reads (src/config/load.ts: STRATA_CONFIG, else
// /etc/strata/strata.yaml, else the defaults). A small line scanner that understands the block
// style strata's example file uses and refuses (0) every other YAML form: Node reads those.
static int read_config(struct config *config) {
  strcpy(config->runtime_dir, "/run/strata");
  config->keep_layers = 0;
  const char *named = getenv("STRATA_CONFIG");
  int explicit = named && *named;
  const char *path = explicit ? named : "/etc/strata/strata.yaml";
  if (path[0] != '/') return 0;
  char *text = read_file(path, 1 << 20);
  if (!text) return !explicit && errno == ENOENT;

  int ok = 1, in_layers = 0, seen_runtime = 0, seen_layers = 0, seen_cache = 0;
  int child_indent = -1;
  // Indent of the key whose plain value was just taken: a deeper line next would continue it.
  int open_scalar = -1;
  for (char *line = text, *next; ok && line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    size_t indent = strspn(line, " ");
    char *start = line + indent;
    if (*start == '\0' || *start == '#' || *start == '\r') continue;
    // Documents, directives, explicit keys, merge keys, flow or quoted keys at any level.
    if (strncmp(line, "---", 3) == 0 || strncmp(line, "...", 3) == 0 || strchr("%?{[\"'&*!|>\t", *start) || strstr(start, "<<")) {
      ok = 0;
      break;
    }
    if (open_scalar >= 0 && (int)indent > open_scalar) {
      ok = 0;
      break;
    }
    open_scalar = -1;
    char *colon = strstr(start, ":");
    if (indent == 0) {
      in_layers = 0;
      if (!colon || (colon[1] != '\0' && colon[1] != ' ' && colon[1] != '\r')) {
        ok = 0;
        break;
      }
      *colon = '\0';
      const char *value = plain_value(colon + 1);
      if (strcmp(start, "runtime_dir") == 0) {
        size_t length = value ? strlen(value) : 0;
        if (seen_runtime++ || !value || value[0] != '/' || length >= sizeof config->runtime_dir || strstr(value, "//") || strstr(value, "/./") ||
            strstr(value, "/../") || (length >= 2 && strcmp(value + length - 2, "/.") == 0) || (length >= 3 && strcmp(value + length - 3, "/..") == 0) ||
            strpbrk(value, " \\:,")) {
          ok = 0;
          break;
        }
        strcpy(config->runtime_dir, value);
        // path.join drops a trailing slash.
        if (length > 1 && config->runtime_dir[length - 1] == '/') config->runtime_dir[length - 1] = '\0';
        open_scalar = 0;
      } else if (strcmp(start, "layers") == 0) {
        if (seen_layers++ || !value || *value) {
          ok = 0;
          break;
        }
        in_layers = 1;
        child_indent = -1;
      }
      continue;
    }
    if (!in_layers) continue;
    if (child_indent < 0) child_indent = (int)indent;
    if ((int)indent < child_indent) {
      ok = 0;
      break;
    }
    if ((int)indent > child_indent || !colon) continue;
    *colon = '\0';
    if (strcmp(start, "cache") != 0) continue;
    const char *value = plain_value(colon + 1);
    if (seen_cache++ || !value || (strcmp(value, "release") != 0 && strcmp(value, "keep") != 0)) {
      ok = 0;
      break;
    }
    config->keep_layers = strcmp(value, "keep") == 0;
    open_scalar = (int)indent;
  }
  free(text);
  return ok;
}

#include "agent-client.h"

#ifdef STRATA_EPILOG

enum { RUN_NODE = -1 };

// src/runtime/paths.ts checkJobId.
static int valid_job_id(const char *id) {
  size_t length = strlen(id);
  if (length == 0 || length > 128 || strstr(id, "..")) return 0;
  for (size_t i = 0; i < length; i++) {
    char c = id[i];
    int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || !strchr("._-[]", c))) return 0;
  }
  return 1;
}

struct mount_entry {
  const char *mount_point;
  const char *fs_type;
  const char *options;
};

// /proc/self/mountinfo as entries pointing into `text`; the count, or -1.
static int parse_mountinfo(char *text, struct mount_entry **entries) {
  int count = 0, capacity = 256;
  *entries = malloc(sizeof **entries * (size_t)capacity);
  for (char *line = text, *next; *entries && line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    char *fields[64];
    int n = 0;
    for (char *field = strtok(line, " "); field && n < 64; field = strtok(NULL, " ")) fields[n++] = field;
    int dash = -1;
    for (int i = 6; i < n; i++) {
      if (strcmp(fields[i], "-") == 0) {
        dash = i;
        break;
      }
    }
    if (dash < 0 || dash + 3 >= n) return -1;
    if (count == capacity) {
      struct mount_entry *bigger = realloc(*entries, sizeof **entries * (size_t)(capacity *= 2));
      if (!bigger) return -1;
      *entries = bigger;
    }
    (*entries)[count++] = (struct mount_entry){ fields[4], fields[dash + 1], fields[dash + 3] };
  }
  return *entries ? count : -1;
}

static int under(const char *mount_point, const char *dir) {
  size_t length = strlen(dir);
  return strncmp(mount_point, dir, length) == 0 && (mount_point[length] == '\0' || mount_point[length] == '/');
}

// Whether a job overlay (mounted under jobs_dir) lists layer `id` among its lowers: the
// lowerdir= option, ':'-separated ids relative to <runtime_dir>/l (src/runtime/layers.ts).
// -1 when an overlay there shows no lowerdir= at all (a form this program does not read).
static int layer_in_use(const struct mount_entry *entries, int count, const char *jobs_dir, const char *id) {
  size_t id_length = strlen(id);
  for (int i = 0; i < count; i++) {
    if (strcmp(entries[i].fs_type, "overlay") != 0 || !under(entries[i].mount_point, jobs_dir)) continue;
    const char *lower = NULL;
    for (const char *option = entries[i].options; option; option = strchr(option, ',')) {
      if (*option == ',') option++;
      if (strncmp(option, "lowerdir=", 9) == 0) {
        lower = option + 9;
        break;
      }
    }
    if (!lower) return -1;
    for (const char *item = lower;;) {
      size_t length = strcspn(item, ":,");
      if (length == id_length && strncmp(item, id, length) == 0) return 1;
      if (item[length] != ':') break;
      item += length + 1;
    }
  }
  return 0;
}

static int is_mounted(const struct mount_entry *entries, int count, const char *path) {
  for (int i = 0; i < count; i++) {
    if (strcmp(entries[i].mount_point, path) == 0) return 1;
  }
  return 0;
}

// 0 when the Node epilog would do nothing for this job on this node, RUN_NODE otherwise.
static int epilog_decision(void) {
  const char *job = getenv("SLURM_JOB_ID");
  if (!job) job = getenv("SLURM_JOBID");
  if (!job || !valid_job_id(job)) return RUN_NODE;
  struct config config;
  if (!read_config(&config)) return RUN_NODE;

  char jobs_dir[PATH_MAX + 8], job_dir[PATH_MAX + 200], layer_dir[PATH_MAX + 8];
  snprintf(jobs_dir, sizeof jobs_dir, "%s/jobs", config.runtime_dir);
  snprintf(job_dir, sizeof job_dir, "%s/%s", jobs_dir, job);
  snprintf(layer_dir, sizeof layer_dir, "%s/l", config.runtime_dir);
  struct stat info;
  if (lstat(job_dir, &info) == 0 || errno != ENOENT) return RUN_NODE;

  // No layer dir: no sweep; then only a mount under the (missing) job dir would be work.
  DIR *layers = opendir(layer_dir);
  if (!layers && errno != ENOENT) return RUN_NODE;
  char *text = read_file("/proc/self/mountinfo", 64 << 20);
  struct mount_entry *entries = NULL;
  int count = text ? parse_mountinfo(text, &entries) : -1;
  int decision = count < 0 ? RUN_NODE : 0;
  for (int i = 0; decision == 0 && i < count; i++) {
    if (under(entries[i].mount_point, job_dir)) decision = RUN_NODE;
  }
  for (struct dirent *entry; layers && decision == 0 && (entry = readdir(layers));) {
    if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
    char path[sizeof layer_dir + 256];
    snprintf(path, sizeof path, "%s/%s", layer_dir, entry->d_name);
    int in_use = layer_in_use(entries, count, jobs_dir, entry->d_name);
    // Unused: released (`release`) or, not mounted, removed by rmdir; either is work for Node.
    if (in_use < 0 || (in_use == 0 && !(config.keep_layers && is_mounted(entries, count, path)))) decision = RUN_NODE;
  }
  if (layers) closedir(layers);
  free(entries);
  free(text);
  return decision;
}

int main(int argc, char **argv) {
  (void)argc;
  if (epilog_decision() == 0) return 0;
  int status = ask_agent(PHASE);
  return status >= 0 ? status : run_node(argv);
}

#else

static int is_set(const char *name) {
  const char *value = getenv(name);
  return value && *value;
}

int main(int argc, char **argv) {
  (void)argc;
  // prolog/slurm.ts: without an image the prolog does nothing, not even read the configuration.
  if (!is_set("SPANK_STRATA_IMAGE") && !is_set("SPANK_STRATA_IMAGE_DIGEST")) return 0;
  int status = ask_agent(PHASE);
  return status >= 0 ? status : run_node(argv);
}

#endif
