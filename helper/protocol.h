/*
 * The helper's replies (see strata-mount.c for the protocol): exactly one per request. They are
 * buffered and leave together once the requests read so far are done; a request that may block
 * (or forks) calls flush_replies() first.
 */
#ifndef STRATA_PROTOCOL_H
#define STRATA_PROTOCOL_H

#include <stddef.h>

void reply_ok(const char *value);
void flush_replies(void);
/* ok with BYTES as hex: one line, whatever the bytes are. */
void reply_ok_hex(const char *bytes, size_t length);
void reply_err(int err, const char *what);
/* An error with the stage it happened at (untrusted.h), so the caller can tell whose fault it is. */
void reply_stage_err(int err, int stage, const char *what);
const char *opt(const char *field);
/* Back to the directory the helper started in, after a request that chdir'd for a relative path. */
void go_home(void);
/*
 * job-mounts.c: give the detached mount TREE (an open_tree clone) the attributes ATTR (with
 * AT_FLAGS, e.g. AT_RECURSIVE), attach it onto the directory descriptor TARGET and reply with the
 * new mount's id, or with the failed stage.
 */
struct mount_attr;
void attach_and_reply(int tree, unsigned at_flags, struct mount_attr *attr, int target, const char *what);

int do_bind(char **fields);
int do_umount_verified(char **fields);
int do_readonly(char **fields);
/* device-ops.c: CDI device edits inside a rootfs. */
int do_symlink(char **fields);
int do_chmod(char **fields);
int do_devnode(char **fields);
int do_readfile(char **fields);
/* remap.c: --container-remap-root's idmapped mounts and apt setting. */
int do_idmap(char **fields);
int do_putfile(char **fields);
/* identity.c: the job user's passwd and group entries from the node's name service. */
int do_identity_start(char **fields);
int do_identity_wait(char **fields);
/* Kill and reap a lookup that was started and not collected (nothing to reply). */
void identity_drop(void);

#endif
