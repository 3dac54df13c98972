/*
** The function table: open addressing on the frame strings, grown to
** stay at most half full.
*/
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "../output/strmap.h"
#include "ftable.h"

static int grow(struct ftable *t)
{
  struct ftable nt = {.cap = t->cap ? 2 * t->cap : 1024, .stackno = t->stackno};
  if (!(nt.v = calloc(nt.cap, sizeof(*nt.v)))) return -1;
  for (size_t i = 0; i < t->cap; i++) {
    if (!t->v[i].name) continue;
    size_t j = str_hash(t->v[i].name, strlen(t->v[i].name)) & (nt.cap - 1);
    while (nt.v[j].name) j = (j + 1) & (nt.cap - 1);
    nt.v[j] = t->v[i];
  }
  nt.n = t->n;
  free(t->v);
  *t = nt;
  return 0;
}

static struct fstat *lookup(struct ftable *t, const char *name)
{
  size_t j;
  if (2 * (t->n + 1) > t->cap && grow(t)) return NULL;
  j = str_hash(name, strlen(name)) & (t->cap - 1);
  while (t->v[j].name) {
    if (!strcmp(t->v[j].name, name)) return &t->v[j];
    j = (j + 1) & (t->cap - 1);
  }
  if (!(t->v[j].name = strdup(name))) return NULL;
  t->n++;
  return &t->v[j];
}

int ftable_add(const char *const *frames, size_t n, uint64_t w, void *arg)
{
  struct ftable *t = arg;
  struct fstat *f;
  t->stackno++;
  for (size_t i = 0; i < n; i++) {
    if (!(f = lookup(t, frames[i]))) return -1;
    if (f->last != t->stackno) {
      f->total += w;
      f->last = t->stackno;
    }
    if (i == n - 1) f->self += w;
  }
  return 0;
}

struct fstat **ftable_list(const struct ftable *t, size_t *n)
{
  struct fstat **v = malloc((t->n ? t->n : 1) * sizeof(*v));
  size_t k = 0;
  if (!v) return NULL;
  for (size_t i = 0; i < t->cap; i++)
    if (t->v[i].name) v[k++] = &t->v[i];
  *n = k;
  return v;
}

static int cmp_u64(uint64_t x, uint64_t y)
{
  return x < y ? 1 : x > y ? -1 : 0;
}

int fstat_by_self(const void *a, const void *b)
{
  const struct fstat *x = *(struct fstat *const *)a,
                     *y = *(struct fstat *const *)b;
  int c = cmp_u64(x->self, y->self);
  if (!c) c = cmp_u64(x->total, y->total);
  return c ? c : strcmp(x->name, y->name);
}

int fstat_by_total(const void *a, const void *b)
{
  const struct fstat *x = *(struct fstat *const *)a,
                     *y = *(struct fstat *const *)b;
  int c = cmp_u64(x->total, y->total);
  if (!c) c = cmp_u64(x->self, y->self);
  return c ? c : strcmp(x->name, y->name);
}

int fstat_by_name(const void *a, const void *b)
{
  return strcmp((*(struct fstat *const *)a)->name,
                (*(struct fstat *const *)b)->name);
}

void ftable_clear(struct ftable *t)
{
  for (size_t i = 0; i < t->cap; i++) free(t->v[i].name);
  free(t->v);
  memset(t, 0, sizeof(*t));
}
