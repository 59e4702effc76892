/* Loop devices for layer files (loops.c). */
#ifndef STRATA_LOOPS_H
#define STRATA_LOOPS_H

/*
 * The number of a loop device already bound read-only to FILE (its canonical path), or -1.
 * LOCKED: this executor holds the node lock, so the answer may come from what it read of sysfs
 * earlier in the same hold (a hit is checked again).
 */
int find_bound_loop(const char *file, int locked);
/* Bind the open file to a free loop device (read-only, autoclear); an open fd of the device. */
int attach_loop(int file_fd, const char *file, int direct_io, int *number);
/* A device this executor bound FILE to (and mounted) while holding the lock. */
void remember_bound_loop(int number, const char *file);
/* The node lock was taken or dropped: what was read of sysfs no longer holds. */
void forget_bound_loops(void);

#endif
