/*
** Graph: a breadth-first walk from the roots, recording for every object
** the edge it was first reached by.
**
** Reads are batched, as one object per syscall would make a 1 GiB heap
** take minutes: references found are checked 1024 at a time (their
** headers gathered in one process_vm_readv, neighbours merged), the
** queue is walked 512 objects at a time (headers and small table parts
** gathered likewise), and big arrays, hash parts and stacks are read in
** 1 MiB chunks.
*/
#include <stdlib.h>
#include <string.h>

#include "../cmd/common.h"
#include "heap.h"

#define CHUNK (1u << 20) /* bytes per read of an array, node part, stack */

/* GC object tags of TValues (GC64: the top 17 bits); others are not. */
static int tv_gct(uint64_t v)
{
  uint32_t tag = (uint32_t)(v >> 47);
  if (tag < LJ_TAG_UDATA || tag > LJ_TAG_STR || tag == 0x1fffa) return 0;
  return (int)(~tag & 0xff);
}

static int is_leaf(int type)
{
  return type == HEAP_STR || type == HEAP_UPVAL || type == HEAP_CDATA ||
         type == HEAP_TRACE;
}

#define BATCH 1024      /* objects gathered per syscall */
#define SMALL_PART 4096 /* table parts up to this size are gathered too */

/* A reference found, to be checked against the target in the next batch. */
struct pending {
  uint64_t addr, key;
  uint32_t parent;
  uint8_t gct, edge;
};

/* Ranges to gather in one go: headers of a batch, or small table parts. */
struct gather {
  uint64_t addrs[BATCH];
  uint32_t lens[BATCH];
  size_t offs[BATCH];
  unsigned char ok[BATCH];
  unsigned char *buf;
  size_t n, used, cap;
};

struct walk {
  struct heap_ctx *c;
  struct heap_snap *s;
  uint64_t total; /* objects reached */
  int oom;
  struct pending pend[BATCH];
  size_t npend;
  struct gather refs, hdrs, parts;
};

static int gather_add(struct gather *g, uint64_t addr, uint32_t len)
{
  if (g->n == BATCH) return -1;
  if (g->used + len > g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 64 * 1024;
    unsigned char *b;
    while (cap < g->used + len) cap *= 2;
    if (!(b = realloc(g->buf, cap))) return -1;
    g->buf = b;
    g->cap = cap;
  }
  g->addrs[g->n] = addr;
  g->lens[g->n] = len;
  g->offs[g->n++] = g->used;
  g->used += len;
  return 0;
}

static void gather_reset(struct gather *g)
{
  g->n = g->used = 0;
}

static void tally(struct heap_tally *t, const struct heap_hdr *h)
{
  t->objects[h->gct - LJ_GCT_STR]++;
  t->bytes[h->gct - LJ_GCT_STR] += h->size;
}

/* Records the validated object h at addr as reached from parent. */
static void record(struct walk *w, uint32_t parent, uint64_t addr,
                   const struct heap_hdr *h, int edge, uint64_t key)
{
  struct heap_snap *s = w->s;
  int type = h->gct - LJ_GCT_STR;
  if (w->total >= w->c->lim.max_objects) {
    s->graph.incomplete = "stopped at --max-objects";
    return;
  }
  if (is_leaf(type) && parent != HEAP_NOPARENT) {
    if (addrmap_add(&s->seen, addr, HEAP_LEAF) < 0) goto oom;
    s->objs[parent].held += h->size;
  } else {
    struct heap_obj *o;
    if (s->nobjs == s->capobjs) {
      size_t cap = s->capobjs ? s->capobjs * 2 : 4096;
      struct heap_obj *n = realloc(s->objs, cap * sizeof(*n));
      if (!n) goto oom;
      s->objs = n;
      s->capobjs = cap;
    }
    if (s->nobjs >= HEAP_LEAF ||
        addrmap_add(&s->seen, addr, (uint32_t)s->nobjs) < 0)
      goto oom;
    o = &s->objs[s->nobjs++];
    memset(o, 0, sizeof(*o));
    o->addr = addr;
    o->key = key;
    o->bytes = o->held = h->size;
    o->parent = parent;
    o->type = (uint8_t)type;
    o->edge = (uint8_t)edge;
  }
  w->total++;
  tally(&s->graph, h);
  return;
oom:
  w->oom = 1;
}

