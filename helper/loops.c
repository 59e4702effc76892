/*
 * Loop devices for layer files: one device per layer file on the node, reused when a file is
 * already bound read-only (an overlay still using an earlier mount of it, say), else a free one
 * bound read-only with autoclear.
 *
 * Finding a bound device means reading the backing file of every loop device in sysfs, and a
 * node has as many as it has ever needed at once (hundreds): three files each, for every layer.
 * While this executor holds the node lock no other strata process binds or releases a layer, so
 * what one scan found serves the rest of the hold: a layer not bound then is not bound now
 * (unless by another program, which at worst costs one more device), and a device found is read
 * again before it is used (autoclear may have freed it meanwhile). Taking or dropping the lock
 * forgets it (forget_bound_loops).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "loops.h"

struct bound_loop {
  int number;
  char *file;
};

static struct bound_loop *bound;
static size_t bound_count, bound_capacity;
/* `bound` holds every read-only device sysfs showed in this lock hold (plus the ones made since). */
static int bound_known;

void forget_bound_loops(void) {
  for (size_t i = 0; i < bound_count; i++) free(bound[i].file);
  bound_count = 0;
  bound_known = 0;
}

void remember_bound_loop(int number, const char *file) {
  if (!bound_known) return;
  if (bound_count == bound_capacity) {
    size_t grown = bound_capacity ? bound_capacity * 2 : 64;
    struct bound_loop *bigger = realloc(bound, grown * sizeof *bound);
    if (!bigger) {
      /* Out of memory: scan again next time. */
      forget_bound_loops();
      return;
    }
    bound = bigger;
    bound_capacity = grown;
  }
  char *copy = strdup(file);
  if (!copy) {
    forget_bound_loops();
    return;
  }
  bound[bound_count++] = (struct bound_loop){ number, copy };
}

/* The backing file of read-only loop device NUMBER into OUT; 0 when unbound or writable. */
static int read_only_backing(int number, char *out, size_t size) {
  char path[96], ro[8] = "";
  snprintf(path, sizeof path, "/sys/block/loop%d/loop/backing_file", number);
  FILE *in = fopen(path, "re");
  if (!in) return 0;
  char *line = fgets(out, (int)size, in);
  fclose(in);
  if (!line) return 0;
  out[strcspn(out, "\n")] = 0;
  snprintf(path, sizeof path, "/sys/block/loop%d/ro", number);
  in = fopen(path, "re");
  if (!in) return 0;
  line = fgets(ro, sizeof ro, in);
  fclose(in);
  return line && ro[0] == '1';
}

/* Every read-only loop device in sysfs into `bound`; then the one bound to FILE, or -1. */
static int scan(const char *file, int keep) {
  forget_bound_loops();
  bound_known = keep;
  DIR *dir = opendir("/sys/block");
  if (!dir) {
    bound_known = 0;
    return -1;
  }
  int found = -1;
  struct dirent *entry;
  while ((entry = readdir(dir))) {
    if (strncmp(entry->d_name, "loop", 4) != 0) continue;
    int number = atoi(entry->d_name + 4);
    char backing[PATH_MAX + 16];
    if (!read_only_backing(number, backing, sizeof backing)) continue;
    if (found < 0 && strcmp(backing, file) == 0) found = number;
    if (keep) remember_bound_loop(number, backing);
    else if (found >= 0) break;
  }
  closedir(dir);
  return found;
}

int find_bound_loop(const char *file, int locked) {
  if (!locked || !bound_known) return scan(file, locked);
  for (size_t i = 0; i < bound_count; i++) {
    if (strcmp(bound[i].file, file) != 0) continue;
    char backing[PATH_MAX + 16];
    if (read_only_backing(bound[i].number, backing, sizeof backing) && strcmp(backing, file) == 0) return bound[i].number;
    /* Gone or rebound meanwhile: read sysfs afresh. */
    return scan(file, 1);
  }
  return -1;
}

int attach_loop(int file_fd, const char *file, int direct_io, int *number) {
  int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) return -1;
  int device_fd = -1;
  for (int attempt = 0; attempt < 64 && device_fd < 0; attempt++) {
    int n = ioctl(control, LOOP_CTL_GET_FREE);
    if (n < 0) break;
    char name[32];
    snprintf(name, sizeof name, "/dev/loop%d", n);
    int fd = open(name, O_RDWR | O_CLOEXEC);
    if (fd < 0) break;
    struct loop_config config;
    memset(&config, 0, sizeof config);
    config.fd = (unsigned)file_fd;
    config.block_size = direct_io ? 4096 : 0;
    config.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR | (direct_io ? LO_FLAGS_DIRECT_IO : 0);
    /* The ioctl name is informational (64 bytes); sysfs holds the full backing path. */
    snprintf((char *)config.info.lo_file_name, LO_NAME_SIZE, "%.63s", file);
    if (ioctl(fd, LOOP_CONFIGURE, &config) == 0) {
      device_fd = fd;
      *number = n;
    } else {
      int err = errno;
      close(fd);
      /* Another process took this free device between GET_FREE and CONFIGURE: take the next. */
      if (err != EBUSY) {
        errno = err;
        break;
      }
    }
  }
  int err = errno;
  close(control);
  errno = err;
  return device_fd;
}
