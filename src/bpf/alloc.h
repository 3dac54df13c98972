/*
** What the allocation probes (alloc.bpf.c) and src/alloc/ share: the
** allocator table, the event of one allocation and the counters.
** Fixed-size integers only, so both sides agree byte for byte.
*/
#ifndef LUASPY_BPF_ALLOC_H
#define LUASPY_BPF_ALLOC_H

#include "sample.h"

/* allocators: which VM a lua_Alloc call is for, by its ud argument
 * (G->allocd: LuaJIT's own allocator keeps one arena per VM). */
struct ls_allockey {
  __u32 pid;
  __u32 pad;
  __u64 ud;
};

/* One lua_Alloc call. */
struct ls_alloccall {
  __u64 ts;    /* ns, CLOCK_MONOTONIC, at the call */
  __u64 ud;    /* the allocator's ud: which VM */
  __u64 ptr;   /* the block reallocated, 0 for a new one */
  __u64 osize; /* its size (lua_Alloc's osize) */
  __u64 nsize; /* bytes asked for */
};

/* One allocator call: an allocation (nsize > 0) and the Lua stack that
 * made it, or (leaks) a free (nsize 0) and no frames. */
struct ls_allocev {
  struct ls_alloccall call;
  __u64 ret;            /* the block returned; 0 unless returns are probed */
  struct ls_sample lua; /* last: only its nframes frames are sent */
};

/* counters: per-CPU array indices. */
enum ls_acounter {
  LS_AC_CALLS,  /* allocator calls while the probes were on */
  LS_AC_ALLOCS, /* ... that allocated (nsize > 0) */
  LS_AC_BYTES,  /* ... their nsize */
  LS_AC_EVENTS, /* events sent */
  LS_AC_LOST,   /* events that did not fit in the ring buffer */
  LS_AC_NOCALL, /* returns whose call was not seen (probes attached
                 * while the thread was in the allocator) */
  LS_NACOUNTERS
};

#endif
