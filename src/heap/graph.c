/*
** Graph: a breadth-first walk from the roots, recording for every object
** the edge it was first reached by.
**
** Reading the target is what costs (see tmem.c), so nothing is read one
** object at a time, and nothing twice: a container (table, function,
** prototype, thread, userdata) is queued as soon as a reference to it is
** found, and read when its turn comes, 512 at a time: their headers in
** one gather (then validated, and current: tables and stacks move their
** parts as they grow) with the bytes after them, where small parts often
** are, then the other small parts in a second gather (table array and
** hash parts, function upvalues, prototype constants). Leaves (strings,
** cdata, upvalues) and objects of unknown type are checked 1024 at a
** time, their headers gathered likewise unless their parent's read had
** them. Big arrays, hash parts and stacks are read in 1 MiB chunks.
*/
#include <stdlib.h>
#include <string.h>

#include "../cmd/common.h"
#include "heap.h"

#define CHUNK (1u << 20) /* bytes per read of an array, node part, stack */
#define BATCH 1024       /* ranges gathered per syscall */
#define SMALL_PART 4096  /* parts up to this size are gathered too */
#define BELOW 8          /* bytes below a cdata: a GCcdataVar's size */
/* Bytes read past the header of a table or function: the parts of a
 * table made by a constructor, a closure's upvalues, often lie right
 * after it, and come with it then. */
#define TAIL 448

/* GC object tags of TValues (GC64: the top 17 bits); others are not. */
static int tv_gct(uint64_t v)
{
  uint32_t tag = (uint32_t)(v >> 47);
  if (tag < LJ_TAG_UDATA || tag > LJ_TAG_STR || tag == 0x1fffa) return 0;
  return (int)(~tag & 0xff);
}

static int is_leaf(int gct)
{
  return gct == LJ_GCT_STR || gct == LJ_GCT_UPVAL || gct == LJ_GCT_CDATA ||
         gct == LJ_GCT_TRACE;
}

/* A reference to a leaf (marked seen already), or to an object of
 * unknown type (gct 0), to be checked against the target in a batch. */
struct pending {
  uint64_t addr, key;
  uint32_t parent;
  uint8_t gct, edge;
};

/* Ranges to gather in one go: headers of a batch, or small parts. */
struct gather {
  uint64_t addrs[BATCH];
  uint32_t lens[BATCH];
  size_t offs[BATCH];
  unsigned char ok[BATCH];
  unsigned char *buf;
  size_t n, used, cap;
};

/* A table's parts: array (8-byte TValues) and hash nodes. */
struct tparts {
  uint64_t array, node, na, nn;     /* addresses, slots to read */
  const unsigned char *abuf, *nbuf; /* gathered copies, or NULL */
};

/* One object of walk_batch's, between its two gathers. */
struct item {
  struct heap_hdr h;
  int ok;                     /* its header passed validation */
  const unsigned char *in[2]; /* its parts, read with the header, or NULL */
  int part[2];                /* else its ranges in walk.parts, -1 for none */
  struct tparts tp;           /* a table's parts */
  uint32_t nconsts;           /* a prototype's GC constants to read */
};

/* An upvalue's value, to reach through the closure that reached the
 * upvalue first. */
struct upvalue {
  uint64_t tv;
  uint32_t parent, n;
};

