/*
 * Mounts in and below a job's rootfs, a tree its user (and the image) controls: every path is
 * resolved once into a descriptor (untrusted.h) and the mount is made from and onto descriptors
 * with the new mount API, so nothing a user swaps in between can redirect it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol.h"
#include "untrusted.h"

/* bind FLAGS bits (mirrored in src/host/mount-helper.ts). */
enum { BIND_READONLY = 1, BIND_RECURSIVE = 2, BIND_KEEP_DEV = 4, BIND_OPTIONAL = 8, BIND_CREATE = 16, BIND_NOEXEC = 32, BIND_IF_ABSENT = 64 };

static int within(const char *path, const char *dir) {
  size_t length = strlen(dir);
  return strncmp(path, dir, length) == 0 && (path[length] == 0 || path[length] == '/');
}

/*
 * bind SOURCE ROOTFS TARGET FLAGS UID GID DENY ALSO [GROUPS]
 * SOURCE is opened as UID/GID with the supplementary groups GROUPS ("GID,GID,...": the job's
 * identity lookup found them; without, the child asks the name service) — their permissions
 * decide; TARGET is a container path resolved in
 * ROOTFS (created if BIND_CREATE); a source that resolves into DENY (strata's runtime dir) is
 * refused. Missing targets are created only in the rootfs mount itself or on ALSO's filesystem (a
 * mount the job owns: its /tmp), never in a host directory bound in. The source's own mount flags are kept (a read-only or noexec source stays so); nosuid,
 * nodev (unless BIND_KEEP_DEV), ro (BIND_READONLY) and noexec (BIND_NOEXEC) are added, never
 * removed; the new mount is a slave, so unmounting it never propagates to the host. With
 * BIND_IF_ABSENT a target the rootfs already has is left alone. Reply: the new mount's id, or
 * "skipped" for a missing optional source or a present BIND_IF_ABSENT target.
 */
/* The device of a filesystem the job owns (a path strata made), or 0. */
static dev_t own_dev(const char *path) {
  struct stat st;
  return path && stat(path, &st) == 0 ? st.st_dev : 0;
}

void attach_and_reply(int tree, unsigned at_flags, struct mount_attr *attr, int target, const char *what) {
  if (mount_setattr(tree, "", AT_EMPTY_PATH | at_flags, attr, sizeof *attr) != 0) reply_stage_err(errno, STAGE_MOUNT, what);
  else if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) reply_stage_err(errno, STAGE_MOUNT, "move_mount");
  else {
    char id[32];
    snprintf(id, sizeof id, "%lld", mount_id_of(tree));
    reply_ok(id);
  }
}

