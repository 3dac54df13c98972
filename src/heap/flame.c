/*
** The heap as a flame graph: one stack per object reached, made of the
** edge labels of its reference path, weighted by the bytes it holds
** (itself and the leaves first reached through it). A frame's width is
** then the bytes first reached through it: retained bytes, roughly.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cmd/common.h"
#include "../output/profile.h"
#include "flame.h"

#define DEPTH_MAX 256

/* Labels repeat ([*], .name, <metatable>): keep one copy of each. */
struct strset {
  char **v;
  size_t mask, n;
};

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
  return h;
}

static const char *intern(struct strset *t, const char *s)
{
  size_t i;
  if ((t->n + 1) * 2 > t->mask + 1) {
    size_t n = t->v ? (t->mask + 1) * 2 : 1024;
    char **v = calloc(n, sizeof(*v));
    if (!v) return NULL;
    for (size_t j = 0; t->v && j <= t->mask; j++) {
      if (!t->v[j]) continue;
      for (i = hash_str(t->v[j]) & (n - 1); v[i]; i = (i + 1) & (n - 1)) {
      }
      v[i] = t->v[j];
    }
    free(t->v);
    t->v = v;
    t->mask = n - 1;
  }
  for (i = hash_str(s) & t->mask; t->v[i]; i = (i + 1) & t->mask)
    if (!strcmp(t->v[i], s)) return t->v[i];
  if (!(t->v[i] = strdup(s))) return NULL;
  t->n++;
  return t->v[i];
}

static void strset_free(struct strset *t)
{
  for (size_t i = 0; t->v && i <= t->mask; i++) free(t->v[i]);
  free(t->v);
}

static int add_vm(struct profile *p, struct heap_ctx *c,
                  const struct heap_snap *s, const char *vmframe,
                  struct strset *names)
{
  const char **label = calloc(s->nobjs ? s->nobjs : 1, sizeof(*label));
  const char *frames[DEPTH_MAX + 1];
  char buf[512];
  int rc = 0;
  if (!label) goto oom;
  /* Parents come first, so each object's label is ready for its
   * children. */
  for (size_t i = 0; i < s->nobjs; i++) {
    heap_label(c, s, (uint32_t)i, 1, buf, sizeof(buf));
    if (!(label[i] = intern(names, buf))) goto oom;
  }
  for (size_t i = 0; i < s->nobjs && !rc; i++) {
    size_t n = 0, depth = 0;
    for (uint32_t j = (uint32_t)i; j != HEAP_NOPARENT && depth < DEPTH_MAX;
         j = s->objs[j].parent)
      depth++;
    if (vmframe) frames[n++] = vmframe;
    n += depth;
    size_t k = n;
    for (uint32_t j = (uint32_t)i; k > (vmframe ? 1u : 0u);
         j = s->objs[j].parent)
      frames[--k] = label[j];
    rc = profile_add(p, frames, n, s->objs[i].held);
  }
  free(label);
  return rc;
oom:
  free(label);
  die_msg("heap: out of memory writing the flame graph");
  return -1;
}

int heap_flame(struct heap_ctx *ctxs, const struct heap_snap *snaps,
               size_t nsnaps, const char *path, const char *title)
{
  struct profile *p = profile_new("bytes");
  struct strset names = {0};
  struct render_opts ro = {.title = title,
                           .subtitle = "reference paths from the roots, "
                                       "each object under the first path "
                                       "found (breadth-first)"};
  int rc = 0;
  if (!p) return -1;
  for (size_t i = 0; i < nsnaps && !rc; i++) {
    char vm[64];
    snprintf(vm, sizeof(vm), "VM 0x%llx", (unsigned long long)snaps[i].vm->G);
    rc = add_vm(p, &ctxs[i], &snaps[i], nsnaps > 1 ? vm : NULL, &names);
  }
  if (!rc && profile_total(p) == 0) {
    die_msg("heap: nothing reached, no flame graph written");
    rc = -1;
  }
  if (!rc) rc = profile_write(p, path, NULL, &ro);
  profile_free(p);
  strset_free(&names);
  return rc;
}
