/*
** Radix sorts of addresses, or of key-value pairs: millions of them sort
** in a few linear passes, where qsort makes n log n calls.
*/
#ifndef LUASPY_RADIX_H
#define LUASPY_RADIX_H

#include <stddef.h>
#include <stdint.h>

struct kv {
  uint64_t key, val;
};

/* Sorts v[0..n) by the bits [lo, hi) of their keys, stably, tmp being
 * room for n more pairs. Returns v or tmp, whichever holds the result. */
struct kv *kv_sort_bits(struct kv *v, struct kv *tmp, size_t n, int lo, int hi);
/* The same by whole keys: only the bits in which they differ are sorted
 * on (addresses of one heap: 3 or 4 passes of 8 bits). */
struct kv *kv_sort(struct kv *v, struct kv *tmp, size_t n);

/* Sorts the n values at v, tmp being room for n more: as kv_sort. */
uint64_t *u64_sort(uint64_t *v, uint64_t *tmp, size_t n);

#endif