int do_bind(char **f) {
  unsigned flags = (unsigned)strtoul(f[4], NULL, 10);
  /* GROUPS (optional): the user's group list from the job's identity lookup (identity.c). */
  int source = open_as_user(f[1], (uid_t)strtoul(f[5], NULL, 10), (gid_t)strtoul(f[6], NULL, 10), f[9] ? opt(f[9]) : NULL);
  if (source < 0) {
    if (errno == ENOENT && (flags & BIND_OPTIONAL)) reply_ok("skipped");
    else reply_stage_err(errno, STAGE_SOURCE, f[1]);
    return 0;
  }
  int root = -1, target = -1, tree = -1;
  char link[64], real[PATH_MAX] = "";
  const char *deny = opt(f[7]);
  ssize_t length = 0;
  if (deny) {
    snprintf(link, sizeof link, "/proc/self/fd/%d", source);
    length = readlink(link, real, sizeof real - 1);
    real[length > 0 ? length : 0] = 0;
  }
  struct stat source_stat, target_stat;
  if (deny && length > 0 && within(real, deny)) {
    reply_stage_err(EPERM, STAGE_DENY, real);
  } else if (fstat(source, &source_stat) != 0) {
    reply_stage_err(errno, STAGE_SOURCE, f[1]);
  } else if ((root = open(f[2], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
    reply_err(errno, f[2]);
  } else if ((flags & BIND_IF_ABSENT) && (target = open_in_root_also(root, f[3], 0, 0)) >= 0) {
    reply_ok("skipped");
  } else if ((flags & BIND_IF_ABSENT) && errno != ENOENT) {
    reply_stage_err(errno, STAGE_TARGET, f[3]);
  } else if ((target = open_in_root_also(root, f[3], (flags & BIND_CREATE) ? (S_ISDIR(source_stat.st_mode) ? 'd' : 'f') : 0, own_dev(opt(f[8])))) < 0) {
    reply_stage_err(errno, STAGE_TARGET, f[3]);
  } else if (fstat(target, &target_stat) != 0) {
    reply_stage_err(errno, STAGE_TARGET, f[3]);
  } else if (S_ISDIR(source_stat.st_mode) != S_ISDIR(target_stat.st_mode)) {
    reply_stage_err(S_ISDIR(source_stat.st_mode) ? ENOTDIR : EISDIR, STAGE_TYPE, f[3]);
  } else {
    unsigned recursive = (flags & BIND_RECURSIVE) ? AT_RECURSIVE : 0;
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_NOSUID | ((flags & BIND_KEEP_DEV) ? 0 : MOUNT_ATTR_NODEV) | ((flags & BIND_READONLY) ? MOUNT_ATTR_RDONLY : 0) |
                    ((flags & BIND_NOEXEC) ? MOUNT_ATTR_NOEXEC : 0);
    attr.propagation = MS_SLAVE;
    tree = open_tree(source, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | recursive);
    if (tree < 0) reply_stage_err(errno, STAGE_MOUNT, "open_tree");
    else attach_and_reply(tree, recursive, &attr, target, "mount_setattr");
  }
  if (tree >= 0) close(tree);
  if (target >= 0) close(target);
  if (root >= 0) close(root);
  close(source);
  return 0;
}

/*
 * umountv BASE RELATIVE MOUNT_ID FLAGS
 * Unmount the mount MOUNT_ID found at BASE/RELATIVE (its path in mountinfo). The path is resolved
 * below BASE with no symlinks at all (a mount point's path in mountinfo has none) and what is
 * found there must carry MOUNT_ID, so a component a user swapped can never make root unmount
 * anything else (ESTALE instead).
 * A lazy detach (MNT_DETACH) goes through the verified descriptor itself. A normal unmount cannot
 * (the descriptor would keep the mount busy): it is made relative to the verified parent, as the
 * working directory, with UMOUNT_NOFOLLOW, right after the last component's mount id was checked
 * there; a mount point cannot be renamed away in the namespace strata mounts in (EBUSY).
 */
int do_umount_verified(char **f) {
  int flags = (int)strtol(f[4], NULL, 10);
  long long wanted = strtoll(f[3], NULL, 10);
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", f[2]);
  char *slash = strrchr(parent, '/');
  const char *name = slash ? slash + 1 : parent;
  if (slash) *slash = 0;
  const char *parent_path = slash ? parent : ".";
  if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
    reply_stage_err(EINVAL, STAGE_VERIFY, f[2]);
    return 0;
  }
  int base = open(f[1], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int dir = base < 0 ? -1 : openat2_path(base, parent_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  int err = errno;
  if (base >= 0) close(base);
  if (dir < 0) {
    reply_stage_err(err, STAGE_VERIFY, f[2]);
    return 0;
  }
  if (flags & MNT_DETACH) {
    /* A lazy detach goes through the verified descriptor: its magic link names exactly that mount. */
    int fd = openat2_path(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    long long found = fd < 0 ? -1 : mount_id_of(fd);
    if (found != wanted) {
      reply_stage_err(found < 0 ? errno : ESTALE, STAGE_VERIFY, f[2]);
    } else {
      char self[64];
      snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
      if (umount2(self, flags) != 0) reply_err(errno, "umount");
      else reply_ok(NULL);
    }
    if (fd >= 0) close(fd);
  } else {
    /* The entry itself, as the verified parent holds it (a link is not followed: another id). */
    long long found = mount_id_at(dir, name);
    if (found != wanted) reply_stage_err(found < 0 ? errno : ESTALE, STAGE_VERIFY, f[2]);
    else if (fchdir(dir) != 0) reply_err(errno, "chdir");
    else if (umount2(name, flags | UMOUNT_NOFOLLOW) != 0) reply_err(errno, "umount");
    else reply_ok(NULL);
    /* Never left inside a job's tree: an idle executor's working directory would keep it busy. */
    go_home();
  }
  close(dir);
  return 0;
}

/* readonly TARGET: make the mount at TARGET (a path strata owns) read-only, that mount only. */
int do_readonly(char **f) {
  int fd = open(f[1], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (fd < 0) reply_err(errno, f[1]);
  else if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) reply_err(errno, "mount_setattr");
  else reply_ok(NULL);
  if (fd >= 0) close(fd);
  return 0;
}
