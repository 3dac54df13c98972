/*
** Distinct backtraces by class (see backtraces.h). A backtrace is keyed
** by its class and frame strings joined with a separator no frame name
** holds in practice.
*/
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "../output/strmap.h"
#include "backtraces.h"

#define SEP '\x1f'

int btable_init(struct btable *t)
{
  memset(t, 0, sizeof(*t));
  return (t->keys = strmap_new()) ? 0 : -1;
}

void btable_free(struct btable *t)
{
  for (size_t i = 0; i < t->nbts; i++) free(t->bts[i].frames);
  free(t->bts);
  free(t->key);
  strmap_free(t->keys);
  memset(t, 0, sizeof(*t));
}

long btable_add(struct btable *t, long cls, const struct tframe *frames,
                size_t n)
{
  size_t len = 24;
  uint32_t id;
  int isnew;
  for (size_t i = 0; i < n; i++) len += strlen(frames[i].str) + 1;
  if (len > t->keycap) {
    char *nk = realloc(t->key, len);
    if (!nk) return -1;
    t->key = nk;
    t->keycap = len;
  }
  len = (size_t)snprintf(t->key, 24, "%ld", cls);
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(frames[i].str);
    t->key[len++] = SEP;
    memcpy(t->key + len, frames[i].str, l);
    len += l;
  }
  if ((isnew = strmap_id(t->keys, t->key, len, &id)) < 0) return -1;
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
  json_begin_arr(j);
  for (size_t i = 0; i < b->n; i++) {
    const struct tframe *f = &b->frames[i];
    json_begin_obj(j);
    json_key(j, "kind");
    json_str(j, f->kind);
    json_key(j, "name");
    json_str(j, f->name);
    json_key(j, "chunk");
    if (f->chunk[0])
      json_str(j, f->chunk);
    else
      json_null(j);
    json_key(j, "line");
    if (f->line >= 0)
      json_int(j, f->line);
    else
      json_null(j);
    json_key(j, "frame");
    json_str(j, f->str);
    json_end_obj(j);
  }
  json_end_arr(j);
}
