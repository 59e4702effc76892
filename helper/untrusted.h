/*
 * Path handling in trees a user controls (the job's rootfs, bind sources, the mounts below a job's
 * directory). Every function here resolves a path once, into a file descriptor, and every later use
 * goes through that descriptor: a path string checked now and used later is how runc's
 * CVE-2021-30465 happened. See docs/security.md.
 */
#ifndef STRATA_UNTRUSTED_H
#define STRATA_UNTRUSTED_H

#include <sys/types.h>

/* Where a request failed: the caller (TypeScript) decides "fail the job" or "drain the node" from it. */
enum stage { STAGE_SOURCE, STAGE_TARGET, STAGE_TYPE, STAGE_DENY, STAGE_MOUNT, STAGE_VERIFY };
extern const char *const stage_names[];

/* openat2(2); -1/ENOSYS on kernels before 5.6. */
int openat2_path(int dirfd, const char *path, int flags, unsigned long long resolve);

/*
 * Resolve the absolute container path `path` under `rootfd` the way a process chrooted there
 * would (symlinks in the image resolve inside the rootfs; `..` never leaves it; magic links are
 * refused). With `create` ('d' or 'f'), missing components are made (parents as directories, the
 * last one as `create` says) with mkdirat/openat relative to the already resolved parent, and
 * only on the mount of `rootfd` itself (EXDEV when the parent is another mount, e.g. a bind of a
 * host directory).
 * Returns an O_PATH descriptor or -1 with errno set.
 */
int open_in_root(int rootfd, const char *path, char create);
/* The same, also creating on the filesystem of device `also_dev` (a mount the job owns, its /tmp). */
int open_in_root_also(int rootfd, const char *path, char create, dev_t also_dev);

/*
 * Open `path` as uid/gid with the user's supplementary groups (GIDS "GID,GID,...", or NULL: the
 * name service's): the user's permissions decide what the path reaches, and the check that the
 * user may read it (and search it, for a directory) is made on that same open file. With GIDS this
 * process's filesystem identity becomes the user's for the open (per thread; see untrusted.c for
 * what is still left to a child); otherwise a child that has become the user opens it and passes
 * the descriptor back. An O_PATH descriptor, or -1 with errno set.
 */
int open_as_user(const char *path, uid_t uid, gid_t gid, const char *gids);

/* The mount id (statx STATX_MNT_ID) of the mount an fd is on; -1 with errno set on failure. */
long long mount_id_of(int fd);
/* The same for the entry NAME (one component, not followed if a link, no automount) of DIR. */
long long mount_id_at(int dir, const char *name);

#endif