/* Checks the pending references against the target: their headers in
 * one gather, single reads only for what that could not read. */
static void flush(struct walk *w)
{
  struct gather *g = &w->refs;
  struct heap_snap *s = w->s;
  gather_reset(g);
  for (size_t i = 0; i < w->npend; i++)
    if (gather_add(g, w->pend[i].addr,
                   heap_hdr_size(w->c->lay, w->pend[i].gct)))
      w->oom = 1;
  if (!w->oom)
    tmem_gather(w->c->mem, g->addrs, g->lens, g->offs, g->n, g->buf, g->ok);
  for (size_t i = 0; i < w->npend && !w->oom; i++) {
    const struct pending *p = &w->pend[i];
    struct heap_hdr h;
    uint32_t idx;
    if (!addrmap_get(&s->seen, p->addr, &idx)) continue; /* twice in it */
    memcpy(h.raw, g->buf + g->offs[i], g->lens[i]);
    if (g->ok[i] ? heap_parse_obj(w->c, p->addr, p->gct, &h)
                 : heap_read_obj(w->c, p->addr, p->gct, &h)) {
      s->graph.skipped++;
      continue;
    }
    record(w, p->parent, p->addr, &h, p->edge, p->key);
  }
  w->npend = 0;
}

/* Notes that parent refers to the object at addr (expected type gct, 0
 * for any) by edge/key. The object is checked and recorded, unless seen
 * before, in the next flush (gct 0: at once). */
static void reach(struct walk *w, uint32_t parent, uint64_t addr, int gct,
                  int edge, uint64_t key)
{
  uint32_t idx;
  if (w->oom || !addr || !addrmap_get(&w->s->seen, addr, &idx)) return;
  if (!gct) {
    struct heap_hdr h;
    if (heap_read_obj(w->c, addr, 0, &h))
      w->s->graph.skipped++;
    else
      record(w, parent, addr, &h, edge, key);
    return;
  }
  w->pend[w->npend++] =
      (struct pending){addr, key, parent, (uint8_t)gct, (uint8_t)edge};
  if (w->npend == BATCH) flush(w);
}

static void reach_tv(struct walk *w, uint32_t parent, uint64_t tv, int edge,
                     uint64_t key)
{
  int gct = tv_gct(tv);
  if (gct) reach(w, parent, tv & LJ_GC64_PTRMASK, gct, edge, key);
}

/* Calls fn on the slots [done, n) of stride bytes at addr, read in
 * chunks (or on the copy at pre). Stops early where the memory went away.
 * Returns the slots done. */
typedef void (*slot_fn)(struct walk *w, uint32_t idx, uint64_t i,
                        const uint64_t *slot);
static uint64_t each_slot(struct walk *w, uint32_t idx, uint64_t addr,
                          uint64_t done, uint64_t n, uint32_t stride,
                          slot_fn fn, const unsigned char *pre)
{
  uint64_t per = CHUNK / stride;
  uint64_t *buf;
  if (pre) { /* gathered with the batch already */
    for (uint64_t i = done; i < n; i++)
      fn(w, idx, i, (const uint64_t *)(pre + i * stride));
    return n;
  }
  if (!(buf = malloc((size_t)per * stride))) {
    w->oom = 1;
    return done;
  }
  while (done < n && !w->oom) {
    uint64_t k = n - done < per ? n - done : per;
    if (tmem_read_fresh(w->c->mem, addr + done * stride, buf,
                        (size_t)(k * stride)))
      break;
    for (uint64_t i = 0; i < k; i++)
      fn(w, idx, done + i, (const uint64_t *)((char *)buf + i * stride));
    done += k;
  }
  free(buf);
  return done;
}

#define TV_NIL (~0ull)

static void array_slot(struct walk *w, uint32_t idx, uint64_t i,
                       const uint64_t *slot)
{
  if (*slot == TV_NIL) return;
  w->s->objs[idx].entries++;
  reach_tv(w, idx, *slot, HEAP_EDGE_ARRAY, i);
}

