/*
** luaspy record: sample the Lua stacks of running processes with eBPF and
** write a flame graph or folded stacks.
*/
#ifndef LUASPY_RECORD_H
#define LUASPY_RECORD_H

#include <sys/types.h>

struct record_opts {
  const pid_t *pids; /* the processes to profile */
  int npids;
  char *const *argv; /* or a command to start and profile; NULL if none */
  int children;      /* their descendants too */
  int hz;            /* samples per second and CPU */
  double duration;   /* seconds; 0: until Ctrl-C or the targets exit */
  int line_mode;     /* frames show the current line, not the definition's */
  int native;        /* native frames too, unwound from a user stack copy */
  const char *output;
  const char *format; /* NULL: by output's extension */
  volatile int *stop; /* set by the signal handler */
};

/* Profiles until done and writes the output. Returns the exit status. */
int record_run(const struct record_opts *o);

#endif
