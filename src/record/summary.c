/*
** The end-of-recording summary. Shares are over all samples recorded; a
** function's total counts each sample once, however often the function
** appears in its stack (recursion).
*/
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "../luajit/luajit.h"
#include "../output/strmap.h"
#include "summary.h"

struct fstat {
  char *name;
  uint64_t self, total;
  uint64_t last; /* the stack that last added to total */
};

struct ftable {
  struct fstat *v;
  size_t n, cap; /* cap: a power of 2 */
  uint64_t stackno;
};

double stats_unwound(const struct rec_stats *st)
{
  return st->received ? (double)(st->complete + st->idle) / st->received : 0;
}

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

static int add_stack(const char *const *frames, size_t n, uint64_t w, void *arg)
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

static int by_self(const void *a, const void *b)
{
  const struct fstat *x = a, *y = b;
  if (x->self != y->self) return x->self < y->self ? 1 : -1;
  if (x->total != y->total) return x->total < y->total ? 1 : -1;
  return strcmp(x->name, y->name);
}

static void print_reasons(FILE *f, const struct rec_stats *st)
{
  for (int i = 1; i <= LS_PARTIAL_LOOP; i++)
    if (st->partial[i])
      fprintf(f, "  partial stack (%s): %llu\n",
              lj_partial_name((enum lj_partial)i),
              (unsigned long long)st->partial[i]);
  if (st->no_vm)
    fprintf(f, "  no Lua VM identified: %llu\n", (unsigned long long)st->no_vm);
  if (st->no_frames)
    fprintf(f, "  no Lua frames: %llu\n", (unsigned long long)st->no_frames);
  if (st->idle)
    fprintf(f, "  not running Lua (host C code): %llu\n",
            (unsigned long long)st->idle);
  if (st->lost)
    fprintf(f, "  lost (ring buffer full): %llu\n",
            (unsigned long long)st->lost);
  if (st->uncached)
    fprintf(f, "  lost (stack no longer cached): %llu\n",
            (unsigned long long)st->uncached);
}

void summary_print(FILE *f, const struct profile *p, const struct rec_stats *st,
                   int top)
{
  struct ftable t = {0};
  uint64_t total = profile_total(p);
  size_t k = 0;
  if (!st->received && !st->lost && !st->uncached) {
    fprintf(f, "luaspy: 0 samples: the targets did not run on a CPU\n");
    return;
  }
  fprintf(f, "luaspy: %llu samples, %.1f%% unwound\n",
          (unsigned long long)st->received, 100 * stats_unwound(st));
  print_reasons(f, st);
  if (total && !profile_foreach_stack(p, add_stack, &t)) {
    for (size_t i = 0; i < t.cap; i++)
      if (t.v[i].name) t.v[k++] = t.v[i];
    qsort(t.v, k, sizeof(*t.v), by_self);
    fprintf(f, "  %6s %6s  %s\n", "self", "total", "function");
    for (size_t i = 0; i < k && i < (size_t)top; i++)
      fprintf(f, "  %5.1f%% %5.1f%%  %s\n", 100.0 * t.v[i].self / total,
              100.0 * t.v[i].total / total, t.v[i].name);
  } else {
    k = t.cap;
  }
  for (size_t i = 0; i < k; i++) free(t.v[i].name);
  free(t.v);
}
