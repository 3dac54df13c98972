/*
** What offcpu and syscalls share around their BPF programs: handing the
** target's VMs to the Lua walker, and the loop that hands events from the
** ring buffer to the command until the duration ends, Ctrl-C, or the
** target exits.
*/
#ifndef LUASPY_TSESSION_H
#define LUASPY_TSESSION_H

#include <stddef.h>
#include <stdint.h>

#include "../bpf/trace.h"
#include "stacks.h"

typedef void (*tevent_fn)(const struct ls_event *ev, size_t size, void *arg);

struct tsession {
  struct ttarget tt;
  int procs_fd, vms_fd;     /* the Lua walker's maps (luawalk.bpf.h) */
  int events_fd, counts_fd; /* ring buffer, enum ls_tcounter counters */
  double duration;          /* seconds; 0: until Ctrl-C or exit */
  double due;               /* internal: when to stop reading events */
  uint64_t handled;         /* internal: events handled */
  volatile int *stop;
  tevent_fn fn;
  void *arg;
};

/* Hands the target's VMs to the programs, then runs until done. Returns
 * 0, or 1 after an error line. */
int tsession_run(struct tsession *s, const char *cmd);
/* Is this record from the ring buffer (size bytes) a whole event? */
int tevent_ok(const void *data, size_t size);
/* Totals of the per-CPU counters. */
void tsession_counts(const struct tsession *s, uint64_t c[LS_NTCOUNTERS]);
/* The same, from the counters' map fd. */
void tcounts(int counts_fd, uint64_t c[LS_NTCOUNTERS]);

#endif
