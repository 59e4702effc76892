// The floor under strata's prolog and epilog (issue 17): a program that issues the mount, umount
// and loop-device system calls a prolog or epilog of the same image issues, and nothing else (no
// journal, no lock, no configuration, no Node). bench/targets.mjs writes the operations from
// strata's own plan (`strata prolog --dry-run`), one per line, fields separated by tabs:
//
//   loop FILE TARGET [FSTYPE] attach FILE to a free loop device (read-only, autoclear), mount it
//                             as FSTYPE (squashfs unless given; bench/inside.mjs also mounts erofs)
//   filefs FILE TARGET FSTYPE mount FILE itself, no loop device (erofs backed by a file, Linux 6.12+)
//   tmpfs TARGET OPTIONS      the job's upper: a tmpfs, then its u/ and w/ directories
//   overlay TARGET CWD OPTS   the job's overlay (nosuid,nodev), lowerdir relative to CWD (as strata mounts it)
//   bind SOURCE TARGET rec|one   bind (recursive or not), then make it a slave mount
//   umount TARGET             unmount one mount
//   umountr TARGET            unmount everything at or below TARGET, deepest first (umount -R)
//   mkdir PATH
//   rmdir PATH
//   file PATH                 create an empty file (the job's passwd/group/hostname, bound into the rootfs)
//   unlink PATH
//   chown PATH UID GID        (the upper's u/ belongs to the job's user, as strata makes it)
//
//   floor run OPS_FILE        carry the operations out; exit 1 on the first failure
//   floor time N PROGRAM [ARG...]   run PROGRAM N times (fork, execve with this environment,
//                             wait) and print each run's wall time in microseconds, one per line
//
// Build: cc -O2 -o floor bench/floor.c (bench/targets.mjs does it).

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int fail(const char *what, const char *path) {
  fprintf(stderr, "floor: %s %s: %s\n", what, path, strerror(errno));
  return 1;
}

static int attach_and_mount(const char *file, const char *target, const char *type) {
  int backing = open(file, O_RDONLY | O_CLOEXEC);
  if (backing < 0) return fail("open", file);
  int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) return fail("open", "/dev/loop-control");
  for (int attempt = 0; attempt < 100; attempt++) {
    int number = ioctl(control, LOOP_CTL_GET_FREE);
    if (number < 0) return fail("LOOP_CTL_GET_FREE", file);
    char device[32];
    snprintf(device, sizeof device, "/dev/loop%d", number);
    int loop = open(device, O_RDONLY | O_CLOEXEC);
    if (loop < 0) return fail("open", device);
    struct loop_config config = { .fd = (unsigned)backing, .info = { .lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR } };
    if (ioctl(loop, LOOP_CONFIGURE, &config) < 0) {
      close(loop);
      if (errno == EBUSY) continue; // another process took it between the two ioctls
      return fail("LOOP_CONFIGURE", device);
    }
    int mounted = mount(device, target, type, MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
    close(loop); // autoclear: the device goes with the last unmount
    close(backing);
    close(control);
    return mounted < 0 ? fail("mount", target) : 0;
  }
  return fail("no free loop device for", file);
}

static int unmount_tree(const char *target) {
  // Deepest first, as umount -R does; read mountinfo once.
  FILE *table = fopen("/proc/self/mountinfo", "re");
  if (!table) return fail("open", "/proc/self/mountinfo");
  char *points[4096];
  int count = 0;
  char line[8192];
  size_t length = strlen(target);
  while (count < 4096 && fgets(line, sizeof line, table)) {
    char *field = line;
    for (int i = 0; i < 4 && field; i++) field = strchr(field, ' ') ? strchr(field, ' ') + 1 : NULL;
    if (!field) continue;
    *strchr(field, ' ') = '\0';
    if (strncmp(field, target, length) == 0 && (field[length] == '\0' || field[length] == '/')) points[count++] = strdup(field);
  }
  fclose(table);
  for (int i = count - 1; i >= 0; i--) {
    if (umount2(points[i], 0) < 0 && errno != EINVAL) return fail("umount", points[i]);
    free(points[i]);
  }
  return 0;
}

