/*
** What `luaspy record` prints when it is done: how many samples could be
** unwound (and why not the others), and the functions that took the most
** time, by self and total share.
*/
#ifndef LUASPY_SUMMARY_H
#define LUASPY_SUMMARY_H

#include <stdint.h>
#include <stdio.h>

#include "../bpf/sample.h"
#include "../output/profile.h"

struct rec_stats {
  uint64_t received; /* samples that reached user space */
  uint64_t lost;     /* ... that did not (ring full) */
  uint64_t uncached; /* ... sent as a stack key user space no longer had */
  uint64_t complete; /* whole stacks */
  uint64_t partial[LS_PARTIAL_LOOP + 1]; /* by reason (index 0 unused) */
  uint64_t no_vm, idle, no_frames;
};

/* Share of samples whose stack is known: whole stacks and idle VMs. */
double stats_unwound(const struct rec_stats *st);

/* The table of top functions, at most top rows. */
void summary_print(FILE *f, const struct profile *p, const struct rec_stats *st,
                   int top);

#endif