static void node_slot(struct walk *w, uint32_t idx, uint64_t i,
                      const uint64_t *node)
{
  uint64_t val = node[0], key = node[1];
  (void)i;
  if (val == TV_NIL) return;
  w->s->objs[idx].entries++;
  reach_tv(w, idx, val, HEAP_EDGE_HASH, key);
  reach_tv(w, idx, key, HEAP_EDGE_KEY, key);
}

static uint64_t cap_entries(struct walk *w, uint64_t n)
{
  if (n <= w->c->lim.max_entries) return n;
  w->s->entries_capped++;
  return w->c->lim.max_entries;
}

/* A table's parts: array (8-byte TValues) and hash nodes. */
struct tparts {
  uint64_t array, node, na, nn;     /* addresses, slots to read */
  const unsigned char *abuf, *nbuf; /* gathered copies, or NULL */
};

static void table_parts(struct walk *w, const struct heap_hdr *h,
                        struct tparts *tp)
{
  const struct lj_layout *lay = w->c->lay;
  uint32_t hmask = heap_field32(h, lay->tab_hmask);
  memset(tp, 0, sizeof(*tp));
  tp->array = heap_field64(h, lay->tab_array);
  tp->node = heap_field64(h, lay->tab_node);
  tp->na = cap_entries(w, heap_field32(h, lay->tab_asize));
  /* hmask 0: node is the VM's shared empty node, nothing to read. */
  tp->nn = hmask ? cap_entries(w, (uint64_t)hmask + 1) : 0;
}

/* A table that grows while it is read moves its parts (the old ones may
 * be unmapped at once): read its header again and go on in the new ones,
 * a few times. Array slots keep their index; hash nodes are rehashed, so
 * their walk starts over (what was reached stays reached). */
#define TABLE_RETRIES 3

static void walk_table(struct walk *w, uint32_t idx, const struct heap_hdr *h,
                       const struct tparts *tp)
{
  const struct lj_layout *lay = w->c->lay;
  uint64_t mt = heap_field64(h, lay->tab_metatable), da = 0, dn = 0;
  struct tparts cur = *tp;
  struct heap_hdr now;
  if (mt) reach(w, idx, mt, LJ_GCT_TAB, HEAP_EDGE_META, 0);
  for (int k = 0; k <= TABLE_RETRIES && !w->oom; k++) {
    if (k) {
      if (heap_read_obj(w->c, w->s->objs[idx].addr, LJ_GCT_TAB, &now)) return;
      table_parts(w, &now, &cur);
      if (cur.na < da) da = cur.na;
      dn = 0;
    }
    if (cur.na)
      da = each_slot(w, idx, cur.array, da, cur.na, 8, array_slot, cur.abuf);
    if (cur.nn)
      dn = each_slot(w, idx, cur.node, dn, cur.nn, lay->node_size, node_slot,
                     cur.nbuf);
    if (da >= cur.na && dn >= cur.nn) return;
  }
}

/* Notes where a reachable table's parts are: blocks of their own. */
static void add_parts(struct walk *w, uint32_t idx, const struct tparts *tp)
{
  if ((tp->na && addrmap_add(w->s->parts, tp->array, idx) < 0) ||
      (tp->nn && addrmap_add(w->s->parts, tp->node, idx) < 0))
    w->oom = 1;
}

static void walk_func(struct walk *w, uint32_t idx, const struct heap_hdr *h)
{
  const struct lj_layout *lay = w->c->lay;
  uint64_t o = w->s->objs[idx].addr, refs[256];
  uint8_t nup = h->raw[lay->fn_nupvalues];
  reach(w, idx, heap_field64(h, lay->fn_env), LJ_GCT_TAB, HEAP_EDGE_ENV, 0);
  if (h->raw[lay->fn_ffid] != 0) { /* C function: TValue upvalues */
    if (nup && !tmem_read(w->c->mem, o + lay->fn_cupvalue, refs, 8u * nup))
      for (uint32_t i = 0; i < nup; i++)
        reach_tv(w, idx, refs[i], HEAP_EDGE_CUPVAL, i);
    return;
  }
  reach(w, idx, heap_field64(h, lay->fn_pc) - lay->pt_size, LJ_GCT_PROTO,
        HEAP_EDGE_PROTO, 0);
  if (!nup || tmem_read(w->c->mem, o + lay->fn_uvptr, refs, 8u * nup)) return;
  for (uint32_t i = 0; i < nup; i++) {
    struct heap_hdr uv;
    uint64_t v, tv;
    /* The upvalue object is a leaf of the first closure reaching it; its
     * value is reached through every closure (one of them is first). */
    reach(w, idx, refs[i], LJ_GCT_UPVAL, HEAP_EDGE_UPVAL, i);
    if (heap_read_obj(w->c, refs[i], LJ_GCT_UPVAL, &uv)) continue;
    v = heap_field64(&uv, lay->uv_v);
    if (!tmem_u64(w->c->mem, v, &tv)) reach_tv(w, idx, tv, HEAP_EDGE_UPVAL, i);
  }
}

