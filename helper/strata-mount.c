/*
 * strata-mount: the node runtime's mount executor. One process per prolog/epilog carries out a
 * whole sequence of mount(2), umount2(2), loop attach and node-lock operations, so that a job's
 * set-up costs one fork/exec instead of one `mount` process per layer and bind (each 2-7 ms from
 * Node, against ~0.3 ms of kernel work per layer). The caller journals every step BEFORE it sends
 * it; each request gets exactly one reply, so the caller always knows which operations happened.
 *
 * Protocol (stdin/stdout, one line per request and per reply, fields separated by TAB):
 *   mount  SOURCE TARGET FSTYPE FLAGS DATA CWD    mount(2); "-" = NULL/none; FLAGS decimal MS_*
 *   loop   FILE TARGET FSTYPE FLAGS DATA DIRECTIO attach FILE read-only with autoclear (reusing a
 *                                                 loop already bound to it read-only), mount it;
 *                                                 reply carries the device. erofs: FILE itself
 *                                                 where the kernel can (reply: FILE), else a loop
 *   umount TARGET FLAGS                           umount2(2), for paths strata owns
 *   bind   SOURCE ROOTFS TARGET FLAGS UID GID DENY ALSO [GROUPS]  a bind into a job's rootfs
 *                                                 (job-mounts.c); GROUPS: the user's group list
 *   umountv BASE RELATIVE MOUNT_ID FLAGS          unmount a job's mount, verified (job-mounts.c)
 *   readonly TARGET                               make one mount read-only (job-mounts.c)
 *   readfile ROOTFS PATH MAX                      read a regular file of the image, confined to
 *                                                 ROOTFS; reply: content as hex (image-files.c)
 *   idmap  SOURCE TARGET UID GID                 an idmapped read-only clone of a mount, on-disk 0
 *                                                 shown as UID/GID (remap.c); reply: mount id
 *   putfile ROOTFS DIR NAME HEX UID GID           a new file in a directory of a job's rootfs,
 *                                                 owned by UID/GID (remap.c)
 *   identity-start UID GID                       start looking the job user's passwd and group
 *   identity-wait TIMEOUT_MS                      entries up in the node's name service, and collect
 *                                                 them (identity.c); reply: hex text
 *   lock   PATH TIMEOUT_MS                        open (create) PATH and flock(LOCK_EX); reply: ms
 *                                                 waited. Held until `unlock` or until we exit
 *   unlock
 *   release                                       the run is over (a pooled executor): unlock, and
 *                                                 drop a name service lookup never collected
 * Replies:  ok [TAB value]   |   err TAB ERRNO-NAME TAB message [TAB stage]
 * Paths inside a job's rootfs (user- and image-controlled) are only ever handled by job-mounts.c,
 * through descriptors; the other requests take paths strata itself owns.
 * EOF on stdin ends the process (and so releases the lock), and so does the caller's death, SIGKILL
 * included (PR_SET_PDEATHSIG, also for requests still queued): nothing is left holding the lock or
 * running on its behalf. Usage: strata-mount [CALLER_PID]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "loops.h"
#include "protocol.h"
#include "untrusted.h"

#define MAX_FIELDS 10

static int lock_fd = -1;

void reply_ok(const char *value) {
  if (value) printf("ok\t%s\n", value);
  else printf("ok\n");
}

void reply_ok_hex(const char *bytes, size_t length) {
  static const char digits[] = "0123456789abcdef";
  fputs("ok\t", stdout);
  for (size_t i = 0; i < length; i++) {
    putchar(digits[(unsigned char)bytes[i] >> 4]);
    putchar(digits[(unsigned char)bytes[i] & 15]);
  }
  putchar('\n');
}

void reply_err(int err, const char *what) {
  const char *name = strerrorname_np(err);
  printf("err\t%s\t%s: %s\n", name ? name : "EUNKNOWN", what, strerror(err));
}

void reply_stage_err(int err, int stage, const char *what) {
  const char *name = strerrorname_np(err);
  printf("err\t%s\t%s: %s\t%s\n", name ? name : "EUNKNOWN", what, strerror(err), stage_names[stage]);
}

const char *opt(const char *field) { return strcmp(field, "-") == 0 ? NULL : field; }

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int home_dir = -1;

void flush_replies(void) { fflush(stdout); }

/*
 * The next request line (NUL-terminated, valid until the next call), or NULL at EOF. Requests are
 * read in whole chunks and the replies to a chunk leave in one write, when it is used up: a caller
 * that sends a run of requests at once (a job's binds, its unmounts) is woken once, not once per
 * reply. Requests that may block flush first (flush_replies).
 */