static int run(const char *path) {
  FILE *ops = fopen(path, "re");
  if (!ops) return fail("open", path);
  char line[8192];
  while (fgets(line, sizeof line, ops)) {
    line[strcspn(line, "\n")] = '\0';
    char *field[5] = { 0 };
    int n = 0;
    for (char *token = strtok(line, "\t"); token && n < 5; token = strtok(NULL, "\t")) field[n++] = token;
    if (n == 0) continue;
    const char *op = field[0];
    int failed = 0;
    if (strcmp(op, "loop") == 0) {
      mkdir(field[2], 0755);
      failed = attach_and_mount(field[1], field[2], field[3] ? field[3] : "squashfs");
    } else if (strcmp(op, "filefs") == 0) {
      mkdir(field[2], 0755);
      if (mount(field[1], field[2], field[3], MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0) failed = fail("mount", field[2]);
    } else if (strcmp(op, "tmpfs") == 0) {
      mkdir(field[1], 0700);
      if (mount("strata-upper", field[1], "tmpfs", MS_NOSUID | MS_NODEV, field[2]) < 0) failed = fail("mount", field[1]);
      char dir[4200];
      snprintf(dir, sizeof dir, "%s/u", field[1]);
      mkdir(dir, 0700);
      snprintf(dir, sizeof dir, "%s/w", field[1]);
      mkdir(dir, 0700);
    } else if (strcmp(op, "overlay") == 0) {
      mkdir(field[1], 0755);
      if (chdir(field[2]) < 0) failed = fail("chdir", field[2]);
      else if (mount("overlay", field[1], "overlay", MS_NOSUID | MS_NODEV, field[3]) < 0) failed = fail("mount", field[1]);
    } else if (strcmp(op, "bind") == 0) {
      unsigned long recursive = strcmp(field[3], "rec") == 0 ? MS_REC : 0;
      struct stat info;
      // The target's missing parents (an image without /etc), as strata creates them in the upper.
      for (char *slash = strchr(field[2] + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(field[2], 0755);
        *slash = '/';
      }
      if (stat(field[1], &info) < 0) failed = fail("stat", field[1]);
      else if (S_ISDIR(info.st_mode)) mkdir(field[2], 0755);
      else close(open(field[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
      if (!failed && mount(field[1], field[2], NULL, MS_BIND | recursive, NULL) < 0) failed = fail("bind", field[2]);
      else if (!failed && mount(NULL, field[2], NULL, MS_SLAVE | recursive, NULL) < 0) failed = fail("make-slave", field[2]);
    } else if (strcmp(op, "umount") == 0) {
      if (umount2(field[1], 0) < 0) failed = fail("umount", field[1]);
    } else if (strcmp(op, "umountr") == 0) {
      failed = unmount_tree(field[1]);
    } else if (strcmp(op, "mkdir") == 0) {
      if (mkdir(field[1], 0711) < 0 && errno != EEXIST) failed = fail("mkdir", field[1]);
    } else if (strcmp(op, "rmdir") == 0) {
      if (rmdir(field[1]) < 0 && errno != ENOENT) failed = fail("rmdir", field[1]);
    } else if (strcmp(op, "file") == 0) {
      int fd = open(field[1], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) failed = fail("create", field[1]);
      else close(fd);
    } else if (strcmp(op, "chown") == 0) {
      if (chown(field[1], (uid_t)atol(field[2]), (gid_t)atol(field[3])) < 0) failed = fail("chown", field[1]);
    } else if (strcmp(op, "unlink") == 0) {
      if (unlink(field[1]) < 0 && errno != ENOENT) failed = fail("unlink", field[1]);
    } else {
      fprintf(stderr, "floor: unknown operation %s\n", op);
      failed = 1;
    }
    if (failed) {
      fclose(ops);
      return 1;
    }
  }
  fclose(ops);
  return 0;
}

static int time_runs(int count, char **argv) {
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int i = 0; i < count; i++) {
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t child = fork();
    if (child == 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
      execve(argv[0], argv, environ);
      _exit(127);
    }
    int status;
    if (child < 0 || waitpid(child, &status, 0) < 0) return fail("run", argv[0]);
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "floor: %s exited with status %d\n", argv[0], status);
      return 1;
    }
    printf("%ld\n", (end.tv_sec - start.tv_sec) * 1000000L + (end.tv_nsec - start.tv_nsec) / 1000);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "run") == 0) return run(argv[2]);
  if (argc >= 4 && strcmp(argv[1], "time") == 0) return time_runs(atoi(argv[2]), argv + 3);
  fprintf(stderr, "usage: floor run OPS_FILE | floor time N PROGRAM [ARG...]\n");
  return 2;
}