struct walk {
  struct heap_ctx *c;
  struct heap_snap *s;
  uint64_t total; /* objects reached */
  int oom;
  struct pending pend[BATCH];
  size_t npend;
  struct gather refs, hdrs, parts;
  size_t first;         /* objs[first] is the object of hdrs' first range */
  unsigned char *chunk; /* CHUNK bytes for each_slot, made on first use */
  struct item items[BATCH / 2];
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

static void gather_run(struct walk *w, struct gather *g)
{
  tmem_gather(w->c->mem, g->addrs, g->lens, g->offs, g->n, g->buf, g->ok);
}

/* Range i of g as read, or NULL if it could not be. */
static const unsigned char *gathered(const struct gather *g, int i)
{
  return i >= 0 && g->ok[i] ? g->buf + g->offs[i] : NULL;
}

static void tally(struct heap_tally *t, const struct heap_hdr *h)
{
  t->objects[h->gct - LJ_GCT_STR]++;
  t->bytes[h->gct - LJ_GCT_STR] += h->size;
}

static int over_budget(struct walk *w)
{
  if (w->total < w->c->lim.max_objects) return 0;
  w->s->graph.incomplete = "stopped at --max-objects";
  return 1;
}

static int grow_objs(struct heap_snap *s)
{
  size_t cap = s->capobjs ? s->capobjs * 2 : 4096;
  struct heap_obj *n = realloc(s->objs, cap * sizeof(*n));
  if (!n) return -1;
  s->objs = n;
  s->capobjs = cap;
  return 0;
}

/* Queues the object at addr (of type gct, read and checked when walked)
 * as reached from parent, unless it was reached before. */
static void add_obj(struct walk *w, uint32_t parent, uint64_t addr, int gct,
                    int edge, uint64_t key)
{
  struct heap_snap *s = w->s;
  struct heap_obj *o;
  int rc;
  if ((s->nobjs == s->capobjs && grow_objs(s)) || s->nobjs >= HEAP_LEAF) {
    w->oom = 1;
    return;
  }
  /* Marked now; given its index in seen once the walk is done (see
   * index_objs). */
  if ((rc = addrmap_add(&s->seen, addr, HEAP_LEAF))) {
    if (rc < 0) w->oom = 1;
    return;
  }
  if (over_budget(w)) {
    addrmap_del(&s->seen, addr);
    return;
  }
  o = &s->objs[s->nobjs++];
  memset(o, 0, sizeof(*o));
  o->addr = addr;
  o->key = key;
  o->parent = parent;
  o->type = (uint8_t)(gct - LJ_GCT_STR);
  o->edge = (uint8_t)edge;
  w->total++;
}

/* Counts the leaf h at addr (marked seen) in its parent's bytes. */
static void add_leaf(struct walk *w, uint32_t parent, uint64_t addr,
                     const struct heap_hdr *h)
{
  if (over_budget(w)) {
    addrmap_del(&w->s->seen, addr);
    return;
  }
  w->s->objs[parent].held += h->size;
  w->total++;
  tally(&w->s->graph, h);
}

/* Whether the object at addr, of type gct, reached from parent, is to
 * be queued (rather than counted in its parent's bytes): containers, and
 * leaves that are roots (metamethod names), to have a path of their own. */
static int queued(uint32_t parent, int gct)
{
  return !is_leaf(gct) || parent == HEAP_NOPARENT;
}

/* The object of a pending reference passed validation as h. */
static void found(struct walk *w, const struct pending *p,
                  const struct heap_hdr *h)
{
  int rc;
  if (queued(p->parent, h->gct)) {
    add_obj(w, p->parent, p->addr, h->gct, p->edge, p->key);
    return;
  }
  /* A leaf of unknown type was not marked yet. */
  if (!p->gct && (rc = addrmap_add(&w->s->seen, p->addr, HEAP_LEAF))) {
    if (rc < 0) w->oom = 1;
    return;
  }
  add_leaf(w, p->parent, p->addr, h);
}

/* The value an upvalue h at addr holds: in itself once closed, on a
 * stack while open. 0 if unreadable. */
static uint64_t upvalue_tv(struct walk *w, uint64_t addr,
                           const struct heap_hdr *h)
{
  const struct lj_layout *lay = w->c->lay;
  uint64_t v = heap_field64(h, lay->uv_v), tv;
  if (v >= addr && v + 8 <= addr + lay->uv_size)
    return lj_get_u64(h->raw, (uint32_t)(v - addr));
  return tmem_u64(w->c->mem, v, &tv) ? 0 : tv;
}

static void reach_tv(struct walk *w, uint32_t parent, uint64_t tv, int edge,
                     uint64_t key);

/* The bytes [addr, addr+len), if they were read with the header of
 * parent (in the batch being walked): a table's strings often follow it. */
static const unsigned char *read_with(const struct walk *w, uint32_t parent,
                                      uint64_t addr, uint32_t len)
{
  const struct gather *g = &w->hdrs;
  size_t j = (size_t)parent - w->first;
  if (parent == HEAP_NOPARENT || parent < w->first || j >= g->n || !g->ok[j] ||
      addr < g->addrs[j] || addr - g->addrs[j] + len > g->lens[j])
    return NULL;
  return g->buf + g->offs[j] + (addr - g->addrs[j]);
}

/* Bytes to check of a pending reference's object: its header (an
 * unknown type's largest one); a cdata's come after the 8 below it. */
static uint32_t check_len(const struct lj_layout *lay, const struct pending *p)
{
  return p->gct ? heap_hdr_size(lay, p->gct)
                : (uint32_t)sizeof(((struct heap_hdr *)0)->raw);
}

static uint32_t check_below(const struct pending *p)
{
  return p->gct == LJ_GCT_CDATA ? BELOW : 0;
}

/* Checks the pending references against the target: their headers in
 * one gather (those not read with their parent's), single reads only for
 * what that could not read. */
static void flush(struct walk *w)
{
  const struct lj_layout *lay = w->c->lay;
  struct gather *g = &w->refs;
  const unsigned char *src[BATCH];
  struct upvalue uvs[BATCH];
  size_t nuvs = 0;
  gather_reset(g);
  for (size_t i = 0; i < w->npend; i++) {
    const struct pending *p = &w->pend[i];
    uint32_t below = check_below(p), len = check_len(lay, p) + below;
    if (!(src[i] = read_with(w, p->parent, p->addr - below, len)) &&
        gather_add(g, p->addr - below, len))
      w->oom = 1;
  }
  if (!w->oom) gather_run(w, g);
  for (size_t i = 0, j = 0; i < w->npend && !w->oom; i++) {
    const struct pending *p = &w->pend[i];
    const unsigned char *at = src[i] ? src[i] : gathered(g, (int)j++);
    uint32_t below = check_below(p);
    struct heap_hdr h;
    if (at) memcpy(h.raw, at + below, check_len(lay, p));
    if (at ? heap_parse_obj_below(w->c, p->addr, p->gct, &h, below ? at : NULL)
           : heap_read_obj(w->c, p->addr, p->gct, &h)) {
      w->s->graph.skipped++;
      if (p->gct) addrmap_del(&w->s->seen, p->addr);
      continue;
    }
    found(w, p, &h);
    if (p->gct == LJ_GCT_UPVAL)
      uvs[nuvs++] = (struct upvalue){upvalue_tv(w, p->addr, &h), p->parent,
                                     (uint32_t)p->key};
  }
  w->npend = 0;
  /* After the batch: these may fill the next one. */
  for (size_t i = 0; i < nuvs; i++)
    reach_tv(w, uvs[i].parent, uvs[i].tv, HEAP_EDGE_UPVAL, uvs[i].n);
}

/* Notes that parent refers to the object at addr (expected type gct, 0
 * for any) by edge/key: a container is queued at once, a leaf or an
 * object of unknown type is checked with the next batch; none twice. */
static void reach(struct walk *w, uint32_t parent, uint64_t addr, int gct,
                  int edge, uint64_t key)
{
  uint32_t idx;
  int rc;
  if (w->oom || !addr) return;
  if (gct && queued(parent, gct)) {
    add_obj(w, parent, addr, gct, edge, key);
    return;
  }
  if (!gct) {
    if (!addrmap_get(&w->s->seen, addr, &idx)) return;
  } else if ((rc = addrmap_add(&w->s->seen, addr, HEAP_LEAF))) {
    if (rc < 0) w->oom = 1;
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
  if (pre) { /* gathered with the batch already */
    for (uint64_t i = done; i < n; i++)
      fn(w, idx, i, (const uint64_t *)(pre + i * stride));
    return n;
  }
  if (!w->chunk && !(w->chunk = malloc(CHUNK))) {
    w->oom = 1;
    return done;
  }
  while (done < n && !w->oom) {
    uint64_t k = n - done < per ? n - done : per;
    if (tmem_read_fresh(w->c->mem, addr + done * stride, w->chunk,
                        (size_t)(k * stride)))
      break;
    for (uint64_t i = 0; i < k; i++)
      fn(w, idx, done + i, (const uint64_t *)(w->chunk + i * stride));
    done += k;
  }
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

/* Where a function's upvalues are: GCRefs of a Lua function, TValues of
 * a C function. */
static uint64_t func_upvalues(const struct lj_layout *lay, uint64_t addr,
                              const struct heap_hdr *h)
{
  return addr + (h->raw[lay->fn_ffid] ? lay->fn_cupvalue : lay->fn_uvptr);
}

static void walk_func(struct walk *w, uint32_t idx, const struct heap_hdr *h,
                      const unsigned char *ups)
{
  const struct lj_layout *lay = w->c->lay;
  uint64_t refs[256];
  uint8_t nup = h->raw[lay->fn_nupvalues];
  reach(w, idx, heap_field64(h, lay->fn_env), LJ_GCT_TAB, HEAP_EDGE_ENV, 0);
  if (nup && !ups) {
    if (tmem_read_fresh(w->c->mem, func_upvalues(lay, w->s->objs[idx].addr, h),
                        refs, 8u * nup))
      nup = 0;
    ups = (const unsigned char *)refs;
  }
  if (h->raw[lay->fn_ffid] != 0) { /* C function */
    for (uint32_t i = 0; i < nup; i++)
      reach_tv(w, idx, lj_get_u64(ups, 8 * i), HEAP_EDGE_CUPVAL, i);
    return;
  }
  reach(w, idx, heap_field64(h, lay->fn_pc) - lay->pt_size, LJ_GCT_PROTO,
        HEAP_EDGE_PROTO, 0);
  /* The upvalue object is a leaf of the first closure reaching it, and
   * its value is reached through that closure (see flush). */
  for (uint32_t i = 0; i < nup; i++)
    reach(w, idx, lj_get_u64(ups, 8 * i), LJ_GCT_UPVAL, HEAP_EDGE_UPVAL, i);
}

/* GC constants are stored below k, as GCRefs (proto_kgc(pt, ~i)). */
static uint64_t proto_consts(const struct lj_layout *lay,
                             const struct heap_hdr *h, uint32_t n)
{
  return heap_field64(h, lay->pt_k) - 8ull * n;
}

static void walk_proto(struct walk *w, uint32_t idx, const struct heap_hdr *h,
                       uint32_t n, const unsigned char *consts)
{
  const struct lj_layout *lay = w->c->lay;
  unsigned char *refs = NULL;
  reach(w, idx, heap_field64(h, lay->pt_chunkname), LJ_GCT_STR, HEAP_EDGE_CONST,
        0);
  if (n && !consts) {
    if (!(refs = malloc(8ull * n)) ||
        tmem_read_fresh(w->c->mem, proto_consts(lay, h, n), refs, 8ull * n))
      n = 0;
    consts = refs;
  }
  for (uint32_t i = 0; i < n; i++)
    reach(w, idx, lj_get_u64(consts, 8 * (n - 1 - i)) & LJ_GC64_PTRMASK, 0,
          HEAP_EDGE_CONST, i);
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

/* The object at idx failed validation when its turn came. */
static void gone(struct walk *w, uint32_t idx)
{
  struct heap_obj *o = &w->s->objs[idx];
  w->s->graph.skipped++;
  addrmap_del(&w->s->seen, o->addr);
  o->type = HEAP_GONE;
}

/* Bytes read at an object of this type when walked. */
static uint32_t walk_read_size(const struct lj_layout *lay, int type)
{
  uint32_t hs = heap_hdr_size(lay, LJ_GCT_STR + type);
  return type == HEAP_TAB || type == HEAP_FUNC ? hs + TAIL : hs;
}

/* Checks the header of object idx, gathered with what follows it at raw
 * (len bytes; NULL if unreadable, as when it ends a mapping), and notes
 * in it where its parts are: in what was read, or to gather. */
static void plan_item(struct walk *w, uint32_t idx, const unsigned char *raw,
                      uint32_t len, struct item *it)
{
  const struct lj_layout *lay = w->c->lay;
  struct heap_obj *o = &w->s->objs[idx];
  struct heap_hdr *h = &it->h;
  uint32_t hs = heap_hdr_size(lay, LJ_GCT_STR + o->type);
  uint64_t at[2] = {0, 0}, plen[2] = {0, 0};
  it->in[0] = it->in[1] = NULL;
  it->part[0] = it->part[1] = -1;
  if (raw)
    memcpy(h->raw, raw, hs);
  else
    len = tmem_read_fresh(w->c->mem, o->addr, h->raw, hs) ? 0 : hs;
  it->ok = len && !heap_parse_obj(w->c, o->addr, LJ_GCT_STR + o->type, h);
  if (!it->ok) {
    gone(w, idx);
    return;
  }
  o->bytes = (uint32_t)h->size;
  o->held = h->size;
  tally(&w->s->graph, h);
  switch (o->type) {
  case HEAP_TAB:
    table_parts(w, h, &it->tp);
    at[0] = it->tp.array;
    plen[0] = it->tp.na * 8;
    at[1] = it->tp.node;
    plen[1] = it->tp.nn * lay->node_size;
    break;
  case HEAP_FUNC:
    at[0] = func_upvalues(lay, o->addr, h);
    plen[0] = 8u * h->raw[lay->fn_nupvalues];
    break;
  case HEAP_PROTO:
    it->nconsts = (uint32_t)cap_entries(w, heap_field32(h, lay->pt_sizekgc));
    at[0] = proto_consts(lay, h, it->nconsts);
    plen[0] = 8ull * it->nconsts;
    break;
  }
  for (int k = 0; k < 2; k++)
    if (raw && at[k] >= o->addr && at[k] - o->addr + plen[k] <= len) {
      it->in[k] = raw + (at[k] - o->addr);
    } else if (plen[k] && plen[k] <= SMALL_PART) {
      it->part[k] = (int)w->parts.n;
      if (gather_add(&w->parts, at[k], (uint32_t)plen[k])) it->part[k] = -1;
    }
}

/* Part k of an item, as read, or NULL. */
static const unsigned char *item_part(const struct walk *w,
                                      const struct item *it, int k)
{
  return it->in[k] ? it->in[k] : gathered(&w->parts, it->part[k]);
}

static void walk_item(struct walk *w, uint32_t idx, struct item *it)
{
  const unsigned char *p0 = item_part(w, it, 0);
  switch (w->s->objs[idx].type) {
  case HEAP_TAB:
    it->tp.abuf = p0;
    it->tp.nbuf = item_part(w, it, 1);
    walk_table(w, idx, &it->h, &it->tp);
    if (w->s->parts) add_parts(w, idx, &it->tp);
    break;
  case HEAP_FUNC: walk_func(w, idx, &it->h, p0); break;
  case HEAP_PROTO: walk_proto(w, idx, &it->h, it->nconsts, p0); break;
  case HEAP_THREAD: walk_thread(w, idx, &it->h); break;
  case HEAP_UDATA: walk_udata(w, idx, &it->h); break;
  }
}

/* Walks the objects [i, i+k) of the queue: their headers in one gather,
 * their small parts in another, then their references. */
static void walk_batch(struct walk *w, size_t i, size_t k)
{
  struct heap_snap *s = w->s;
  gather_reset(&w->hdrs);
  gather_reset(&w->parts);
  w->first = i;
  for (size_t j = 0; j < k; j++)
    if (gather_add(&w->hdrs, s->objs[i + j].addr,
                   walk_read_size(w->c->lay, s->objs[i + j].type))) {
      w->oom = 1;
      return;
    }
  gather_run(w, &w->hdrs);
  for (size_t j = 0; j < k; j++)
    plan_item(w, (uint32_t)(i + j), gathered(&w->hdrs, (int)j), w->hdrs.lens[j],
              &w->items[j]);
  gather_run(w, &w->parts);
  for (size_t j = 0; j < k && !w->oom; j++)
    if (w->items[j].ok) walk_item(w, (uint32_t)(i + j), &w->items[j]);
}

/* Sizes the object array from the census (plus some growth), so that it
 * need not double, copying, as it fills. A hint: without the memory, it
 * grows as needed. */
static void reserve(struct heap_snap *s)
{
  const struct heap_tally *t = &s->census;
  uint64_t containers = t->objects[HEAP_TAB] + t->objects[HEAP_FUNC] +
                        t->objects[HEAP_PROTO] + t->objects[HEAP_THREAD] +
                        t->objects[HEAP_UDATA];
  containers += containers / 8 + 64;
  if (containers < HEAP_LEAF &&
      (s->objs = malloc(containers * sizeof(*s->objs))))
    s->capobjs = containers;
}

/* Gives the objects walked their index in seen, all at once: millions
 * added one by one, as they are found, would cost a cache miss each. */
static int index_objs(struct heap_snap *s)
{
  enum { PER = 1 << 18 }; /* bounds the memory this takes */
  uint64_t *addrs = malloc(PER * sizeof(*addrs));
  uint32_t *idxs = malloc(PER * sizeof(*idxs));
  size_t walked = 0;
  int rc;
  for (size_t j = 0; j < s->nobjs; j++) walked += s->objs[j].type != HEAP_GONE;
  rc = addrs && idxs && !addrmap_reserve(&s->seen, walked) ? 0 : -1;
  for (size_t j = 0; j < s->nobjs && !rc;) {
    size_t n = 0;
    for (; j < s->nobjs && n < PER; j++)
      if (s->objs[j].type != HEAP_GONE) {
        addrs[n] = s->objs[j].addr;
        idxs[n++] = (uint32_t)j;
      }
    rc = addrmap_add_many(&s->seen, addrs, idxs, n);
  }
  free(addrs);
  free(idxs);
  return rc;
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
  int oom = w->oom || index_objs(s);
  free(w->refs.buf);
  free(w->hdrs.buf);
  free(w->parts.buf);
  free(w->chunk);
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
