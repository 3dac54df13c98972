/*
** Stacks added up by weight (see topstacks.h), keyed by their frame
** strings (tframes_intern).
*/
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "../output/strmap.h"
#include "topstacks.h"

struct topstacks {
  struct strmap *keys;
  uint64_t *ns, *count;
  size_t cap;
  struct tkeybuf kb;
};

struct topstacks *topstacks_new(void)
{
  struct topstacks *t = calloc(1, sizeof(*t));
  if (t && !(t->keys = strmap_new())) {
    free(t);
    return NULL;
  }
  return t;
}

void topstacks_free(struct topstacks *t)
{
  if (!t) return;
  strmap_free(t->keys);
  free(t->ns);
  free(t->count);
  free(t->kb.buf);
  free(t);
}

int topstacks_add(struct topstacks *t, const struct tframe *frames, size_t n,
                  uint64_t ns)
{
  uint32_t id;
  if (tframes_intern(t->keys, NULL, frames, n, &t->kb, &id) < 0) return -1;
  if (id >= t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 64;
    uint64_t *a = realloc(t->ns, cap * sizeof(*a)), *b;
    if (!a) return -1;
    t->ns = a;
    if (!(b = realloc(t->count, cap * sizeof(*b)))) return -1;
    t->count = b;
    memset(t->ns + t->cap, 0, (cap - t->cap) * sizeof(*a));
    memset(t->count + t->cap, 0, (cap - t->cap) * sizeof(*b));
    t->cap = cap;
  }
  t->ns[id] += ns;
  t->count[id]++;
  return 0;
}

void topstacks_print(const struct topstacks *t, FILE *f, int top, int depth)
{
  uint32_t n = strmap_count(t->keys);
  unsigned char *done = calloc(n ? n : 1, 1);
  if (!done) return;
  for (int k = 0; k < top; k++) {
    uint32_t best = n;
    for (uint32_t i = 0; i < n; i++)
      if (!done[i] && (best == n || t->ns[i] > t->ns[best])) best = i;
    if (best == n) break;
    done[best] = 1;
    fprintf(f, "    %.3f ms in %llu:\n", t->ns[best] / 1e6,
            (unsigned long long)t->count[best]);
    /* Innermost first: walk the key backwards, frame by frame. */
    const char *key = strmap_key(t->keys, best), *end = key + strlen(key);
    for (int d = 0; d < depth && end > key; d++) {
      const char *b = end;
      while (b > key && b[-1] != TSTACK_SEP) b--;
      fprintf(f, "      %.*s\n", (int)(end - b), b);
      end = b > key ? b - 1 : key;
    }
  }
  free(done);
}
