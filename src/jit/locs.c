/*
** Interned Lua locations. A linear lookup from the newest: a window sees
** a few thousand distinct trace starts and penalty PCs at most, and most
** lookups are for recent ones.
*/
#include <stdio.h>
#include <stdlib.h>

#include "jitstate.h"
#include "locs.h"

int jit_locs_init(struct jit_locs *l, pid_t pid, const struct lj_target *t)
{
  l->pid = pid;
  l->t = t;
  l->v = NULL;
  l->n = l->cap = 0;
  l->sym = lj_symbolizer_new(pid, t);
  return l->sym ? 0 : -1;
}

void jit_locs_free(struct jit_locs *l)
{
  lj_symbolizer_free(l->sym);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

/* What identifies the prototype at pt beyond its address, which the GC
 * may give to another one: its chunk name, first line and size. */
static uint64_t stamp_of(pid_t pid, const struct lj_layout *lay, uint64_t pt)
{
  uint64_t name;
  uint32_t firstline, sizebc;
  if (!pt || proc_read_u64(pid, pt + lay->pt_chunkname, &name) ||
      proc_read_u32(pid, pt + lay->pt_firstline, &firstline) ||
      proc_read_u32(pid, pt + lay->pt_sizebc, &sizebc))
    return 0;
  return name ^ ((uint64_t)firstline << 40) ^ ((uint64_t)sizebc << 20);
}

int jit_loc(struct jit_locs *l, int vm, uint64_t pt, uint64_t pc)
{
  const struct lj_vm *v = &l->t->vms[vm];
  struct jit_loc *e;
  char chunk[LJ_CHUNK_MAX];
  int line;
  uint64_t stamp;
  if (!pt) pt = jit_proto_of_pc(l->pid, v->lay, pc);
  stamp = stamp_of(l->pid, v->lay, pt);
  for (size_t i = l->n; i-- > 0;)
    if (l->v[i].pc == pc && l->v[i].vm == vm && l->v[i].pt == pt &&
        l->v[i].stamp == stamp)
      return (int)i;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    struct jit_loc *nv = realloc(l->v, cap * sizeof(*nv));
    if (!nv) return -1;
    l->v = nv;
    l->cap = cap;
  }
  e = &l->v[l->n];
  e->pt = pt;
  e->pc = pc;
  e->vm = vm;
  e->stamp = stamp;
  if (pt &&
      lj_proto_where(l->sym, v, pt, pc, chunk, sizeof(chunk), &line) == 0) {
    snprintf(e->where, sizeof(e->where), "%s:%d", chunk, line);
    /* a chunk name is any string; keep the text output one line */
    for (char *c = e->where; *c; c++)
      if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
  } else {
    e->pt = e->stamp = 0;
    snprintf(e->where, sizeof(e->where), "0x%llx (code gone)",
             (unsigned long long)pc);
  }
  return (int)l->n++;
}

const char *jit_loc_name(const struct jit_locs *l, int idx)
{
  return idx >= 0 && (size_t)idx < l->n ? l->v[idx].where : "?";
}
