/*
 * strata-upper-walk: read a job's overlay upper directory (its writable layer) for
 * `--container-save`, and write what it holds as a stream of records on stdout, which the epilog
 * turns into an OCI layer (src/runtime/save/). Usage: strata-upper-walk UPPERDIR UID GID
 *
 * The upper is the job user's tree: its content is hostile, and a process of the user may still
 * change it while we read. So, after opening UPPERDIR itself (a directory strata made), this
 * program reads with the user's file-system identity (setfsuid/setfsgid and the user's groups):
 * every open, directory search and read is checked as the user's would be, so it can only ever
 * read what the user could read. It keeps CAP_SYS_ADMIN only because overlayfs marks opaque
 * directories with a trusted.* xattr, which nothing else may read. Every name is resolved from
 * its parent's descriptor with O_NOFOLLOW (a symbolic link is recorded, never followed), nothing
 * on another file system is read, and a file is read through the descriptor whose type was checked.
 *
 * Records (one header line, fields separated by one space; paths and link targets as hex, relative
 * to the upper, "." for the upper itself; mode and ids in decimal; mtime in seconds):
 *   D MODE UID GID MTIME OPAQUE PATH           a directory; OPAQUE 1 = trusted.overlay.opaque=y
 *   F MODE UID GID MTIME SIZE PATH             a regular file, followed by exactly SIZE bytes
 *   H PATH TARGET                              a hard link to the file recorded earlier as TARGET
 *   S MODE UID GID MTIME PATH TARGET           a symbolic link
 *   W UID GID MTIME PATH                       an overlay whiteout (character device 0:0)
 *   P MODE UID GID MTIME PATH                  a FIFO
 *   X PATH REASON                              not saved (a socket, a device): a warning
 *   E ERRNO PATH MESSAGE                       the walk failed here (last record)
 *   Z                                          the walk is complete (last record)
 * Directories come before what is in them; entries of a directory in byte order of their names.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_DEPTH 512
#define PATH_CAP 65536

static dev_t upper_dev;
static void *links_seen; /* tsearch tree of struct seen: files with more than one link */

struct seen {
  ino_t ino;
  char *path;
};

static int seen_compare(const void *a, const void *b) {
  ino_t x = ((const struct seen *)a)->ino, y = ((const struct seen *)b)->ino;
  return x < y ? -1 : x > y;
}

static void put_hex(const char *text) {
  if (!*text) {
    fputs("2e", stdout);
    return;
  }
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) printf("%02x", *p);
}

static void fail(int err, const char *path, const char *what) {
  printf("E %s ", strerrorname_np(err) ? strerrorname_np(err) : "EIO");
  put_hex(path);
  printf(" %s: %s\n", what, strerror(err));
  fflush(stdout);
  exit(3);
}

static void meta(const struct stat *st) {
  printf(" %u %u %u %lld", (unsigned)st->st_mode, (unsigned)st->st_uid, (unsigned)st->st_gid, (long long)st->st_mtim.tv_sec);
}

/* The overlay xattrs that mean this upper cannot be read as a plain layer. */
static void refuse_overlay_features(int fd, const char *path) {
  static const char *const unsupported[] = { "trusted.overlay.redirect", "trusted.overlay.metacopy" };
  for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
    if (fgetxattr(fd, unsupported[i], NULL, 0) >= 0) fail(ENOTSUP, path, unsupported[i]);
  }
}

static void copy_file(int fd, const struct stat *st, const char *path) {
  static char buffer[1 << 16];
  long long left = st->st_size;
  while (left > 0) {
    ssize_t got = read(fd, buffer, left < (long long)sizeof buffer ? (size_t)left : sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(errno, path, "read");
    if (got == 0) {
      /* Shrunk while we read (a process of the user still writing): the record promised SIZE bytes. */
      memset(buffer, 0, sizeof buffer);
      got = left < (long long)sizeof buffer ? (ssize_t)left : (ssize_t)sizeof buffer;
    }
    if (fwrite(buffer, 1, (size_t)got, stdout) != (size_t)got) exit(4);
    left -= got;
  }
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void walk_dir(int dirfd, char *path, size_t length, int depth);

static void entry(int dirfd, const char *name, char *path, size_t length, int depth) {
  size_t add = strlen(name) + (length ? 1 : 0);
  if (length + add + 1 > PATH_CAP) fail(ENAMETOOLONG, path, "path");
  if (length) path[length] = '/';
  strcpy(path + length + (length ? 1 : 0), name);
  size_t here = length + add;
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) fail(errno, path, "stat");
  if (st.st_dev != upper_dev) {
    fputs("X ", stdout);
    put_hex(path);
    puts(" on-another-file-system");
  } else if (S_ISDIR(st.st_mode)) {
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) fail(errno, path, "open directory");
    walk_dir(fd, path, here, depth + 1);
  } else if (S_ISREG(st.st_mode)) {
    struct seen key = { st.st_ino, NULL }, **found = NULL;
    if (st.st_nlink > 1 && (found = tfind(&key, &links_seen, seen_compare))) {
      fputs("H ", stdout);
      put_hex(path);
      putchar(' ');
      put_hex((*found)->path);
      putchar('\n');
    } else {
      int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) fail(errno, path, "open");
      struct stat opened;
      /* The file read is the one described: same inode, still a regular file. */
      if (fstat(fd, &opened) != 0) fail(errno, path, "stat");
      if (!S_ISREG(opened.st_mode) || opened.st_ino != st.st_ino || opened.st_dev != st.st_dev) fail(EAGAIN, path, "changed while being saved");
      refuse_overlay_features(fd, path);
      fputs("F", stdout);
      meta(&opened);
      printf(" %lld ", (long long)opened.st_size);
      put_hex(path);
      putchar('\n');
      copy_file(fd, &opened, path);
      close(fd);
      if (opened.st_nlink > 1) {
        struct seen *record = malloc(sizeof *record);
        if (!record || !(record->path = strdup(path))) fail(ENOMEM, path, "memory");
        record->ino = opened.st_ino;
        if (!tsearch(record, &links_seen, seen_compare)) fail(ENOMEM, path, "memory");
      }
    }
  } else if (S_ISLNK(st.st_mode)) {
    char target[PATH_CAP];
    ssize_t got = readlinkat(dirfd, name, target, sizeof target - 1);
    if (got < 0) fail(errno, path, "readlink");
    target[got] = '\0';
    fputs("S", stdout);
    meta(&st);
    putchar(' ');
    put_hex(path);
    putchar(' ');
    put_hex(target);
    putchar('\n');
  } else if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
    printf("W %u %u %lld ", (unsigned)st.st_uid, (unsigned)st.st_gid, (long long)st.st_mtim.tv_sec);
    put_hex(path);
    putchar('\n');
  } else if (S_ISFIFO(st.st_mode)) {
    fputs("P", stdout);
    meta(&st);
    putchar(' ');
    put_hex(path);
    putchar('\n');
  } else {
    fputs("X ", stdout);
    put_hex(path);
    puts(S_ISSOCK(st.st_mode) ? " socket" : " device");
  }
  path[length] = '\0';
}