static void walk_proto(struct walk *w, uint32_t idx, const struct heap_hdr *h)
{
  const struct lj_layout *lay = w->c->lay;
  uint64_t k = heap_field64(h, lay->pt_k);
  uint32_t n = heap_field32(h, lay->pt_sizekgc);
  uint64_t *refs;
  reach(w, idx, heap_field64(h, lay->pt_chunkname), LJ_GCT_STR, HEAP_EDGE_CONST,
        0);
  /* GC constants are stored below k, as GCRefs (proto_kgc(pt, ~i)). */
  n = (uint32_t)cap_entries(w, n);
  if (!n || !(refs = malloc(8ull * n))) return;
  if (!tmem_read(w->c->mem, k - 8ull * n, refs, 8ull * n))
    for (uint32_t i = 0; i < n; i++)
      reach(w, idx, refs[n - 1 - i] & LJ_GC64_PTRMASK, 0, HEAP_EDGE_CONST, i);
  free(refs);
}

static void stack_slot(struct walk *w, uint32_t idx, uint64_t i,
                       const uint64_t *slot)
{
  reach_tv(w, idx, *slot, HEAP_EDGE_STACK, i);
}

static void walk_thread(struct walk *w, uint32_t idx, const struct heap_hdr *h)
{
  const struct lj_layout *lay = w->c->lay;
  uint64_t stack = heap_field64(h, lay->L_stack);
  uint64_t top = heap_field64(h, lay->L_top);
  uint32_t ss = heap_field32(h, lay->L_stacksize);
  reach(w, idx, heap_field64(h, lay->L_env), LJ_GCT_TAB, HEAP_EDGE_ENV, 0);
  /* Slots above the two frame-link slots of the bottom frame (LJ_FR2),
   * up to top, as gc_traverse_thread marks them. */
  if (top > stack + 16 && top <= stack + 8ull * ss) {
    uint64_t n = (top - stack) / 8 - 2;
    w->s->objs[idx].entries = (uint32_t)n;
    each_slot(w, idx, stack + 16, 0, cap_entries(w, n), 8, stack_slot, NULL);
  }
}

static void walk_udata(struct walk *w, uint32_t idx, const struct heap_hdr *h)
{
  const struct lj_layout *lay = w->c->lay;
  reach(w, idx, heap_field64(h, lay->ud_metatable), LJ_GCT_TAB, HEAP_EDGE_META,
        0);
  reach(w, idx, heap_field64(h, lay->ud_env), LJ_GCT_TAB, HEAP_EDGE_ENV, 0);
}

/* registry._LOADED, found the way lj_tab_getstr would, by content. */
static uint64_t loaded_table(struct heap_ctx *c, uint64_t reg)
{
  const struct lj_layout *lay = c->lay;
  struct heap_hdr h;
  uint64_t node, nodes[3];
  uint32_t hmask;
  if (heap_read_obj(c, reg, LJ_GCT_TAB, &h)) return 0;
  node = heap_field64(&h, lay->tab_node);
  hmask = heap_field32(&h, lay->tab_hmask);
  for (uint64_t i = 0; i <= hmask && i < 4096; i++) {
    char key[8];
    uint32_t len;
    uint64_t s;
    if (tmem_read(c->mem, node + i * lay->node_size, nodes, 16)) return 0;
    if (tv_gct(nodes[1]) != LJ_GCT_STR || tv_gct(nodes[0]) != LJ_GCT_TAB)
      continue;
    s = nodes[1] & LJ_GC64_PTRMASK;
    if (!tmem_u32(c->mem, s + lay->str_len, &len) && len == 7 &&
        !tmem_read(c->mem, s + lay->str_data, key, 7) &&
        !memcmp(key, "_LOADED", 7))
      return nodes[0] & LJ_GC64_PTRMASK;
  }
  return 0;
}

