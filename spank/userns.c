/*
 * --container-remap-root: the task runs as uid 0 and gid 0 in a user namespace whose 0 is the job's
 * user and group on the host, so whatever it writes outside the image (home, binds, the job's
 * directory) belongs to the user there. Pyxis gets this from enroot; here:
 *
 *   slurm_spank_task_init_privileged (root): remap_prepare forks a small root helper, connected
 *     to the task by a socket pair, and does not enter the container yet (a chrooted process may
 *     not create a user namespace).
 *   slurm_spank_task_init (the user, after Slurm dropped privileges): remap_enter creates the user
 *     namespace with unshare(2) and asks the helper to write its uid_map and gid_map. The task
 *     cannot write them itself: having changed its uid, it is not dumpable, so its /proc files
 *     belong to root. The helper writes only "0 <job uid> 1", "0 <job gid> 1" and setgroups
 *     "deny" (so the namespace's root cannot drop the user's groups to get past a group-denied
 *     file), for its parent only, once, and exits. The task then enters the container as the
 *     namespace's root (chroot needs CAP_SYS_CHROOT, which it has there) and runs its command.
 *
 * The namespace gives no power on the host: every host file it could not touch as the user it
 * still cannot. The image's files are root's inside because the prolog stacked a remap-root job's
 * layers through idmapped mounts that give them to the user (helper/remap.c); in a job without
 * that, a step's remap sees them as nobody (65534).
 */

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "strata.h"

/* Writes `text` to /proc/<pid>/<name>; 0 or an errno. */
static int write_proc(pid_t pid, const char *name, const char *text)
{
	char path[64];
	int fd, err = 0;
	size_t len = strlen(text);

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (write(fd, text, len) != (ssize_t)len)
		err = errno ? errno : EIO;
	close(fd);
	return err;
}

/* The helper: wait for the task's word, map its new namespace, answer with 0 or an errno. */
static void helper(int sock, pid_t task_pid, uid_t uid, gid_t gid)
{
	char go, map[64];
	unsigned char answer;
	int err;

	if (read(sock, &go, 1) != 1) /* the task went on without asking (or is gone): nothing to do */
		_exit(0);
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
	err = write_proc(task_pid, "uid_map", map);
	if (err == 0)
		err = write_proc(task_pid, "setgroups", "deny");
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
	if (err == 0)
		err = write_proc(task_pid, "gid_map", map);
	answer = (unsigned char)(err > 255 ? EIO : err);
	(void)!write(sock, &answer, 1);
	_exit(0);
}

int remap_prepare(struct remap *r, uid_t uid, gid_t gid)
{
	int sv[2];
	pid_t task_pid = getpid();

	r->helper = -1;
	r->sock = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	r->helper = fork();
	if (r->helper < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (r->helper == 0) {
		close(sv[0]);
		helper(sv[1], task_pid, uid, gid);
	}
	close(sv[1]);
	r->sock = sv[0];
	return 0;
}

/* Why this node's kernel refuses unprivileged user namespaces, if a setting says so; NULL if none does. */
static const char *userns_disabled(void)
{
	static const struct { const char *file, *off, *why; } settings[] = {
		{ "/proc/sys/kernel/unprivileged_userns_clone", "0", "unprivileged user namespaces are disabled on this node (kernel.unprivileged_userns_clone = 0)" },
		{ "/proc/sys/user/max_user_namespaces", "0", "user namespaces are disabled on this node (user.max_user_namespaces = 0)" },
		{ "/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1", "AppArmor restricts unprivileged user namespaces on this node (kernel.apparmor_restrict_unprivileged_userns = 1)" },
	};

	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		char value[32] = "";
		int fd = open(settings[i].file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, value, sizeof(value) - 1);
		close(fd);
		if (n > 0 && (size_t)n == strlen(settings[i].off) + 1 && !strncmp(value, settings[i].off, strlen(settings[i].off)))
			return settings[i].why;
	}
	return NULL;
}

int remap_enter(struct remap *r, char *why, size_t len)
{
	const char *disabled = userns_disabled();
	unsigned char answer = EIO;
	char go = 1;
	int rc = -1;

	if (disabled) {
		snprintf(why, len, "--container-remap-root: %s; ask your admin, or drop the option", disabled);
		goto out;
	}
	if (unshare(CLONE_NEWUSER) < 0) {
		snprintf(why, len, "--container-remap-root: cannot create a user namespace on this node: %s; ask your admin, or drop the option",
			 strerror(errno));
		goto out;
	}
	if (write(r->sock, &go, 1) != 1 || read(r->sock, &answer, 1) != 1 || answer != 0) {
		snprintf(why, len, "--container-remap-root: cannot map root to you in the user namespace: %s", strerror(answer));
		goto out;
	}
	rc = 0;
out:
	close(r->sock); /* a helper still waiting reads end-of-file and exits */
	r->sock = -1;
	while (r->helper > 0 && waitpid(r->helper, NULL, 0) < 0 && errno == EINTR)
		;
	r->helper = -1;
	return rc;
}