/* Records the directory open at `fd` (then closed) and everything below it. */
static void walk_dir(int fd, char *path, size_t length, int depth) {
  if (depth > MAX_DEPTH) fail(ELOOP, path, "directories nested too deeply");
  struct stat st;
  if (fstat(fd, &st) != 0) fail(errno, path, "stat");
  if (st.st_dev != upper_dev) fail(EXDEV, path, "directory");
  refuse_overlay_features(fd, path);
  char opaque[8];
  ssize_t got = fgetxattr(fd, "trusted.overlay.opaque", opaque, sizeof opaque);
  fputs("D", stdout);
  meta(&st);
  printf(" %d ", got == 1 && opaque[0] == 'y');
  put_hex(path);
  putchar('\n');

  DIR *dir = fdopendir(fd);
  if (!dir) fail(errno, path, "read directory");
  size_t count = 0, capacity = 64;
  char **names = malloc(capacity * sizeof *names);
  struct dirent *item;
  errno = 0;
  while (names && (item = readdir(dir))) {
    if (!strcmp(item->d_name, ".") || !strcmp(item->d_name, "..")) continue;
    if (count == capacity && !(names = realloc(names, (capacity *= 2) * sizeof *names))) break;
    if (!(names[count++] = strdup(item->d_name))) fail(ENOMEM, path, "memory");
  }
  if (!names) fail(ENOMEM, path, "memory");
  if (errno) fail(errno, path, "read directory");
  qsort(names, count, sizeof *names, by_name);
  for (size_t i = 0; i < count; i++) {
    entry(dirfd(dir), names[i], path, length, depth);
    free(names[i]);
  }
  free(names);
  closedir(dir);
}

/* The user's file-system identity: opens and reads are checked as theirs. CAP_SYS_ADMIN stays. */
static int become_user_for_files(uid_t uid, gid_t gid) {
  gid_t fallback[1] = { gid }, *groups = fallback;
  int count = 1;
  struct passwd *account = getpwuid(uid);
  if (account) {
    int wanted = 0;
    getgrouplist(account->pw_name, gid, NULL, &wanted);
    if (wanted > 0 && (groups = calloc((size_t)wanted, sizeof *groups))) {
      count = wanted;
      if (getgrouplist(account->pw_name, gid, groups, &count) < 0) groups = fallback, count = 1;
    } else groups = fallback;
  }
  if (setgroups((size_t)count, groups) != 0) return -1;
  setfsgid(gid);
  setfsuid(uid);
  /* setfs*id report the previous value; check that the change took. */
  if ((gid_t)setfsgid((gid_t)-1) != gid || (uid_t)setfsuid((uid_t)-1) != uid) {
    errno = EPERM;
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: strata-upper-walk UPPERDIR UID GID\n");
    return 2;
  }
  char *end;
  unsigned long uid = strtoul(argv[2], &end, 10);
  if (*end || !*argv[2]) return 2;
  unsigned long gid = strtoul(argv[3], &end, 10);
  if (*end || !*argv[3]) return 2;
  static char path[PATH_CAP];
  int root = open(argv[1], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) fail(errno, "", "open the upper directory");
  struct stat st;
  if (fstat(root, &st) != 0) fail(errno, "", "stat the upper directory");
  upper_dev = st.st_dev;
  /* A job of root's reads as root; anyone else's as them. */
  if (uid != 0 && become_user_for_files((uid_t)uid, (gid_t)gid) != 0) fail(errno, "", "take the job user's identity");
  walk_dir(root, path, 0, 0);
  puts("Z");
  return fflush(stdout) == 0 ? 0 : 4;
}
