/*
 * --container-remap-root's two pieces of set-up (docs/pyxis.md): an idmapped clone of a mount, so
 * that the image's root-owned files belong to the job user (uid 0 in the task's namespace), and a
 * file written into the job's writable layer (apt's sandbox setting).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "protocol.h"
#include "untrusted.h"

/* Writes `text` to /proc/<pid>/<name>; 0 or -1 with errno set. */
static int write_proc(pid_t pid, const char *name, const char *text) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t wrote = write(fd, text, strlen(text));
  int err = errno;
  close(fd);
  errno = err;
  return wrote == (ssize_t)strlen(text) ? 0 : -1;
}

/*
 * An id map giving on-disk 0 to `id` and every other id to itself, except `id` (taken): files
 * of other users in the image (_apt, shadow) keep their owners and can still be copied up.
 */
static void id_map(char *map, size_t size, unsigned id) {
  const unsigned long long top = 4294967295ULL; /* (uid_t)-1 is never a valid id */
  int used = snprintf(map, size, "0 %u 1\n", id);
  if (id > 1) used += snprintf(map + used, size - (size_t)used, "1 1 %u\n", id - 1);
  if (id > 0 && (unsigned long long)id + 1 < top) snprintf(map + used, size - (size_t)used, "%u %u %llu\n", id + 1, id + 1, top - id - 1);
}

/* A user namespace with the maps above, held by a descriptor; -1 with errno set. */
static int mapping_namespace(unsigned uid, unsigned gid) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return -1;
  pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) {
    /* Make the namespace, say so, and wait until the parent has taken it (EOF). */
    char done = unshare(CLONE_NEWUSER) == 0;
    close(ready[0]);
    if (write(ready[1], &done, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char made = 0, map[128], path[64];
  int ns = -1, err = EIO;
  if (read(ready[0], &made, 1) == 1 && made) {
    id_map(map, sizeof map, uid);
    if (write_proc(child, "uid_map", map) == 0) {
      id_map(map, sizeof map, gid);
      if (write_proc(child, "setgroups", "deny") == 0 && write_proc(child, "gid_map", map) == 0) {
        snprintf(path, sizeof path, "/proc/%d/ns/user", (int)child);
        ns = open(path, O_RDONLY | O_CLOEXEC);
      }
    }
    err = errno;
  }
  close(ready[0]);
  kill(child, SIGKILL);
  while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
  }
  errno = err;
  return ns;
}

/*
 * idmap SOURCE TARGET UID GID
 * Attach at TARGET (a directory strata owns) a read-only clone of the mount at SOURCE (strata's
 * too), idmapped so that on-disk 0 is UID/GID. Reply: the new mount's id.
 */
int do_idmap(char **f) {
  /* One namespace serves every layer of a job (the requests of one prolog come in a row). */
  static int ns = -1;
  static unsigned ns_uid, ns_gid;
  unsigned uid = (unsigned)strtoul(f[3], NULL, 10), gid = (unsigned)strtoul(f[4], NULL, 10);
  if (ns < 0 || ns_uid != uid || ns_gid != gid) {
    if (ns >= 0) close(ns);
    ns = mapping_namespace(uid, gid);
    ns_uid = uid;
    ns_gid = gid;
  }
  if (ns < 0) {
    reply_stage_err(errno, STAGE_MOUNT, "user namespace");
    return 0;
  }
  int tree = -1, target = open(f[2], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  attr.userns_fd = (unsigned long long)ns;
  attr.propagation = MS_PRIVATE;
  if (target < 0) reply_err(errno, f[2]);
  else if ((tree = open_tree(AT_FDCWD, f[1], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW)) < 0) reply_err(errno, f[1]);
  else attach_and_reply(tree, 0, &attr, target, "idmapped mount");
  if (tree >= 0) close(tree);
  if (target >= 0) close(target);
  return 0;
}

/*
 * putfile ROOTFS DIR NAME HEX UID GID
 * Create the new file NAME (content HEX) in the container directory DIR of a rootfs, owned by
 * UID/GID. DIR is resolved inside the rootfs and must exist (reply "skipped" if not: the image
 * has no use for the file); NAME is created O_EXCL|O_NOFOLLOW from DIR's descriptor, so nothing
 * the image or the user put there is followed or overwritten (EEXIST: left as it is).
 */
int do_putfile(char **f) {
  int root = open(f[1], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) {
    reply_err(errno, f[1]);
    return 0;
  }
  int dir = openat2_path(root, f[2], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
  int err = errno;
  close(root);
  if (dir < 0) {
    if (err == ENOENT || err == ENOTDIR) reply_ok("skipped");
    else reply_stage_err(err, STAGE_TARGET, f[2]);
    return 0;
  }
  if (strchr(f[3], '/') || !strcmp(f[3], ".") || !strcmp(f[3], "..")) {
    close(dir);
    reply_err(EINVAL, f[3]);
    return 0;
  }
  size_t hex = strlen(f[4]), length = hex / 2;
  char *content = malloc(length + 1);
  for (size_t i = 0; content && i < length; i++) {
    unsigned byte;
    if (sscanf(f[4] + 2 * i, "%2x", &byte) != 1) byte = 0;
    content[i] = (char)byte;
  }
  int fd = content ? openat(dir, f[3], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0644) : -1;
  if (!content) reply_err(ENOMEM, "putfile");
  else if (fd < 0 && errno == EEXIST) reply_ok("exists");
  else if (fd < 0) reply_stage_err(errno, STAGE_TARGET, f[3]);
  else if (write(fd, content, length) != (ssize_t)length) reply_err(errno ? errno : EIO, f[3]);
  else if (fchown(fd, (uid_t)strtoul(f[5], NULL, 10), (gid_t)strtoul(f[6], NULL, 10)) != 0) reply_err(errno, "fchown");
  else reply_ok(NULL);
  if (fd >= 0) close(fd);
  free(content);
  close(dir);
  return 0;
}
