/*
** mmap, munmap and mprotect calls of the target over the window, from
** the syscall tracepoints (src/bpf/jit_mm.bpf.c), sorted into what
** LuaJIT's machine-code allocator does and everything else; and the
** Lua+native backtraces of a sample of them, named as `luaspy syscalls`
** names them (src/trace/).
*/
#ifndef LUASPY_MMWATCH_H
#define LUASPY_MMWATCH_H

#include <stdint.h>

#include "../trace/backtraces.h"
#include "mm_event.h"
#include "watch.h"

#define JIT_MM_SIZES 16   /* distinct mmap lengths kept */
#define JIT_MM_WHERE 64   /* distinct traces being compiled kept */
#define JIT_MM_BUCKET 0.1 /* seconds per timeline bucket */

struct jit_mm_size {
  uint64_t len, n;
};

/* mmaps made while a VM compiled the trace starting at loc. */
struct jit_mm_where {
  int vm, loc;
  uint64_t startpt, startpc;
  uint64_t n;
};

struct jit_mm_stats {
  uint64_t n[4]; /* by enum jit_mm_kind */
  uint64_t mapped_bytes;
  struct jit_mm_size sizes[JIT_MM_SIZES];
  uint64_t other_sizes;         /* mmaps of lengths beyond the first 16 */
  uint64_t mcode_mmaps;         /* made while assembling (vmstate ASM) */
  uint64_t failed_placements;   /* mmap(hint) elsewhere, unmapped again */
  uint64_t mmap_errors;         /* mmap returned -errno */
  uint64_t compiling_mprotects; /* mprotect while a VM compiled */
  struct jit_mm_where where[JIT_MM_WHERE];
  uint64_t dropped;
  int marked;             /* jit_mm_mark was called */
  uint64_t after_mark[4]; /* by kind, calls after jit_mm_mark's time */
  struct btable bts;      /* sampled backtraces, class: enum jit_mm_kind */
  uint64_t stacked[4];    /* calls with a backtrace, by kind */
  uint64_t stacks_lost;
  /* per bucket of JIT_MM_BUCKET s: mmap and mprotect counts */
  uint32_t *mmaps, *mprotects;
  size_t nbuckets;
};

struct jit_mmwatch;

/* Starts tracing the calls of w's process for about `seconds`. NULL with
 * a one-line reason (an error line on stderr when the process cannot be
 * read for stacks). */
struct jit_mmwatch *jit_mm_open(struct jit_watch *w, double seconds, char *why,
                                size_t len);
/* The CLOCK_MONOTONIC time (ns) the buckets count from. */
void jit_mm_start(struct jit_mmwatch *m, uint64_t t0_ns);
/* Also counts the calls made after CLOCK_MONOTONIC time ns (e.g. after a
 * write into the target), in after_mark. */
void jit_mm_mark(struct jit_mmwatch *m, uint64_t ns);
/* Consumes the pending events. */
void jit_mm_poll(struct jit_mmwatch *m);
const struct jit_mm_stats *jit_mm_stats(const struct jit_mmwatch *m);
void jit_mm_close(struct jit_mmwatch *m);

#endif
