/*
** luaspy offcpu: where a process's threads wait, as a flame graph of
** off-CPU microseconds by state, Lua, native and kernel stack; and who
** waits for and holds its mmap_lock.
*/
#ifndef LUASPY_OFFCPU_H
#define LUASPY_OFFCPU_H

#include <stdint.h>
#include <sys/types.h>

struct offcpu_opts {
  pid_t pid;
  double duration; /* seconds; 0: until Ctrl-C or the target exits */
  uint64_t min_us; /* shorter waits are left out */
  int wakers;      /* put who woke each wait above it */
  const char *output, *format;
  volatile int *stop;
};

/* Records, writes the output and prints a summary. Returns the exit
 * status. */
int offcpu_run(const struct offcpu_opts *o);

#endif
