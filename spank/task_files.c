/*
 * Files the task side trusts only when root wrote them: the runtime directory, the job's
 * directory, entry.json and the prolog's error file (slurmstepd, as root, before entering).
 */

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "strata.h"

/* A file or directory only root can have written: owned by root, no group/other write, no symlink. */
int root_owned(const char *path, mode_t type)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return -1;
	if ((st.st_mode & S_IFMT) != type || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/* `path` is a real directory (no symlink) with a file system of its own, below `parent`. */
int is_mount_point(const char *path, const char *parent)
{
	struct stat st, pst;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && lstat(parent, &pst) == 0 && st.st_dev != pst.st_dev;
}

/* Reads a root-owned regular file (at most cap-1 bytes); returns its length or -1. */
ssize_t read_root_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	size_t len = 0;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	while (len < cap - 1) {
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}
