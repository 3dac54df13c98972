/*
** luaspy alloc and leaks: GC memory allocated by Lua backtrace, and what
** of it is still alive at the end.
**
** Both sample allocations the same way: probes on the VM's allocator,
** attached for short windows within an overhead budget (window.h); every
** allocation in a window is taken with its Lua stack. alloc adds them up
** by bytes (or count). leaks also takes the block each allocation
** returned (and the frees in windows) and, at the end, walks the heap from
** its roots (src/heap/): a sampled block that is still reachable, holding
** the object it was allocated for, unchanged, is alive (ident.h); a few
** are then watched for a while (hwwatch.h). Nothing traps on free outside
** the windows.
*/
#ifndef LUASPY_ALLOC_H
#define LUASPY_ALLOC_H

#include <sys/types.h>

struct alloc_opts {
  pid_t pid;
  int leaks;         /* leaks: else alloc */
  double duration;   /* seconds; 0: until Ctrl-C or the target exits */
  double window_ms;  /* probe window length */
  double budget_pct; /* share of the target's time the probes may cost */
  double grace;      /* leaks: seconds without windows before the walk */
  double confirm;    /* leaks: seconds of watching suspects, 0: none */
  int line_mode;     /* frames show the current line */
  int count;         /* alloc: weigh by allocations, not bytes */
  int json;          /* leaks: JSON report */
  int top;           /* leaks: sites listed */
  const char *output;
  const char *format; /* NULL: by output's extension */
  volatile int *stop; /* set by the signal handler */
};

/* Runs until done and writes the outputs. Returns the exit status. */
int alloc_run(const struct alloc_opts *o);

#endif
