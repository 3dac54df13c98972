/*
** Distinct backtraces by class (see backtraces.h), keyed by their class
** and frame strings (tframes_intern).
*/
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../output/strmap.h"
#include "backtraces.h"

int btable_init(struct btable *t)
{
  memset(t, 0, sizeof(*t));
  return (t->keys = strmap_new()) ? 0 : -1;
}

void btable_free(struct btable *t)
{
  for (size_t i = 0; i < t->nbts; i++) free(t->bts[i].frames);
  free(t->bts);
  free(t->kb.buf);
  strmap_free(t->keys);
  memset(t, 0, sizeof(*t));
}

long btable_add(struct btable *t, long cls, const struct tframe *frames,
                size_t n)
{
  char prefix[24];
  uint32_t id;
  int isnew;
  snprintf(prefix, sizeof(prefix), "%ld", cls);
  if ((isnew = tframes_intern(t->keys, prefix, frames, n, &t->kb, &id)) < 0)
    return -1;
  if (!isnew) return id;
  if (id >= t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 256;
    struct bt *nb = realloc(t->bts, cap * sizeof(*nb));
    if (!nb) return -1;
    t->bts = nb;
    t->cap = cap;
  }
  struct bt *b = &t->bts[id];
  memset(b, 0, sizeof(*b));
  b->cls = cls;
  if (!(b->frames = malloc((n ? n : 1) * sizeof(*b->frames)))) return -1;
  for (size_t i = 0; i < n; i++) b->frames[i] = frames[n - 1 - i];
  b->n = n;
  t->nbts = id + 1;
  return id;
}

size_t btable_top(const struct btable *t, long cls, size_t *out, size_t max)
{
  size_t n = 0;
  for (size_t i = 0; i < t->nbts; i++) {
    if (t->bts[i].cls != cls || !t->bts[i].count) continue;
    size_t k = n < max ? n++ : max;
    while (k > 0 && t->bts[out[k - 1]].count < t->bts[i].count) {
      if (k < max) out[k] = out[k - 1];
      k--;
    }
    if (k < max) out[k] = i;
  }
  return n;
}

const struct tframe *bt_lua_site(const struct bt *b)
{
  for (size_t i = 0; i < b->n; i++)
    if (!strcmp(b->frames[i].kind, "lua") && b->frames[i].line > 0)
      return &b->frames[i];
  return NULL;
}

void bt_print(FILE *f, const struct bt *b, const char *indent, size_t depth)
{
  for (size_t i = 0; i < b->n && i < depth; i++)
    fprintf(f, "%s%s\n", indent, b->frames[i].str);
  if (b->n > depth) fprintf(f, "%s... %zu more\n", indent, b->n - depth);
}

void bt_json_frames(struct json *j, const struct bt *b)
{
  tframes_json(j, b->frames, b->n);
}
