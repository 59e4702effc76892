/*
 * Reading a file out of a job's rootfs (image content: untrusted) as root, without letting the
 * image point root anywhere else: the path is resolved inside the rootfs (RESOLVE_IN_ROOT, no
 * magic links), the last component must not be a symbolic link (O_NOFOLLOW), a FIFO or device
 * cannot block the open (O_NONBLOCK) and is refused by type (only S_ISREG), and the size is
 * capped. strata reads the image's /etc/passwd and /etc/group this way to merge the job user's
 * entries in (src/runtime/job/identity.ts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol.h"
#include "untrusted.h"

/* The reply carries the content hex-encoded: one line, whatever bytes the file holds. */
#define READ_LIMIT (4 * 1024 * 1024)

/*
 * readfile ROOTFS PATH MAX
 * Reply: ok TAB <content as hex>, or err with stage "target" (what the image put there: missing,
 * a link, not a regular file, larger than MAX).
 */
int do_readfile(char **f) {
  long long max = strtoll(f[3], NULL, 10);
  if (max <= 0 || max > READ_LIMIT) {
    reply_err(EINVAL, "readfile limit");
    return 0;
  }
  int root = open(f[1], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) {
    reply_err(errno, f[1]);
    return 0;
  }
  int fd = openat2_path(root, f[2], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  int err = errno;
  close(root);
  if (fd < 0) {
    reply_stage_err(err, STAGE_TARGET, f[2]);
    return 0;
  }
  struct stat st;
  char *content = NULL;
  if (fstat(fd, &st) != 0) {
    reply_stage_err(errno, STAGE_TARGET, f[2]);
  } else if (!S_ISREG(st.st_mode)) {
    reply_stage_err(S_ISDIR(st.st_mode) ? EISDIR : EINVAL, STAGE_TYPE, f[2]);
  } else if (st.st_size > max) {
    reply_stage_err(EFBIG, STAGE_TARGET, f[2]);
  } else if (!(content = malloc((size_t)max + 1))) {
    reply_err(ENOMEM, "readfile");
  } else {
    /* Read up to MAX+1 bytes: a file that grew since fstat is refused, not cut short. */
    size_t used = 0;
    ssize_t got = 0;
    while (used <= (size_t)max && (got = read(fd, content + used, (size_t)max + 1 - used)) > 0) used += (size_t)got;
    if (got < 0) {
      reply_stage_err(errno, STAGE_TARGET, f[2]);
    } else if (used > (size_t)max) {
      reply_stage_err(EFBIG, STAGE_TARGET, f[2]);
    } else {
      reply_ok_hex(content, used);
    }
  }
  free(content);
  close(fd);
  return 0;
}
