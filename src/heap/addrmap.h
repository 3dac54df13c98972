/*
** A map from target addresses to 32-bit values: the "seen" set of a heap
** walk, where millions of entries are common.
**
** Most addresses a walk sees need no value, only "seen" (strings, cdata,
** upvalues: leaves). Those, mapped to ADDRMAP_MARK, cost one bit each in
** a bitmap of the 256 KiB of address space around them; the others take
** a slot of a hash table (open addressing). An address may be both
** marked and have a value: the value is what addrmap_get gives.
*/
#ifndef LUASPY_ADDRMAP_H
#define LUASPY_ADDRMAP_H

#include <stddef.h>
#include <stdint.h>

#define ADDRMAP_MARK UINT32_MAX

struct addrmap {
  uint64_t *keys; /* addresses with a value; 0 = empty */
  uint32_t *vals;
  size_t size, n;
  uint64_t *rkeys;  /* bitmaps by region number + 1; 0 = empty */
  uint64_t **rbits; /* one bit per 8 bytes of the region */
  size_t rmask, nregions;
};

/* -1 when out of memory, 1 if addr was there (its value unchanged),
 * 0 if it was added with value v. addr must not be 0. With ADDRMAP_MARK,
 * "there" means marked; with another value, having a value. */
int addrmap_add(struct addrmap *m, uint64_t addr, uint32_t v);
/* Adds n addresses with their values (addrs[i] -> vals[i]) at once: the
 * same as one by one, but millions of them much faster. -1 when out of
 * memory (some may have been added). */
int addrmap_add_many(struct addrmap *m, const uint64_t *addrs,
                     const uint32_t *vals, size_t n);
/* Makes room for n addresses with a value (saves rehashing as it fills). */
int addrmap_reserve(struct addrmap *m, size_t n);
/* 0 with *v set (ADDRMAP_MARK if marked), or -1 when absent. */
int addrmap_get(const struct addrmap *m, uint64_t addr, uint32_t *v);
/* Forgets addr, marked or with a value. */
void addrmap_del(struct addrmap *m, uint64_t addr);
void addrmap_free(struct addrmap *m);

#endif
