/*
** /proc/kallsyms, sorted by address, searched by bisection.
*/
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ksyms.h"

struct ksym {
  uint64_t addr;
  char *name;
};

struct ksyms {
  struct ksym *v;
  size_t n, cap;
};

static int by_addr(const void *a, const void *b)
{
  const struct ksym *x = a, *y = b;
  return x->addr < y->addr ? -1 : x->addr > y->addr;
}

void ksyms_free(struct ksyms *ks)
{
  if (!ks) return;
  for (size_t i = 0; i < ks->n; i++) free(ks->v[i].name);
  free(ks->v);
  free(ks);
}

struct ksyms *ksyms_load(void)
{
  FILE *f = fopen("/proc/kallsyms", "r");
  struct ksyms *ks = calloc(1, sizeof(*ks));
  char line[512], name[256], type;
  unsigned long long addr;
  if (!f || !ks) goto fail;
  while (fgets(line, sizeof(line), f)) {
    if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3 || !addr)
      continue;
    if (type != 't' && type != 'T' && type != 'w' && type != 'W') continue;
    if (ks->n == ks->cap) {
      size_t cap = ks->cap ? 2 * ks->cap : 65536;
      struct ksym *nv = realloc(ks->v, cap * sizeof(*nv));
      if (!nv) goto fail;
      ks->v = nv;
      ks->cap = cap;
    }
    if (!(ks->v[ks->n].name = strdup(name))) goto fail;
    ks->v[ks->n++].addr = addr;
  }
  fclose(f);
  if (!ks->n) {
    ksyms_free(ks);
    return NULL;
  }
  qsort(ks->v, ks->n, sizeof(*ks->v), by_addr);
  return ks;
fail:
  if (f) fclose(f);
  ksyms_free(ks);
  return NULL;
}

const char *ksyms_name(const struct ksyms *ks, uint64_t addr)
{
  size_t lo = 0, hi;
  if (!ks || !ks->n || addr < ks->v[0].addr) return NULL;
  hi = ks->n;
  while (hi - lo > 1) { /* v[lo].addr <= addr < v[hi].addr */
    size_t mid = lo + (hi - lo) / 2;
    if (ks->v[mid].addr <= addr)
      lo = mid;
    else
      hi = mid;
  }
  return ks->v[lo].name;
}
