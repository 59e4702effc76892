/*
 * A hostile user's racer for the race tests: swaps two paths with renameat2(RENAME_EXCHANGE) as
 * fast as it can (typically a directory and a symlink to somewhere root must never touch), until
 * the given number of milliseconds has passed. Prints how many swaps it made.
 *   racer PATH_A PATH_B MILLISECONDS
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  double until = now_ms() + atof(argv[3]);
  unsigned long swaps = 0;
  while (now_ms() < until) {
    for (int i = 0; i < 64; i++)
      if (renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) == 0) swaps++;
  }
  printf("%lu\n", swaps);
  return 0;
}
