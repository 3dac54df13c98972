/*
** Verdicts: plain-words conclusions from a watch, each backed by its
** numbers and naming Lua locations. Scripts depend on the kinds.
*/
#ifndef LUASPY_VERDICT_H
#define LUASPY_VERDICT_H

#include "mmwatch.h"
#include "watch.h"

enum jit_verdict_kind {
  JIT_V_MCODE_STORM,   /* machine code cannot be placed: mmap storm */
  JIT_V_FLUSH_LOOP,    /* everything flushed and recompiled, repeatedly */
  JIT_V_LATE_COMPILES, /* new code compiled after warm-up */
  JIT_V_ABORT_STORM,   /* many trace aborts */
  JIT_V_BLACKLISTED,   /* code LuaJIT gave up compiling */
};

#define JIT_VERDICT_LOCS 8

struct jit_verdict {
  enum jit_verdict_kind kind;
  char text[2048];
  int nlocs;
  int locs[JIT_VERDICT_LOCS]; /* jit_locs indices, most important first */
};

/* Thresholds, also in `luaspy jit --help`. */
#define JIT_STORM_FAILED 10      /* misplaced or failed mcode mmaps */
#define JIT_MCODE_TRIES 32       /* mmaps per mcode area allocation */
#define JIT_FLUSH_LOOP_MIN 2     /* flushes in the window */
#define JIT_ABORT_STORM_MIN 10   /* aborts in the window ... */
#define JIT_ABORT_STORM_RATE 1.0 /* ... and per second */

const char *jit_verdict_name(enum jit_verdict_kind k);
/* Fills v (room for max) and returns the count. mm may be NULL. */
int jit_verdicts(const struct jit_watch *w, const struct jit_mm_stats *mm,
                 double seconds, struct jit_verdict *v, int max);

#endif
