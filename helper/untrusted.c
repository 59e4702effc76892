/* Path handling in trees a user controls: see untrusted.h. */
#ifndef _GNU_SOURCE /* also built into the SPANK plugin, whose Makefile defines it */
#define _GNU_SOURCE
#endif
#include "untrusted.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

const char *const stage_names[] = { "source", "target", "type", "deny", "mount", "verify" };

int openat2_path(int dirfd, const char *path, int flags, unsigned long long resolve) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (unsigned long long)flags;
  how.resolve = resolve;
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static void close_keeping_errno(int fd) {
  int err = errno;
  if (fd >= 0) close(fd);
  errno = err;
}

/* Symbolic links followed while creating, as the kernel's own limit for a lookup. */
#define MAX_LINKS 40

int open_in_root(int rootfd, const char *path, char create) { return open_in_root_also(rootfd, path, create, 0); }

int open_in_root_also(int rootfd, const char *path, char create, dev_t also_dev) {
  /* The prefix resolved so far, as a path below the root ("/a/b"): each step resolves the whole
   * prefix again from the root, so a symlink anywhere is followed the container's way. */
  char prefix[PATH_MAX] = "", walk[PATH_MAX];
  size_t used = 0;
  int links = 0;
  if (snprintf(walk, sizeof walk, "%s", path) >= (int)sizeof walk) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int current = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
  if (current < 0) return -1;
  long long root_id = -2;
  const char *cursor = walk;
  for (;;) {
    cursor += strspn(cursor, "/");
    if (!*cursor) return current;
    const char *end = strchrnul(cursor, '/');
    size_t length = (size_t)(end - cursor);
    if (length > NAME_MAX || used + 1 + length >= sizeof prefix) {
      close(current);
      errno = ENAMETOOLONG;
      return -1;
    }
    char name[NAME_MAX + 1];
    memcpy(name, cursor, length);
    name[length] = 0;
    size_t parent_used = used;
    prefix[used++] = '/';
    memcpy(prefix + used, name, length + 1);
    used += length;
    int last = end[strspn(end, "/")] == 0;
    int next = openat2_path(rootfd, prefix, O_PATH | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    if (next < 0 && errno == ENOENT && create) {
      /* Made in the parent we hold, never by a path: a component swapped meanwhile cannot move
       * the new entry outside the rootfs. Only on the rootfs mount itself (the job's own layer):
       * an image's link must not make root create entries in a host directory bound into the
       * container (/dev, a home directory, a site mount). */
      /* The root's mount id: looked up once, and only when something is made. */
      if (root_id == -2) root_id = mount_id_of(rootfd);
      struct stat parent;
      long long here = mount_id_of(current);
      int own = here >= 0 && (here == root_id || (also_dev && fstat(current, &parent) == 0 && parent.st_dev == also_dev));
      if (!own) {
        close(current);
        errno = here < 0 ? errno : EXDEV;
        return -1;
      }
      int made;
      if (!last || create == 'd') {
        made = mkdirat(current, name, 0755);
      } else {
        int file = openat(current, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0644);
        made = file < 0 ? -1 : close(file);
      }
      if (made == 0) {
        next = openat2_path(current, name, O_PATH | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
      } else if (errno == EEXIST) {
        /* A dangling symlink: create where it points, inside the root, by walking again from
         * the root along the link's target followed by the rest of the path. */
        char target[PATH_MAX], rewritten[PATH_MAX];
        ssize_t size = readlinkat(current, name, target, sizeof target - 1);
        if (size < 0 || ++links > MAX_LINKS) {
          close(current);
          errno = size < 0 ? EEXIST : ELOOP;
          return -1;
        }
        target[size] = 0;
        prefix[parent_used] = 0;
        int written = target[0] == '/' ? snprintf(rewritten, sizeof rewritten, "%s%s", target, end)
                                       : snprintf(rewritten, sizeof rewritten, "%s/%s%s", prefix, target, end);
        if (written < 0 || written >= (int)sizeof rewritten) {
          close(current);
          errno = ENAMETOOLONG;
          return -1;
        }
        memcpy(walk, rewritten, (size_t)written + 1);
        cursor = walk;
        prefix[0] = 0;
        used = 0;
        close(current);
        if ((current = fcntl(rootfd, F_DUPFD_CLOEXEC, 0)) < 0) return -1;
        continue;
      }
    }
    if (next < 0) {
      close_keeping_errno(current);
      return -1;
    }
    close(current);
    current = next;
    cursor = end;
  }
}

long long mount_id_of(int fd) { return mount_id_at(fd, ""); }

long long mount_id_at(int dir, const char *name) {
  struct statx st;
  if (statx(dir, name, (*name ? 0 : AT_EMPTY_PATH) | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_MNT_ID, &st) != 0) return -1;
  if (!(st.stx_mask & STATX_MNT_ID)) {
    errno = ENOSYS;
    return -1;
  }
  return (long long)st.stx_mnt_id;
}

/* The child's message: an errno (0: the descriptor follows) and whether it is the node's fault. */
struct open_reply {
  int err;
  int node_fault;
};

static void send_reply(int sock, struct open_reply reply, int fd) {
  struct iovec iov = { .iov_base = &reply, .iov_len = sizeof reply };
  union {
    char buffer[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1 };
  if (fd >= 0) {
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof control.buffer;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &fd, sizeof fd);
  }
  if (sendmsg(sock, &message, MSG_NOSIGNAL) < 0) _exit(2);
}

/* "GID,GID,...": at most NGROUPS_MAX entries, each below (gid_t)-1; 0 with the list in *groups
 * (empty: just `gid`), -1/EINVAL for anything else. */
static int parse_groups(const char *gids, gid_t gid, gid_t **groups, int *count) {
  static gid_t listed[65536];
  int parsed = 0;
  for (const char *cursor = gids; *cursor;) {
    char *end;
    errno = 0;
    unsigned long value = strtoul(cursor, &end, 10);
    if (end == cursor || (*end && *end != ',') || errno || value >= (gid_t)-1 || parsed == (int)(sizeof listed / sizeof *listed)) {
      errno = EINVAL;
      return -1;
    }
    listed[parsed++] = (gid_t)value;
    cursor = *end ? end + 1 : end;
  }
  if (parsed == 0) listed[parsed++] = gid;
  *groups = listed;
  *count = parsed;
  return 0;
}

/*
 * GIDS: the user's group list ("1000,27,...", as the job's identity lookup found it: identity.c),
 * or NULL to ask the name service here (a child per bind: the SPANK plugin, an older caller).
 */
static int become_user(uid_t uid, gid_t gid, const char *gids) {
  gid_t fallback[1] = { gid };
  gid_t *groups = fallback;
  int count = 1;
  if (gids) {
    if (parse_groups(gids, gid, &groups, &count) != 0) return -1;
  } else {
    struct passwd *entry = getpwuid(uid);
    int wanted = 0;
    if (entry) getgrouplist(entry->pw_name, gid, NULL, &wanted);
    if (wanted > 0 && (groups = calloc((size_t)wanted, sizeof *groups))) {
      count = wanted;
      if (getgrouplist(entry->pw_name, gid, groups, &count) < 0) {
        free(groups);
        groups = fallback;
        count = 1;
      }
    } else {
      groups = fallback;
    }
  }
  if (setgroups((size_t)count, groups) != 0) return -1;
  if (setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) return -1;
  return 0;
}

static void open_in_child(const char *path, uid_t uid, gid_t gid, const char *gids, int sock) {
  /* Keep nothing of ours open: the user's path must not reach the helper's descriptors through
   * /proc/self/fd. */
  for (int fd = 0; fd < sock; fd++) close(fd);
  syscall(SYS_close_range, sock + 1, ~0U, 0);
  struct open_reply reply = { 0, 0 };
  if (become_user(uid, gid, gids) != 0) {
    reply = (struct open_reply){ errno, 1 };
    send_reply(sock, reply, -1);
    _exit(0);
  }
  prctl(PR_SET_DUMPABLE, 0);
  int fd = open(path, O_PATH | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    reply.err = errno;
    send_reply(sock, reply, -1);
    _exit(0);
  }
  /* The same open file is checked: readable, and searchable if a directory. */
  int mode = R_OK | (S_ISDIR(st.st_mode) ? X_OK : 0);
  if (syscall(SYS_faccessat2, fd, "", mode, AT_EMPTY_PATH | AT_EACCESS) != 0) {
    reply.err = errno;
    if (errno == ENOSYS || errno == EINVAL) {
      char self[64];
      snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
      reply.err = access(self, mode) == 0 ? 0 : errno;
    }
    if (reply.err) {
      send_reply(sock, reply, -1);
      _exit(0);
    }
  }
  send_reply(sock, reply, fd);
  _exit(0);
}

/*
 * The fast way to open a path as the user, with no child: this process's filesystem identity
 * (fsuid, fsgid, supplementary groups; raw syscalls, so only this thread's) becomes the user's
 * for the open, then root's again. Path permission checks use exactly that identity, and the
 * kernel drops root's filesystem capabilities while fsuid is not 0 (capabilities(7)); what it
 * does not make the user's, this refuses and leaves to the child: magic links (/proc/PID/fd/N
 * would be checked against root's other capabilities), anything on procfs (hidepid), other file
 * types than directories and regular files (opening them to check access may have effects), and
 * every failure but ENOENT (a FUSE mount without allow_other refuses root's ids but lets the
 * user in). Returns the descriptor, -1/ENOENT, or -2 for "ask the child".
 */
#define ASK_CHILD -2
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

/* Back to root's filesystem identity; a process that cannot be is not left running. */
static void restore_fs_identity(const gid_t *groups, int count) {
  int err = errno;
  syscall(SYS_setfsuid, 0);
  syscall(SYS_setfsgid, 0);
  if (syscall(SYS_setgroups, (size_t)count, groups) != 0 || syscall(SYS_setfsuid, -1) != 0 || syscall(SYS_setfsgid, -1) != 0) _exit(70);
  errno = err;
}

static int open_with_fs_identity(const char *path, uid_t uid, gid_t gid, const char *gids) {
  static gid_t saved[65536];
  gid_t *groups;
  int count, saved_count = getgroups((int)(sizeof saved / sizeof *saved), saved);
  if (saved_count < 0 || parse_groups(gids, gid, &groups, &count) != 0) return ASK_CHILD;
  if (syscall(SYS_setgroups, (size_t)count, groups) != 0) return ASK_CHILD;
  syscall(SYS_setfsgid, gid);
  syscall(SYS_setfsuid, uid);
  int fd = -1, answer = ASK_CHILD;
  if ((uid_t)syscall(SYS_setfsuid, -1) == uid && (gid_t)syscall(SYS_setfsgid, -1) == gid) {
    fd = openat2_path(AT_FDCWD, path, O_PATH | O_CLOEXEC, RESOLVE_NO_MAGICLINKS);
    struct statfs fs;
    struct stat st;
    if (fd < 0) {
      if (errno == ENOENT) answer = -1;
    } else if (fstatfs(fd, &fs) == 0 && fs.f_type != PROC_SUPER_MAGIC && fstat(fd, &st) == 0 && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
      /* The check the child makes with faccessat2, as a real open of that same file: read (and
       * search, for a directory: "." is looked up in it) with the user's identity. */
      char self[64];
      snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
      int check = S_ISDIR(st.st_mode) ? openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : open(self, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
      if (check >= 0) {
        close(check);
        answer = fd;
      }
    }
  }
  restore_fs_identity(saved, saved_count);
  if (answer != fd && fd >= 0) close(fd);
  if (answer == -1) errno = ENOENT;
  return answer;
}

int open_as_user(const char *path, uid_t uid, gid_t gid, const char *gids) {
  if (uid == 0) return open(path, O_PATH | O_CLOEXEC);
  if (gids) {
    int fd = open_with_fs_identity(path, uid, gid, gids);
    if (fd != ASK_CHILD) return fd;
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return -1;
  pid_t child = fork();
  if (child < 0) {
    close_keeping_errno(pair[0]);
    close_keeping_errno(pair[1]);
    return -1;
  }
  if (child == 0) {
    close(pair[0]);
    open_in_child(path, uid, gid, gids, pair[1]);
  }
  close(pair[1]);
  struct open_reply reply = { EPROTO, 1 };
  struct iovec iov = { .iov_base = &reply, .iov_len = sizeof reply };
  union {
    char buffer[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
  ssize_t got = recvmsg(pair[0], &message, MSG_CMSG_CLOEXEC);
  int fd = -1;
  struct cmsghdr *header = got > 0 ? CMSG_FIRSTHDR(&message) : NULL;
  if (header && header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(header), sizeof fd);
  close(pair[0]);
  while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
  }
  if (got != (ssize_t)sizeof reply) {
    errno = EPROTO;
    return -1;
  }
  if (fd >= 0) return fd;
  /* A failure to become the user is the node's (NSS, limits), reported as ECHILD to tell it apart. */
  errno = reply.node_fault ? ECHILD : (reply.err ? reply.err : EPROTO);
  return -1;
}
