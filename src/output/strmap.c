/*
** Open addressing over FNV-1a hashes, at most half full; keys are copied.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

#define SLOTS_MIN 256

struct key {
  char *s;
  size_t len;
  uint64_t hash;
};

struct strmap {
  struct key *key; /* by number */
  uint32_t nkey, key_cap;
  uint32_t *slot; /* number + 1; 0 is free */
  uint32_t mask;
};

static void oom(void)
{
  fputs("luaspy: out of memory\n", stderr);
}

uint64_t str_hash(const char *s, size_t len)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
  return h;
}

struct strmap *strmap_new(void)
{
  struct strmap *m = calloc(1, sizeof(*m));

  if (!m || !(m->slot = calloc(SLOTS_MIN, sizeof(*m->slot)))) {
    free(m);
    oom();
    return NULL;
  }
  m->mask = SLOTS_MIN - 1;
  return m;
}

void strmap_free(struct strmap *m)
{
  if (!m) return;
  for (uint32_t i = 0; i < m->nkey; i++) free(m->key[i].s);
  free(m->key);
  free(m->slot);
  free(m);
}

/* The slot holding s, or the free slot where it would go. */
static uint32_t probe(const struct strmap *m, const char *s, size_t len,
                      uint64_t h)
{
  uint32_t i = (uint32_t)h & m->mask;

  for (; m->slot[i]; i = (i + 1) & m->mask) {
    const struct key *k = &m->key[m->slot[i] - 1];
    if (k->hash == h && k->len == len && memcmp(k->s, s, len) == 0) break;
  }
  return i;
}

int strmap_find(const struct strmap *m, const char *s, size_t len, uint32_t *id)
{
  uint32_t i = probe(m, s, len, str_hash(s, len));

  if (!m->slot[i]) return -1;
  *id = m->slot[i] - 1;
  return 0;
}

static int grow_slots(struct strmap *m)
{
  uint32_t size = (m->mask + 1) * 2;
  uint32_t *t;

  if (size == 0 || !(t = calloc(size, sizeof(*t)))) {
    oom();
    return -1;
  }
  free(m->slot);
  m->slot = t;
  m->mask = size - 1;
  for (uint32_t n = 0; n < m->nkey; n++) {
    uint32_t i = (uint32_t)m->key[n].hash & m->mask;
    while (t[i]) i = (i + 1) & m->mask;
    t[i] = n + 1;
  }
  return 0;
}

int strmap_id(struct strmap *m, const char *s, size_t len, uint32_t *id)
{
  uint64_t h = str_hash(s, len);
  uint32_t i = probe(m, s, len, h);
  struct key *k;

  if (m->slot[i]) {
    *id = m->slot[i] - 1;
    return 0;
  }
  if (m->nkey == m->key_cap) {
    uint32_t cap = m->key_cap ? m->key_cap * 2 : 64;
    struct key *nk =
        cap > m->key_cap ? realloc(m->key, cap * sizeof(*nk)) : NULL;
    if (!nk) {
      oom();
      return -1;
    }
    m->key = nk;
    m->key_cap = cap;
  }
  k = &m->key[m->nkey];
  if (!(k->s = malloc(len + 1))) {
    oom();
    return -1;
  }
  memcpy(k->s, s, len);
  k->s[len] = '\0';
  k->len = len;
  k->hash = h;
  *id = m->nkey++;
  if (m->nkey > (m->mask + 1) / 2) {
    if (grow_slots(m) < 0) return -1;
  } else {
    m->slot[i] = *id + 1;
  }
  return 1;
}

uint32_t strmap_count(const struct strmap *m)
{
  return m->nkey;
}

const char *strmap_key(const struct strmap *m, uint32_t id)
{
  return m->key[id].s;
}
