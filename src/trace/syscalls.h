/*
** luaspy syscalls: the system calls of a process, counted and timed per
** syscall and per Lua+native backtrace, with size histograms for the
** memory-mapping calls and every process it starts (fork, clone, vfork,
** exec) with the stack that started it.
*/
#ifndef LUASPY_SYSCALLS_H
#define LUASPY_SYSCALLS_H

#include <sys/types.h>

#define SYSCALLS_MAX_FILTER 64

struct syscalls_opts {
  pid_t pid;
  double duration; /* seconds; 0: until Ctrl-C or the target exits */
  long filter[SYSCALLS_MAX_FILTER]; /* syscall numbers; nfilter 0: all */
  int nfilter;
  int json;
  const char *output, *format; /* a flame graph of time in syscalls */
  volatile int *stop;
};

int syscalls_run(const struct syscalls_opts *o);

#endif
