/*
** luaspy record: sample the Lua stacks of running processes with eBPF and
** write a flame graph or folded stacks.
*/
#ifndef LUASPY_RECORD_H
#define LUASPY_RECORD_H

#include <sys/types.h>

#include "../output/profile.h"
#include "push.h"

struct rec_stats;

struct record_opts {
  const pid_t *pids; /* the processes to profile */
  int npids;
  char *const *argv;  /* or a command to start and profile; NULL if none */
  int children;       /* their descendants too */
  int hz;             /* samples per second and CPU */
  double duration;    /* seconds; 0: until Ctrl-C or the targets exit */
  int line_mode;      /* frames show the current line, not the definition's */
  int native;         /* native frames too, unwound from a user stack copy */
  const char *output; /* NULL: none (with push) */
  const char *format; /* NULL: by output's extension */
  int timeline;       /* --timeline: output is a timeline, not a profile */
  volatile int *stop; /* set by the signal handler */
  /* luaspy top: stacks go to on_stack instead of a profile, nothing is
   * written at the end, and on_tick runs after every wait for samples
   * (at least every 100 ms) with the counts so far. */
  profile_stack_fn on_stack;
  void (*on_tick)(const struct rec_stats *st, void *arg);
  void *arg;
  const struct push_opts *push; /* stream to a Pyroscope server; or NULL */
};

/* Profiles until done and writes the output. Returns the exit status. */
int record_run(const struct record_opts *o);

#endif
