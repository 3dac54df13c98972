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

/* One line "ADDR TYPE NAME[\t[MODULE]]": the address and the name of a
 * function (types t, T, w, W), or 0. By hand: sscanf took half the time
 * of reading the file's 100000+ lines. */
static uint64_t parse_line(char *line, const char **name)
{
  char *p, *end;
  uint64_t addr = strtoull(line, &p, 16);
  if (p == line || p[0] != ' ' || !p[1] || !strchr("tTwW", p[1]) || p[2] != ' ')
    return 0;
  *name = p + 3;
  end = p + 3 + strcspn(p + 3, " \t\n");
  *end = 0;
  return end > *name ? addr : 0;
}

struct ksyms *ksyms_load(void)
{
  FILE *f = fopen("/proc/kallsyms", "r");
  struct ksyms *ks = calloc(1, sizeof(*ks));
  char line[512];
  const char *name;
  uint64_t addr;
  if (!f || !ks) goto fail;
  while (fgets(line, sizeof(line), f)) {
    if (!(addr = parse_line(line, &name))) continue;
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
