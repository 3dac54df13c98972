/*
** Address map: linear probing, kept at most three quarters full (millions
** of entries: memory matters more than the odd longer probe).
*/
#include <stdlib.h>

#include "addrmap.h"

static size_t slot(const struct addrmap *m, uint64_t addr)
{
  /* GC objects are 8-aligned: drop those bits, then mix (Fibonacci). */
  return (size_t)(((addr >> 3) * 0x9e3779b97f4a7c15ULL) >> 20) & m->mask;
}

static int resize(struct addrmap *m, size_t n)
{
  struct addrmap g = {calloc(n, sizeof(uint64_t)), malloc(n * sizeof(uint32_t)),
                      n - 1, 0};
  if (!g.keys || !g.vals) {
    free(g.keys);
    free(g.vals);
    return -1;
  }
  for (size_t i = 0; m->keys && i <= m->mask; i++)
    if (m->keys[i]) addrmap_add(&g, m->keys[i], m->vals[i]);
  addrmap_free(m);
  *m = g;
  return 0;
}

int addrmap_reserve(struct addrmap *m, size_t n)
{
  size_t size = 1024;
  while (size / 4 * 3 < n) size *= 2;
  return m->keys && m->mask + 1 >= size ? 0 : resize(m, size);
}

/* The slot of addr, or the empty one where it goes; NULL when out of
 * memory. */
static uint64_t *find(struct addrmap *m, uint64_t addr)
{
  size_t i;
  if ((!m->keys || m->n + 1 > (m->mask + 1) / 4 * 3) &&
      resize(m, m->keys ? (m->mask + 1) * 2 : 1024))
    return NULL;
  for (i = slot(m, addr); m->keys[i] && m->keys[i] != addr;
       i = (i + 1) & m->mask)
    continue;
  return &m->keys[i];
}

int addrmap_add(struct addrmap *m, uint64_t addr, uint32_t v)
{
  uint64_t *k = find(m, addr);
  if (!k) return -1;
  if (*k) return 1;
  *k = addr;
  m->vals[k - m->keys] = v;
  m->n++;
  return 0;
}

int addrmap_set(struct addrmap *m, uint64_t addr, uint32_t v)
{
  uint64_t *k = find(m, addr);
  if (!k) return -1;
  if (!*k) {
    *k = addr;
    m->n++;
  }
  m->vals[k - m->keys] = v;
  return 0;
}

int addrmap_get(const struct addrmap *m, uint64_t addr, uint32_t *v)
{
  if (!m->keys) return -1;
  for (size_t i = slot(m, addr); m->keys[i]; i = (i + 1) & m->mask)
    if (m->keys[i] == addr) {
      *v = m->vals[i];
      return 0;
    }
  return -1;
}

void addrmap_free(struct addrmap *m)
{
  free(m->keys);
  free(m->vals);
  m->keys = NULL;
  m->vals = NULL;
  m->mask = m->n = 0;
}