/* Roots come in two tiers, the second added once the first is walked
 * out: the first root to reach an object names it, and the lasting homes
 * (package.loaded["m"].x reads better than _G.m.x or registry[2]) should
 * name it before a stack slot that holds it for a moment. */
static void add_roots(struct walk *w, int tier)
{
  struct heap_ctx *c = w->c;
  const struct lj_layout *lay = c->lay;
  uint64_t reg = 0, env = 0, gcroot[64];
  uint32_t n = lay->g_ngcroot < 64 ? lay->g_ngcroot : 64;
  if (!tmem_u64(c->mem, c->vm->G + lay->g_registrytv, &reg))
    reg = tv_gct(reg) == LJ_GCT_TAB ? reg & LJ_GC64_PTRMASK : 0;
  tmem_u64(c->mem, c->vm->mainL + lay->L_env, &env);
  if (tier == 1) {
    reach(w, HEAP_NOPARENT, c->vm->mainL, LJ_GCT_THREAD, HEAP_EDGE_ROOT,
          HEAP_ROOT_MAIN);
    if (!tmem_read(c->mem, c->vm->G + lay->g_gcroot, gcroot, 8u * n))
      for (uint32_t i = 0; i < n; i++)
        reach(w, HEAP_NOPARENT, gcroot[i] & LJ_GC64_PTRMASK, 0, HEAP_EDGE_ROOT,
              HEAP_ROOT_VM + i);
    return;
  }
  if (reg)
    reach(w, HEAP_NOPARENT, loaded_table(c, reg), LJ_GCT_TAB, HEAP_EDGE_ROOT,
          HEAP_ROOT_LOADED);
  reach(w, HEAP_NOPARENT, env, LJ_GCT_TAB, HEAP_EDGE_ROOT, HEAP_ROOT_GLOBALS);
  reach(w, HEAP_NOPARENT, reg, LJ_GCT_TAB, HEAP_EDGE_ROOT, HEAP_ROOT_REGISTRY);
}

/* Walks the objects [i, i+k) of the queue: their headers (current ones:
 * tables and stacks move their parts when they grow) and the small parts
 * of tables in two gathers, then their references. */
