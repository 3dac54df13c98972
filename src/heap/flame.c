/*
** The heap as a flame graph: one stack per object reached, made of the
** edge labels of its reference path, weighted by the bytes it holds
** (itself and the leaves first reached through it). A frame's width is
** then the bytes first reached through it: retained bytes, roughly.
**
** Parents come before their children, so every object's stack is its
** parent's plus one frame: one step down the profile's tree from the
** parent's node, whatever the depth.
*/
#include <stdio.h>
#include <stdlib.h>

#include "../cmd/common.h"
#include "../output/profile.h"
#include "flame.h"

/* Stacks deeper than this (a long linked list) end in the object at this
 * depth, which then holds the bytes of those below it. */
#define DEPTH_MAX 256

/* The profile node of every object, and its depth. */
struct nodes {
  uint32_t *node;
  uint16_t *depth;
};

static int add_obj(struct profile *p, struct heap_ctx *c,
                   const struct heap_snap *s, uint32_t i, uint32_t root,
                   struct nodes *n)
{
  const struct heap_obj *o = &s->objs[i];
  uint32_t from = o->parent == HEAP_NOPARENT ? root : n->node[o->parent];
  uint16_t depth = o->parent == HEAP_NOPARENT ? 1 : n->depth[o->parent] + 1;
  char buf[512];
  const char *label = buf;
  if (depth > DEPTH_MAX) {
    n->node[i] = from;
    n->depth[i] = DEPTH_MAX;
  } else {
    heap_label(c, s, i, 1, buf, sizeof(buf));
    if (profile_extend(p, from, &label, 1, &n->node[i])) return -1;
    n->depth[i] = depth;
  }
  /* Nodes made with weight 0 do not show (objects gone when walked). */
  return profile_add_at(p, n->node[i], NULL, 0, o->held);
}

static int add_vm(struct profile *p, struct heap_ctx *c,
                  const struct heap_snap *s, const char *vmframe)
{
  size_t k = s->nobjs ? s->nobjs : 1;
  struct nodes n = {malloc(k * sizeof(*n.node)), malloc(k * sizeof(*n.depth))};
  uint32_t root = 0;
  int rc = n.node && n.depth ? 0 : -1;
  if (rc)
    die_msg("heap: out of memory writing the flame graph");
  else if (vmframe)
    rc = profile_prefix(p, &vmframe, 1, &root);
  for (size_t i = 0; i < s->nobjs && !rc; i++)
    rc = add_obj(p, c, s, (uint32_t)i, root, &n);
  free(n.node);
  free(n.depth);
  return rc;
}

int heap_flame(struct heap_ctx *ctxs, const struct heap_snap *snaps,
               size_t nsnaps, const char *path, const char *title)
{
  struct profile *p = profile_new("bytes");
  struct render_opts ro = {.title = title,
                           .subtitle = "reference paths from the roots, "
                                       "each object under the first path "
                                       "found (breadth-first)"};
  int rc = 0;
  if (!p) return -1;
  for (size_t i = 0; i < nsnaps && !rc; i++) {
    char vm[64];
    snprintf(vm, sizeof(vm), "VM 0x%llx", (unsigned long long)snaps[i].vm->G);
    rc = add_vm(p, &ctxs[i], &snaps[i], nsnaps > 1 ? vm : NULL);
  }
  if (!rc && profile_total(p) == 0) {
    die_msg("heap: nothing reached, no flame graph written");
    rc = -1;
  }
  if (!rc) rc = profile_write(p, path, NULL, &ro);
  profile_free(p);
  return rc;
}
