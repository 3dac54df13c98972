/*
** Address map: a hash table with linear probing, of any size (filled in
** bulk it can be sized to fit) kept at most three quarters full (millions
** of entries: memory matters more than the odd longer probe), and
** bitmaps for marked addresses. Bitmaps are found
** through a small hash table of their own: a heap of 1 GiB spans about
** 4000 regions, 16 MiB of bitmaps against 12 bytes and more a slot.
*/
#include <stdlib.h>

#include "addrmap.h"
#include "radix.h"

#define REGION_SHIFT 18 /* 256 KiB of address space per bitmap */
#define REGION_WORDS ((1u << REGION_SHIFT) / 8 / 64)

static size_t mix(uint64_t x)
{
  return (size_t)((x * 0x9e3779b97f4a7c15ULL) >> 20); /* Fibonacci */
}

static size_t slot(const struct addrmap *m, uint64_t addr)
{
  /* GC objects are 8-aligned: drop those bits, mix (Fibonacci), scale the
   * high bits to the size. */
  uint64_t h = (addr >> 3) * 0x9e3779b97f4a7c15ULL;
  return (size_t)(((unsigned __int128)h * m->size) >> 64);
}

static size_t next(const struct addrmap *m, size_t i)
{
  return i + 1 == m->size ? 0 : i + 1;
}

static int full(const struct addrmap *m, size_t n)
{
  return n > m->size / 4 * 3;
}

static int resize(struct addrmap *m, size_t size)
{
  uint64_t *keys = calloc(size, sizeof(*keys)), *old = m->keys;
  uint32_t *vals = malloc(size * sizeof(*vals)), *oldv = m->vals;
  size_t oldsize = m->size;
  if (!keys || !vals) {
    free(keys);
    free(vals);
    return -1;
  }
  m->keys = keys;
  m->vals = vals;
  m->size = size;
  m->n = 0;
  for (size_t i = 0; i < oldsize; i++)
    if (old[i]) addrmap_add(m, old[i], oldv[i]);
  free(old);
  free(oldv);
  return 0;
}

int addrmap_reserve(struct addrmap *m, size_t n)
{
  size_t size = (n / 3 + 1) * 4; /* then n is under three quarters */
  if (m->keys && !full(m, n)) return 0;
  return resize(m, size < 1024 ? 1024 : size);
}

/* Marks are kept for 8-aligned addresses: others get a slot. */
static int markable(uint64_t addr)
{
  return (addr & 7) == 0;
}

/* The bitmap of region rno, or NULL. */
static uint64_t *region(const struct addrmap *m, uint64_t rno)
{
  if (!m->rkeys) return NULL;
  for (size_t i = mix(rno) & m->rmask; m->rkeys[i]; i = (i + 1) & m->rmask)
    if (m->rkeys[i] == rno + 1) return m->rbits[i];
  return NULL;
}

static int regions_resize(struct addrmap *m, size_t n)
{
  uint64_t *keys = calloc(n, sizeof(*keys)), *old = m->rkeys;
  uint64_t **bits = malloc(n * sizeof(*bits)), **oldb = m->rbits;
  if (!keys || !bits) {
    free(keys);
    free(bits);
    return -1;
  }
  for (size_t j = 0; old && j <= m->rmask; j++) {
    size_t i;
    if (!old[j]) continue;
    for (i = mix(old[j] - 1) & (n - 1); keys[i]; i = (i + 1) & (n - 1)) {
    }
    keys[i] = old[j];
    bits[i] = oldb[j];
  }
  free(old);
  free(oldb);
  m->rkeys = keys;
  m->rbits = bits;
  m->rmask = n - 1;
  return 0;
}

/* The bitmap of region rno, made if need be; NULL when out of memory. */
static uint64_t *region_make(struct addrmap *m, uint64_t rno)
{
  uint64_t *bits = region(m, rno);
  size_t i;
  if (bits) return bits;
  if ((!m->rkeys || (m->nregions + 1) * 2 > m->rmask + 1) &&
      regions_resize(m, m->rkeys ? (m->rmask + 1) * 2 : 64))
    return NULL;
  if (!(bits = calloc(REGION_WORDS, sizeof(*bits)))) return NULL;
  for (i = mix(rno) & m->rmask; m->rkeys[i]; i = (i + 1) & m->rmask) {
  }
  m->rkeys[i] = rno + 1;
  m->rbits[i] = bits;
  m->nregions++;
  return bits;
}

static uint64_t bit_of(uint64_t addr)
{
  return 1ull << ((addr >> 3) & 63);
}