static char *next_request(void) {
  static char *buffer;
  static size_t capacity, start, end;
  for (;;) {
    char *newline = end > start ? memchr(buffer + start, '\n', end - start) : NULL;
    if (newline) {
      *newline = 0;
      char *line = buffer + start;
      start = (size_t)(newline - buffer) + 1;
      return line;
    }
    flush_replies();
    if (start > 0) {
      memmove(buffer, buffer + start, end - start);
      end -= start;
      start = 0;
    }
    if (end == capacity) {
      size_t grown = capacity ? capacity * 2 : 65536;
      char *bigger = realloc(buffer, grown);
      if (!bigger) return NULL;
      buffer = bigger;
      capacity = grown;
    }
    ssize_t got = read(STDIN_FILENO, buffer + end, capacity - end);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return NULL;
    end += (size_t)got;
  }
}

void go_home(void) {
  if (home_dir >= 0 && fchdir(home_dir) != 0) { /* only relative paths depend on it, and every request sets its own */ }
}

static int do_mount(char **f) {
  const char *cwd = opt(f[6]);
  if (cwd && chdir(cwd) != 0) {
    int err = errno;
    go_home();
    reply_err(err, "chdir");
    return 0;
  }
  int rc = mount(opt(f[1]), f[2], opt(f[3]), strtoul(f[4], NULL, 10), opt(f[5]));
  int err = errno;
  if (cwd) go_home();
  if (rc != 0) reply_err(err, "mount");
  else reply_ok(NULL);
  return 0;
}

/*
 * erofs mounted from the file itself. A kernel without file-backed erofs (before Linux 6.12, or
 * without EROFS_FS_BACKED_BY_FILE) answers ENOTBLK and the layer goes through a loop device. A
 * test build (scripts/helper-build.mjs -DSTRATA_TEST_EROFS_ENOTBLK) answers so on any kernel, to
 * test that fallback; a compile-time switch, so that the installed root helper has none.
 */
static int mount_erofs_file(const char *file, const char *target, unsigned long flags, const char *data) {
#ifdef STRATA_TEST_EROFS_ENOTBLK
  (void)file, (void)target, (void)flags, (void)data;
  errno = ENOTBLK;
  return -1;
#else
  return mount(file, target, "erofs", flags, data);
#endif
}

static int do_loop(char **f) {
  /* One open is the only access to the (shared) filesystem holding the file: its canonical path
   * comes from /proc, not from a realpath() walk that would stat every component on the store. */
  int file_fd = open(f[1], O_RDONLY | O_CLOEXEC);
  if (file_fd < 0) {
    reply_err(errno, f[1]);
    return 0;
  }
  char link[64], file[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", file_fd);
  ssize_t length = readlink(link, file, sizeof file - 1);
  if (length < 0) {
    reply_err(errno, link);
    close(file_fd);
    return 0;
  }
  file[length] = 0;
  unsigned long flags = strtoul(f[4], NULL, 10);
  if (strcmp(f[3], "erofs") == 0) {
    /* erofs reads a regular file itself (Linux 6.12+, EROFS_FS_BACKED_BY_FILE): no loop device,
     * and mountinfo names the file (what gc and `node status` go by; so the canonical path, not
     * /proc/self/fd/N: the store is written by its owner only, whose files root mounts anyway).
     * A kernel without it answers ENOTBLK: attach a loop below. */
    int rc = mount_erofs_file(file, f[2], flags, opt(f[5]));
    int err = errno;
    if (rc == 0 || err != ENOTBLK) {
      close(file_fd);
      if (rc != 0) reply_err(err, "mount");
      else reply_ok(file);
      return 0;
    }
  }
  int number = find_bound_loop(file, lock_fd >= 0);
  int device_fd = -1;
  if (number < 0) {
    device_fd = attach_loop(file_fd, file, strcmp(f[6], "1") == 0, &number);
    if (device_fd < 0) {
      int err = errno;
      close(file_fd);
      reply_err(err, "loop device");
      return 0;
    }
  }
  close(file_fd);
  char device[32];
  snprintf(device, sizeof device, "/dev/loop%d", number);
  int rc = mount(device, f[2], opt(f[3]), flags, opt(f[5]));
  int err = errno;
  /* With autoclear, closing our descriptor of an unmounted device detaches it again. */
  if (device_fd >= 0) close(device_fd);
  if (device_fd >= 0 && rc == 0) remember_bound_loop(number, file);
  if (rc != 0) reply_err(err, "mount");
  else reply_ok(device);
  return 0;
}

static int do_umount(char **f) {
  if (umount2(f[1], (int)strtol(f[2], NULL, 10)) != 0) reply_err(errno, "umount");
  else reply_ok(NULL);
  return 0;
}

/* Wait for the lock, but give up at once if our caller went away (stdin hung up). */
static int do_lock(char **f) {
  flush_replies();
  if (lock_fd >= 0) {
    reply_err(EDEADLK, "lock");
    return 0;
  }
  int fd = open(f[1], O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    reply_err(errno, f[1]);
    return 0;
  }
  double started = now_ms(), timeout = strtod(f[2], NULL);
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      reply_err(errno, "flock");
      close(fd);
      return 0;
    }
    if (now_ms() - started > timeout) {
      reply_err(ETIMEDOUT, "flock");
      close(fd);
      return 0;
    }
    struct pollfd in = { .fd = 0, .events = 0 };
    if (poll(&in, 1, 2) > 0 && (in.revents & (POLLHUP | POLLERR))) _exit(1);
  }
  lock_fd = fd;
  forget_bound_loops();
  char waited[32];
  snprintf(waited, sizeof waited, "%.3f", now_ms() - started);
  reply_ok(waited);
  return 0;
}

