/*
 * The small writes and checks a CDI device needs inside a job's rootfs (docs/gpus.md): a symbolic
 * link, a mode change, a device node's identity. Like the binds (job-mounts.c), every path is a
 * container path resolved once in the rootfs with openat2 RESOLVE_IN_ROOT (untrusted.h) and used
 * through that descriptor. The writes are refused unless the object lies on the rootfs's own
 * overlay mount: a link or mode change must never land in a bind mount (the host's /dev, a user's
 * home), whatever symlinks the image planted on the way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "protocol.h"
#include "untrusted.h"

/* The rootfs (a mount point strata owns) and its mount id; -1 with a reply sent on failure. */
static int open_rootfs(const char *path, long long *mount_id) {
  int root = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) {
    reply_err(errno, path);
    return -1;
  }
  if ((*mount_id = mount_id_of(root)) < 0) {
    reply_err(errno, "statx");
    close(root);
    return -1;
  }
  return root;
}

/* Whether fd is on the rootfs's overlay itself (not on anything mounted inside it). */
static int on_rootfs(int fd, long long root_id) {
  long long id = mount_id_of(fd);
  return id >= 0 && id == root_id;
}

/* Split a container path into its parent ("/" for a top-level name) and last component. */
static int split_path(const char *path, char *parent, size_t size, const char **name) {
  if (snprintf(parent, size, "%s", path) >= (int)size) return -1;
  char *slash = strrchr(parent, '/');
  if (!slash || !slash[1] || strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0) return -1;
  *name = path + (slash - parent) + 1;
  if (slash == parent) slash[1] = 0;
  else *slash = 0;
  return 0;
}

/*
 * symlink ROOTFS LINK TARGET
 * Make LINK (a container path) a symbolic link to TARGET (stored verbatim: the link is followed
 * inside the container). Missing parents are made in the rootfs. An existing link or file at LINK
 * is replaced (nvidia-cdi-hook create-symlinks does the same); a directory is not. Reply: "made",
 * or "exists" when LINK already points to TARGET.
 */
int do_symlink(char **f) {
  char parent_path[PATH_MAX], current[PATH_MAX];
  const char *name;
  long long root_id;
  if (split_path(f[2], parent_path, sizeof parent_path, &name) != 0) {
    reply_stage_err(EINVAL, STAGE_TARGET, f[2]);
    return 0;
  }
  int root = open_rootfs(f[1], &root_id);
  if (root < 0) return 0;
  int parent = open_in_root(root, parent_path, 'd');
  struct stat st;
  if (parent < 0) {
    reply_stage_err(errno, STAGE_TARGET, parent_path);
  } else if (!on_rootfs(parent, root_id)) {
    reply_stage_err(EXDEV, STAGE_TARGET, parent_path);
  } else {
    /* Re-open the parent as a real directory: *at() calls need a searchable dir descriptor. */
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", parent);
    int dir = open(self, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
      reply_stage_err(errno, STAGE_TARGET, parent_path);
    } else {
      ssize_t length = readlinkat(dir, name, current, sizeof current - 1);
      if (length >= 0 && (current[length] = 0, strcmp(current, f[3]) == 0)) {
        reply_ok("exists");
      } else if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        reply_stage_err(EISDIR, STAGE_TARGET, f[2]);
      } else if (unlinkat(dir, name, 0) != 0 && errno != ENOENT) {
        reply_stage_err(errno, STAGE_TARGET, f[2]);
      } else if (symlinkat(f[3], dir, name) != 0) {
        reply_stage_err(errno, STAGE_TARGET, f[2]);
      } else {
        reply_ok("made");
      }
      close(dir);
    }
  }
  if (parent >= 0) close(parent);
  close(root);
  return 0;
}

/*
 * chmod ROOTFS PATH MODE
 * Set the permission bits (octal MODE) of PATH, resolved in the rootfs; only a file of the overlay
 * itself (EXDEV for anything on a bind mount: the host's /dev, a driver file bound in). The mode
 * is set through the descriptor's /proc/self/fd link, which names exactly the resolved file.
 */
int do_chmod(char **f) {
  long long root_id;
  mode_t mode = (mode_t)strtoul(f[3], NULL, 8) & 07777;
  int root = open_rootfs(f[1], &root_id);
  if (root < 0) return 0;
  int fd = open_in_root(root, f[2], 0);
  struct stat st;
  if (fd < 0) {
    reply_stage_err(errno, STAGE_TARGET, f[2]);
  } else if (!on_rootfs(fd, root_id)) {
    reply_stage_err(EXDEV, STAGE_TARGET, f[2]);
  } else if (fstat(fd, &st) != 0) {
    reply_stage_err(errno, STAGE_TARGET, f[2]);
  } else if (S_ISLNK(st.st_mode)) {
    /* A link the resolution refused to follow (a magic link): never chmod what it names. */
    reply_stage_err(ELOOP, STAGE_TARGET, f[2]);
  } else {
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    if (chmod(self, mode) != 0) reply_stage_err(errno, STAGE_TARGET, f[2]);
    else reply_ok(NULL);
  }
  if (fd >= 0) close(fd);
  close(root);
  return 0;
}

/*
 * devnode ROOTFS PATH TYPE MAJOR MINOR
 * Check that PATH, resolved in the rootfs, is a device node of TYPE (c or b) and MAJOR:MINOR.
 * Reply: ok, or an error at stage "type" naming what is there instead.
 */
int do_devnode(char **f) {
  long long root_id;
  int root = open_rootfs(f[1], &root_id);
  if (root < 0) return 0;
  int fd = open_in_root(root, f[2], 0);
  struct stat st;
  unsigned major_wanted = (unsigned)strtoul(f[4], NULL, 10), minor_wanted = (unsigned)strtoul(f[5], NULL, 10);
  mode_t type = f[3][0] == 'b' ? S_IFBLK : S_IFCHR;
  if (fd < 0) {
    reply_stage_err(errno, STAGE_TARGET, f[2]);
  } else if (fstat(fd, &st) != 0) {
    reply_stage_err(errno, STAGE_TARGET, f[2]);
  } else if ((st.st_mode & S_IFMT) != type || major(st.st_rdev) != major_wanted || minor(st.st_rdev) != minor_wanted) {
    char what[96];
    snprintf(what, sizeof what, "%s is %s %u:%u", f[2], S_ISCHR(st.st_mode) ? "c" : S_ISBLK(st.st_mode) ? "b" : "not a device", major(st.st_rdev), minor(st.st_rdev));
    reply_stage_err(ENODEV, STAGE_TYPE, what);
  } else {
    reply_ok(NULL);
  }
  if (fd >= 0) close(fd);
  close(root);
  return 0;
}