static uint64_t *word_of(uint64_t *bits, uint64_t addr)
{
  return &bits[(addr & ((1u << REGION_SHIFT) - 1)) >> 9];
}

static int mark(struct addrmap *m, uint64_t addr)
{
  uint64_t *bits = region_make(m, addr >> REGION_SHIFT), *w;
  if (!bits) return -1;
  w = word_of(bits, addr);
  if (*w & bit_of(addr)) return 1;
  *w |= bit_of(addr);
  return 0;
}

static int marked(const struct addrmap *m, uint64_t addr)
{
  uint64_t *bits = markable(addr) ? region(m, addr >> REGION_SHIFT) : NULL;
  return bits && (*word_of(bits, addr) & bit_of(addr));
}

int addrmap_add(struct addrmap *m, uint64_t addr, uint32_t v)
{
  size_t i;
  if (v == ADDRMAP_MARK && markable(addr)) return mark(m, addr);
  if ((!m->keys || full(m, m->n + 1)) &&
      resize(m, m->keys ? m->size * 2 : 1024))
    return -1;
  for (i = slot(m, addr); m->keys[i]; i = next(m, i))
    if (m->keys[i] == addr) return 1;
  m->keys[i] = addr;
  m->vals[i] = v;
  m->n++;
  return 0;
}

/* Inserted in the order of their slots, the addresses sweep the table
 * once: one by one, each would land on a page of its own, a TLB miss and
 * a cache miss apiece (most of what millions of them cost). */
int addrmap_add_many(struct addrmap *m, const uint64_t *addrs,
                     const uint32_t *vals, size_t n)
{
  struct kv *v, *sorted;
  int bits;
  if (addrmap_reserve(m, m->n + n)) return -1;
  if (m->size >> 32 || !(v = malloc(2 * n * sizeof(*v) + 1))) {
    for (size_t i = 0; i < n; i++) /* no room to sort: slower */
      if (addrmap_add(m, addrs[i], vals[i]) < 0) return -1;
    return 0;
  }
  /* key: slot, then value; val: the address */
  for (size_t i = 0; i < n; i++)
    v[i] = (struct kv){(uint64_t)slot(m, addrs[i]) << 32 | vals[i], addrs[i]};
  for (bits = 0; (size_t)1 << bits < m->size; bits++) {
  }
  sorted = kv_sort_bits(v, v + n, n, 32, 32 + bits);
  for (size_t i = 0; i < n; i++)
    addrmap_add(m, sorted[i].val, (uint32_t)sorted[i].key);
  free(v);
  return 0;
}

/* The slot of addr, or -1. */
static long find(const struct addrmap *m, uint64_t addr)
{
  if (!m->keys) return -1;
  for (size_t i = slot(m, addr); m->keys[i]; i = next(m, i))
    if (m->keys[i] == addr) return (long)i;
  return -1;
}

int addrmap_get(const struct addrmap *m, uint64_t addr, uint32_t *v)
{
  long i = find(m, addr);
  if (i >= 0) {
    *v = m->vals[i];
    return 0;
  }
  if (!marked(m, addr)) return -1;
  *v = ADDRMAP_MARK;
  return 0;
}

/* Whether slot j's entry, whose home slot is h, may move back to the
 * free slot i (it lies on the probe path from h to j). */
static int may_move(size_t h, size_t i, size_t j)
{
  return i <= j ? h <= i || h > j : h <= i && h > j;
}

void addrmap_del(struct addrmap *m, uint64_t addr)
{
  long at = find(m, addr);
  if (marked(m, addr))
    *word_of(region(m, addr >> REGION_SHIFT), addr) &= ~bit_of(addr);
  if (at < 0) return;
  /* Backward shift: later entries of the probe run fill the hole, so
   * that no lookup stops at it early. */
  size_t i = (size_t)at;
  for (size_t j = next(m, i); m->keys[j]; j = next(m, j))
    if (may_move(slot(m, m->keys[j]), i, j)) {
      m->keys[i] = m->keys[j];
      m->vals[i] = m->vals[j];
      i = j;
    }
  m->keys[i] = 0;
  m->n--;
}

void addrmap_free(struct addrmap *m)
{
  for (size_t i = 0; m->rkeys && i <= m->rmask; i++)
    if (m->rkeys[i]) free(m->rbits[i]);
  free(m->keys);
  free(m->vals);
  free(m->rkeys);
  free(m->rbits);
  *m = (struct addrmap){0};
}