static int do_unlock(void) {
  forget_bound_loops();
  if (lock_fd >= 0) close(lock_fd);
  lock_fd = -1;
  reply_ok(NULL);
  return 0;
}

/*
 * A run is over and this executor goes back to a pool (the node agent's): nothing of the run may
 * stay, neither its node lock nor a name service lookup it started and never collected (a job
 * whose set-up failed first), which would stay a zombie child until the next lookup.
 */
static int do_release(void) {
  identity_drop();
  return do_unlock();
}

int main(int argc, char **argv) {
  /*
   * Requests may be queued ahead (a prolog sends a run of binds at once): when the caller dies,
   * SIGKILL included, the ones not carried out yet must not be, or an epilog started right after
   * could race them. The kernel kills us with our parent; a caller that names itself and is
   * already gone (we were re-parented) stops us at once.
   */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return 1;
  if (argc > 1 && getppid() != (pid_t)strtol(argv[1], NULL, 10)) return 1;
  home_dir = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  char *line;
  while ((line = next_request())) {
    char *fields[MAX_FIELDS] = {0};
    int count = 0;
    for (char *cursor = line; cursor && count < MAX_FIELDS; count++) fields[count] = strsep(&cursor, "\t");
    const char *op = fields[0];
    if (strcmp(op, "mount") == 0 && count == 7) do_mount(fields);
    else if (strcmp(op, "loop") == 0 && count == 7) do_loop(fields);
    else if (strcmp(op, "umount") == 0 && count == 3) do_umount(fields);
    else if (strcmp(op, "bind") == 0 && (count == 9 || count == 10)) do_bind(fields);
    else if (strcmp(op, "umountv") == 0 && count == 5) do_umount_verified(fields);
    else if (strcmp(op, "readonly") == 0 && count == 2) do_readonly(fields);
    else if (strcmp(op, "symlink") == 0 && count == 4) do_symlink(fields);
    else if (strcmp(op, "chmod") == 0 && count == 4) do_chmod(fields);
    else if (strcmp(op, "devnode") == 0 && count == 6) do_devnode(fields);
    else if (strcmp(op, "readfile") == 0 && count == 4) do_readfile(fields);
    else if (strcmp(op, "idmap") == 0 && count == 5) do_idmap(fields);
    else if (strcmp(op, "putfile") == 0 && count == 7) do_putfile(fields);
    else if (strcmp(op, "identity-start") == 0 && count == 3) do_identity_start(fields);
    else if (strcmp(op, "identity-wait") == 0 && count == 2) do_identity_wait(fields);
    else if (strcmp(op, "lock") == 0 && count == 3) do_lock(fields);
    else if (strcmp(op, "unlock") == 0 && count == 1) do_unlock();
    else if (strcmp(op, "release") == 0 && count == 1) do_release();
    else reply_err(EINVAL, "bad request");
  }
  return 0;
}
