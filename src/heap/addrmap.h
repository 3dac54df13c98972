/*
** A hash map from target addresses to 32-bit values (open addressing):
** the "seen" set of a heap walk, where millions of entries are common.
*/
#ifndef LUASPY_ADDRMAP_H
#define LUASPY_ADDRMAP_H

#include <stddef.h>
#include <stdint.h>

struct addrmap {
  uint64_t *keys; /* 0 = empty */
  uint32_t *vals;
  size_t mask, n;
};

/* -1 when out of memory, 1 if addr was there (its value unchanged),
 * 0 if it was added with value v. addr must not be 0. */
int addrmap_add(struct addrmap *m, uint64_t addr, uint32_t v);
/* Adds addr with value v, or sets its value to v. -1 when out of memory. */
int addrmap_set(struct addrmap *m, uint64_t addr, uint32_t v);
/* Makes room for n entries in all (saves rehashing as the map fills). */
int addrmap_reserve(struct addrmap *m, size_t n);
/* 0 with *v set, or -1 when absent. */
int addrmap_get(const struct addrmap *m, uint64_t addr, uint32_t *v);
void addrmap_free(struct addrmap *m);

#endif