static void walk_batch(struct walk *w, size_t i, size_t k)
{
  struct heap_snap *s = w->s;
  const struct lj_layout *lay = w->c->lay;
  struct tparts tp[BATCH / 2];
  int pa[BATCH / 2], pn[BATCH / 2];
  gather_reset(&w->hdrs);
  gather_reset(&w->parts);
  for (size_t j = 0; j < k; j++)
    if (gather_add(&w->hdrs, s->objs[i + j].addr,
                   heap_hdr_size(lay, LJ_GCT_STR + s->objs[i + j].type))) {
      w->oom = 1;
      return;
    }
  tmem_gather(w->c->mem, w->hdrs.addrs, w->hdrs.lens, w->hdrs.offs, k,
              w->hdrs.buf, w->hdrs.ok);
  for (size_t j = 0; j < k; j++) {
    struct heap_hdr h;
    pa[j] = pn[j] = -1;
    if (s->objs[i + j].type != HEAP_TAB || !w->hdrs.ok[j]) continue;
    memcpy(h.raw, w->hdrs.buf + w->hdrs.offs[j], w->hdrs.lens[j]);
    if (heap_parse_obj(w->c, s->objs[i + j].addr, LJ_GCT_TAB, &h)) continue;
    table_parts(w, &h, &tp[j]);
    if (tp[j].na && tp[j].na * 8 <= SMALL_PART) {
      pa[j] = (int)w->parts.n;
      if (gather_add(&w->parts, tp[j].array, (uint32_t)tp[j].na * 8))
        pa[j] = -1;
    }
    if (tp[j].nn && tp[j].nn * lay->node_size <= SMALL_PART) {
      pn[j] = (int)w->parts.n;
      if (gather_add(&w->parts, tp[j].node,
                     (uint32_t)tp[j].nn * lay->node_size))
        pn[j] = -1;
    }
  }
  tmem_gather(w->c->mem, w->parts.addrs, w->parts.lens, w->parts.offs,
              w->parts.n, w->parts.buf, w->parts.ok);
  for (size_t j = 0; j < k && !w->oom; j++) {
    struct heap_obj *o = &s->objs[i + j];
    uint32_t idx = (uint32_t)(i + j);
    struct heap_hdr h;
    memcpy(h.raw, w->hdrs.buf + w->hdrs.offs[j], w->hdrs.lens[j]);
    if (!w->hdrs.ok[j] ||
        heap_parse_obj(w->c, o->addr, LJ_GCT_STR + o->type, &h))
      continue; /* gone since it was reached */
    o->held = o->held - o->bytes + h.size;
    o->bytes = h.size;
    switch (o->type) {
    case HEAP_TAB:
      if (pa[j] >= 0 && w->parts.ok[pa[j]])
        tp[j].abuf = w->parts.buf + w->parts.offs[pa[j]];
      if (pn[j] >= 0 && w->parts.ok[pn[j]])
        tp[j].nbuf = w->parts.buf + w->parts.offs[pn[j]];
      walk_table(w, idx, &h, &tp[j]);
      if (s->parts) add_parts(w, idx, &tp[j]);
      break;
    case HEAP_FUNC: walk_func(w, idx, &h); break;
    case HEAP_PROTO: walk_proto(w, idx, &h); break;
    case HEAP_THREAD: walk_thread(w, idx, &h); break;
    case HEAP_UDATA: walk_udata(w, idx, &h); break;
    }
  }
}

/* Sizes the object array and the seen map from the census (plus some
 * growth), so that they need not double, copying, as they fill. A hint:
 * without the memory, they grow as needed. */
static void reserve(struct heap_snap *s)
{
  const struct heap_tally *t = &s->census;
  uint64_t all = 0, containers = t->objects[HEAP_TAB] + t->objects[HEAP_FUNC] +
                                 t->objects[HEAP_PROTO] +
                                 t->objects[HEAP_THREAD] +
                                 t->objects[HEAP_UDATA];
  for (int i = 0; i < HEAP_NTYPES; i++) all += t->objects[i];
  containers += containers / 8 + 64;
  if (containers < HEAP_LEAF &&
      (s->objs = malloc(containers * sizeof(*s->objs))))
    s->capobjs = containers;
  addrmap_reserve(&s->seen, all + all / 16);
}

int heap_graph(struct heap_ctx *c, struct heap_snap *s)
{
  struct walk *w = calloc(1, sizeof(*w));
  size_t i = 0;
  int tier = 0;
  if (!w) {
    die_msg("heap: out of memory");
    return -1;
  }
  w->c = c;
  w->s = s;
  reserve(s);
  add_roots(w, 0);
  while (!w->oom && !s->graph.incomplete) { /* incomplete: at the budget */
    if (i == s->nobjs) flush(w);
    if (i == s->nobjs) {
      if (tier++) break;
      add_roots(w, 1);
      flush(w);
      continue;
    }
    size_t k = s->nobjs - i < BATCH / 2 ? s->nobjs - i : BATCH / 2;
    walk_batch(w, i, k);
    i += k;
  }
  int oom = w->oom;
  free(w->refs.buf);
  free(w->hdrs.buf);
  free(w->parts.buf);
  free(w);
  if (oom) {
    die_msg("heap: out of memory after %zu objects", s->nobjs);
    return -1;
  }
  /* Children come after their parents: one backward pass sums them up. */
  for (size_t j = s->nobjs; j-- > 0;) {
    struct heap_obj *o = &s->objs[j];
    o->retained += o->held;
    if (o->parent != HEAP_NOPARENT) s->objs[o->parent].retained += o->retained;
  }
  return 0;
}

void heap_snap_free(struct heap_snap *s)
{
  free(s->objs);
  addrmap_free(&s->seen);
  memset(s, 0, sizeof(*s));
}
