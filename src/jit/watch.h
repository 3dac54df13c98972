/*
** Watching the JIT compilers of one process over a window: each look
** (about 100 per second) is compared with the previous one to see traces
** compiled and freed, aborts (penalty slots that change), flushes and
** machine-code growth; g->vmstate is sampled in between (about 1000 per
** second) to see which trace runs. Read-only.
*/
#ifndef LUASPY_WATCH_H
#define LUASPY_WATCH_H

#include <stdint.h>

#include "jitstate.h"
#include "locs.h"

/* A compiled trace as seen alive. */
struct jit_trace {
  uint64_t T;
  struct jit_trace_hdr h;
  double born, died; /* seconds from the start; died < 0: still alive */
  int before;        /* alive at the first look */
  int late;          /* a new start location, compiled after warm-up */
  int loc;
  uint64_t samples; /* vmstate == its number while it was alive */
};

/* Aborts of root traces starting at one bytecode, from the penalty cache. */
struct jit_abort {
  uint64_t pc;
  uint16_t reason, val;
  uint32_t count; /* seen during the window */
  int before;     /* in the cache at the first look */
  int blacklisted;
  int loc;
  double first, last;
  char detail[LJ_NAME_MAX + 48]; /* from J->errinfo: bytecode or builtin */
};

enum jit_flush_cause {
  JIT_FLUSH_UNKNOWN, /* jit.flush(), or an mcode allocation failure */
  JIT_FLUSH_MCODE,   /* maxmcode reached */
  JIT_FLUSH_TRACES,  /* maxtrace reached */
};

struct jit_flush {
  double t;
  enum jit_flush_cause cause;
  uint32_t traces; /* alive just before */
  uint64_t mcode;  /* szallmcarea just before */
};

/* vmstate sample buckets */
enum {
  JIT_VS_INTERP,
  JIT_VS_C,
  JIT_VS_GC,
  JIT_VS_EXIT,
  JIT_VS_RECORD,
  JIT_VS_OPT,
  JIT_VS_ASM,
  JIT_VS_TRACE,
  JIT_VS_OTHER,
  JIT_VS_N
};

struct jit_vmwatch {
  int idx; /* in target->vms */
  const struct lj_vm *vm;
  struct jit_state cur, prev;
  int32_t *slot; /* traceno -> index in traces, or -1 */
  uint32_t nslot;
  struct jit_trace *traces;
  size_t ntraces, captraces;
  struct jit_abort *aborts;
  size_t naborts, capaborts;
  struct jit_flush *flushes;
  size_t nflushes, capflushes;
  uint64_t vs[JIT_VS_N]; /* vmstate samples by bucket */
  uint64_t nsamples;
  uint32_t areas;         /* mcode areas, counted by jit_watch_finish */
  double dispatch_off_at; /* when DISPMODE_JIT went away, -1: never */
  uint32_t traces_at_off; /* compiled after that */
  int failed;             /* a look failed: the VM went away */
};

struct jit_watch {
  pid_t pid;
  const struct lj_target *t;
  struct jit_locs locs;
  struct jit_vmwatch *vms;
  size_t nvms;
  double warmup_at; /* seconds from the start; may be negative */
  double age0;      /* process age at the start, -1: unknown */
  double now;       /* seconds from the start, of the last look */
  uint64_t looks;
};

int jit_watch_init(struct jit_watch *w, pid_t pid, const struct lj_target *t,
                   double warmup_at);
void jit_watch_free(struct jit_watch *w);
/* One look at every VM, at time now (seconds from the start). */
void jit_watch_look(struct jit_watch *w, double now);
/* Counts what is too costly to follow at every look (mcode areas). */
void jit_watch_finish(struct jit_watch *w);
/* One vmstate sample of every VM. */
void jit_watch_sample(struct jit_watch *w);

#endif
