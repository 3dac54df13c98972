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

/* What the VM of a sample was doing (its g->vmstate), in classes. */
enum rec_vmclass {
  REC_VM_INTERP,   /* interpreting Lua */
  REC_VM_JIT,      /* running a compiled trace */
  REC_VM_C,        /* in a C function Lua called */
  REC_VM_GC,       /* collecting garbage */
  REC_VM_COMPILER, /* recording, optimizing, assembling or exiting a trace */
  REC_VM_UNKNOWN,  /* the state could not be read */
  REC_VM_N
};

struct rec_stats {
  uint64_t received; /* samples that reached user space */
  uint64_t lost;     /* ... that did not (ring full) */
  uint64_t uncached; /* ... sent as a stack key user space no longer had */
  uint64_t complete; /* whole stacks */
  uint64_t partial[LS_PARTIAL_LOOP + 1]; /* by reason (index 0 unused) */
  uint64_t no_vm, idle, no_frames;
  uint64_t vm[REC_VM_N]; /* samples of a VM running Lua, by its state */
};

/* Share of samples whose stack is known: whole stacks and idle VMs. */
double stats_unwound(const struct rec_stats *st);
/* Counts in st what came of sample s (st->received aside). */
void stats_tally(struct rec_stats *st, const struct ls_sample *s);

enum rec_vmclass stats_vmclass(int32_t vmstate);
/* "interp", "JIT", "C", "GC", "compiler", "unknown". */
const char *stats_vmclass_name(enum rec_vmclass c);

/* The table of top functions, at most top rows. */
void summary_print(FILE *f, const struct profile *p, const struct rec_stats *st,
                   int top);

#endif
