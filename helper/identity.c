/*
 * The job user's identity as the node's name service sees it (NSS: files, LDAP, SSSD, ... as
 * nsswitch.conf says), for the passwd and group files strata writes per job
 * (src/runtime/job/identity.ts). Looked up here, in the executor the prolog already talks to,
 * rather than by starting getent three times per job (each start ~5-10 ms from Node, more than the
 * whole job's mounts).
 *
 * The lookups run in a forked child: started at the beginning of a prolog, they overlap the job's
 * mounts (NSS loads its modules and asks its services: ~4 ms even with plain files here), and
 * collected with a time limit when the files are written. An unreachable directory server costs
 * the job its name (as getent's time limit did), never hangs the executor or its later requests,
 * and whatever NSS modules keep (sockets, caches, threads) never stays in the long-lived executor.
 *
 *   identity-start UID GID      fork the lookup (one at a time: a pending one is dropped); reply ok
 *   identity-wait TIMEOUT_MS    its answer, at most TIMEOUT_MS after it started:
 * ok TAB <hex of text>: first line the user's passwd entry (empty when the node does not know the
 * uid), then one line per group the node knows: the primary group, then the others getgrouplist(3)
 * gives (what initgroups(3), and so Slurm, gives the job's processes); each line as getent prints
 * it; last, "@groups GID,GID,...": that whole list (only GID for a uid the node does not know), which
 * bind sources are then opened with, so that each bind needs no lookup of its own (untrusted.c).
 * err ETIMEDOUT when the name service did not answer in time, EINVAL when none was started.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"

/* Group lines can be long (every member is listed); the whole answer is capped. */
#define IDENTITY_LIMIT (4 * 1024 * 1024)

static void print_group(FILE *out, const struct group *group) {
  fprintf(out, "%s:%s:%u:", group->gr_name, group->gr_passwd ? group->gr_passwd : "", (unsigned)group->gr_gid);
  for (char **member = group->gr_mem; member && *member; member++) fprintf(out, "%s%s", member == group->gr_mem ? "" : ",", *member);
  fputc('\n', out);
}

/* The child: single-threaded after fork, so the plain (non-reentrant) NSS calls are safe. */
static void look_up(uid_t uid, gid_t gid) {
  const struct passwd *user = getpwuid(uid);
  char *name = NULL;
  if (user) {
    name = strdup(user->pw_name);
    printf("%s:%s:%u:%u:%s:%s:%s\n", user->pw_name, user->pw_passwd ? user->pw_passwd : "", (unsigned)user->pw_uid, (unsigned)user->pw_gid, user->pw_gecos ? user->pw_gecos : "", user->pw_dir ? user->pw_dir : "", user->pw_shell ? user->pw_shell : "");
  } else {
    printf("\n");
  }
  const struct group *primary = getgrgid(gid);
  if (primary) print_group(stdout, primary);
  if (name) {
    int count = 64;
    gid_t *groups = NULL;
    for (;;) {
      gid_t *grown = realloc(groups, (size_t)count * sizeof *groups);
      if (!grown) _exit(1);
      groups = grown;
      int had = count;
      if (getgrouplist(name, gid, groups, &count) >= 0) break;
      if (count <= had) count = had * 2;
    }
    for (int i = 0; i < count; i++) {
      int seen = groups[i] == gid;
      for (int j = 0; j < i && !seen; j++) seen = groups[j] == groups[i];
      if (seen) continue;
      const struct group *group = getgrgid(groups[i]);
      if (group) print_group(stdout, group);
    }
    /* The whole list, named or not: what the bind sources are opened with (untrusted.c). */
    printf("@groups ");
    for (int i = 0; i < count; i++) printf("%s%u", i ? "," : "", (unsigned)groups[i]);
    printf("\n");
  } else {
    printf("@groups %u\n", (unsigned)gid);
  }
  fflush(stdout);
  _exit(ferror(stdout) ? 1 : 0);
}

static double elapsed_ms(const struct timespec *since) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - since->tv_sec) * 1e3 + (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

/* The lookup in flight: its child, the read end of its answer, when it started. */
static pid_t pending_child = -1;
static int pending_fd = -1;
static struct timespec pending_since;

void identity_drop(void) {
  if (pending_child < 0) return;
  close(pending_fd);
  kill(pending_child, SIGKILL);
  while (waitpid(pending_child, NULL, 0) < 0 && errno == EINTR) {}
  pending_child = -1;
  pending_fd = -1;
}

int do_identity_start(char **f) {
  uid_t uid = (uid_t)strtoul(f[1], NULL, 10);
  gid_t gid = (gid_t)strtoul(f[2], NULL, 10);
  identity_drop();
  int channel[2];
  if (pipe2(channel, O_CLOEXEC) != 0) {
    reply_err(errno, "identity pipe");
    return 0;
  }
  /* The child must not inherit replies still buffered: it would write them into its answer. */
  flush_replies();
  pid_t child = fork();
  if (child < 0) {
    reply_err(errno, "identity fork");
    close(channel[0]);
    close(channel[1]);
    return 0;
  }
  if (child == 0) {
    /* Only the answer pipe is left open: not our requests, replies, nor a node lock we hold. */
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(channel[1], STDOUT_FILENO) < 0) _exit(1);
    close_range(3, ~0U, 0);
    look_up(uid, gid);
  }
  close(channel[1]);
  pending_child = child;
  pending_fd = channel[0];
  clock_gettime(CLOCK_MONOTONIC, &pending_since);
  reply_ok(NULL);
  return 0;
}

int do_identity_wait(char **f) {
  flush_replies();
  long timeout = strtol(f[1], NULL, 10);
  if (pending_child < 0) {
    reply_err(EINVAL, "identity-wait without identity-start");
    return 0;
  }
  char *text = malloc(IDENTITY_LIMIT);
  size_t used = 0;
  int err = text ? 0 : ENOMEM;
  while (!err) {
    double left = (double)timeout - elapsed_ms(&pending_since);
    struct pollfd answer = { .fd = pending_fd, .events = POLLIN };
    int ready = left > 0 ? poll(&answer, 1, (int)left + 1) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      err = ready == 0 ? ETIMEDOUT : errno;
      break;
    }
    ssize_t got = read(pending_fd, text + used, IDENTITY_LIMIT - used);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) err = errno;
    else if (got == 0) break;
    else if ((used += (size_t)got) == IDENTITY_LIMIT) err = EFBIG;
  }
  pid_t child = pending_child;
  close(pending_fd);
  pending_child = -1;
  pending_fd = -1;
  if (err) kill(child, SIGKILL);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
  if (!err && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) err = EIO;
  if (err) reply_err(err, "name service lookup");
  else reply_ok_hex(text, used);
  free(text);
  return 0;
}
