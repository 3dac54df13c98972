/*
** The allocations leaks sampled, and which of them are still alive: a
** sampled block is alive at the end when the heap walk from the roots
** reaches it, as an object or as the array or hash part of a table, and
** a second walk reaches it again holding the same object. Garbage not yet
** collected is therefore not alive, and nothing had to trap on free
** outside the windows (frees inside them are used too).
*/
#ifndef LUASPY_LEAKS_H
#define LUASPY_LEAKS_H

#include <stdint.h>
#include <stdio.h>

#include "../trace/stacks.h"

struct leakset;

/* What the report says about the sampling (alloc_run knows it). */
struct leakrun {
  pid_t pid;
  double seconds, probed_s; /* the run, and the probes attached */
  unsigned windows;
  uint64_t lost;
  uint64_t gc_before, gc_after; /* g->gc.total of all VMs */
  uint64_t skipped;             /* heap objects that failed validation */
  const char *incomplete;       /* why a heap walk stopped early */
  const char *alloc_path;       /* the allocator probed: its object, */
  uint64_t alloc_offset;        /* and offset in that file */
  int top;
};

struct leakset *leaks_new(void);
void leaks_free(struct leakset *ls);

/* A sampled allocation of bytes at block, by VM vm (index in the
 * target), at ts (ns), made by the stack frames[0..n) (root first).
 * Returns 0, or -1 when out of memory. */
int leaks_add(struct leakset *ls, int vm, uint64_t block, uint64_t bytes,
              uint64_t ts, const struct tframe *frames, size_t n);

/* A free of block (or a realloc that moved it) seen while the probes
 * were on: its latest sample is not alive. */
void leaks_freed(struct leakset *ls, uint64_t block);

/* Reads the birth marks (ident.h) of the samples added since the last
 * call and taken since since_ns, the window's start: as the window
 * closes, before its probes go. Samples of an earlier window that came
 * late go without one and are not judged (their blocks may have been
 * freed unseen). Returns 0, or -1 after a message. */
int leaks_births(struct leakset *ls, const struct ttarget *tt,
                 uint64_t since_ns);

/* Walks the heaps of tt's VMs twice, recheck_s apart, and marks the
 * samples both walks find alive, holding the same object; r gets what the
 * walks skipped. Returns
 * 0, or -1 after a message. */
int leaks_judge(struct leakset *ls, struct ttarget *tt, uint64_t now_ns,
                double recheck_s, struct leakrun *r);

/* Watches the type byte of some alive samples of every site above the
 * noise floor, for seconds in all (hwwatch.h): a sample written there is
 * not alive, and a site none of whose watched samples stayed intact is
 * not listed. Without hardware breakpoints it says why in the report and
 * changes nothing. Returns 0, or -1 after a message. */
int leaks_confirm(struct leakset *ls, pid_t pid, double seconds);

void leaks_report_text(const struct leakset *ls, const struct leakrun *r,
                       FILE *f);
int leaks_report_json(const struct leakset *ls, const struct leakrun *r,
                      FILE *f);
/* The alive samples' bytes by stack, to path in format (profile.h). */
int leaks_flame(const struct leakset *ls, const char *path, const char *format);

#endif
