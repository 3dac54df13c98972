/*
** Identity of the objects in sampled blocks (see ident.h).
*/
#include <string.h>

#include "../luajit/luajit.h"
#include "../output/strmap.h"
#include "ident.h"

/* Bytes of an object, and of each part of a table, that the digest takes;
 * string bytes that the birth mark takes. */
#define DIGEST_BYTES 256
#define BIRTH_STR 64
/* Hash nodes searched for a birth key: a bigger table is given the
 * benefit of the doubt. */
#define KEY_SCAN 4096
#define TV_NIL UINT64_MAX

static uint64_t mix(uint64_t h, uint64_t v)
{
  return (h ^ v) * 0x9e3779b97f4a7c15ull;
}

/* Mixes up to DIGEST_BYTES at addr into h; 0 if they cannot be read. */
static uint64_t mix_bytes(uint64_t h, struct tmem *mem, uint64_t addr,
                          uint64_t len)
{
  unsigned char buf[DIGEST_BYTES];
  if (len > sizeof(buf)) len = sizeof(buf);
  if (len && tmem_read(mem, addr, buf, len)) return 0;
  return mix(h, str_hash((const char *)buf, len)) | 1;
}

/* The bytes LuaJIT allocated for the object in h alone: its size as the
 * GC frees it, but for a table's parts and a thread's stack, blocks of
 * their own. */
static uint64_t object_bytes(const struct lj_layout *lay,
                             const struct heap_hdr *h)
{
  int8_t colo = (int8_t)h->raw[lay->tab_colo];
  switch (h->gct) {
  case LJ_GCT_TAB:
    return lay->tab_size + (colo > 0 ? 8ull * (uint64_t)colo : 0);
  case LJ_GCT_THREAD: return lay->L_size;
  default: return h->size;
  }
}

static uint64_t str_mark(struct heap_ctx *c, uint64_t addr, uint32_t len)
{
  char buf[BIRTH_STR];
  uint32_t n = len < sizeof(buf) ? len : sizeof(buf);
  if (tmem_read(c->mem, addr + c->lay->str_data, buf, n)) return 0;
  return str_hash(buf, n);
}

/* Up to BIRTH_KEYS keys of the first nodes of a hash part of nn nodes. */
static void first_keys(struct heap_ctx *c, uint64_t node, uint64_t nn,
                       uint64_t *id)
{
  size_t k = 0;
  for (uint64_t i = 0; i < nn && i < 2 * BIRTH_KEYS && k < BIRTH_KEYS; i++) {
    uint64_t key;
    if (tmem_u64(c->mem, node + i * c->lay->node_size + 8, &key)) return;
    if (key != TV_NIL) id[k++] = key;
  }
}

/* 1 if every birth key is still a key of the hash part of nn nodes. */
static int has_keys(struct heap_ctx *c, uint64_t node, uint64_t nn,
                    const uint64_t *id)
{
  for (size_t k = 0; k < BIRTH_KEYS && id[k] != TV_NIL; k++) {
    uint64_t i, key = TV_NIL;
    if (nn > KEY_SCAN) return 1;
    for (i = 0; i < nn && key != id[k]; i++)
      if (tmem_u64(c->mem, node + i * c->lay->node_size + 8, &key)) return 0;
    if (key != id[k]) return 0;
  }
  return 1;
}

static uint64_t tab_nodes(const struct lj_layout *lay, const struct heap_hdr *h)
{
  return heap_field32(h, lay->tab_hmask) + 1ull;
}

/* The object at addr if it is one of exactly bytes, else -1. */
static int read_object(struct heap_ctx *c, uint64_t addr, uint64_t bytes,
                       struct heap_hdr *h)
{
  return heap_read_obj(c, addr, 0, h) || object_bytes(c->lay, h) != bytes ? -1
                                                                          : 0;
}

static void mark_clear(struct birth *b)
{
  memset(b, 0, sizeof(*b));
  for (int k = 0; k < BIRTH_KEYS; k++) b->id[k] = TV_NIL;
  b->known = 1;
}

/* The birth mark of the object at addr whose header is h. */
static void object_mark(struct heap_ctx *c, uint64_t addr,
                        const struct heap_hdr *h, struct birth *b)
{
  const struct lj_layout *lay = c->lay;
  uint16_t ctypeid;
  mark_clear(b);
  b->gct = h->gct;
  switch (h->gct) {
  case LJ_GCT_STR:
    b->id[0] = heap_field32(h, lay->str_len);
    b->id[1] = str_mark(c, addr, (uint32_t)b->id[0]);
    break;
  case LJ_GCT_TAB:
    first_keys(c, heap_field64(h, lay->tab_node), tab_nodes(lay, h), b->id);
    break;
  case LJ_GCT_FUNC:
    b->id[0] = heap_field64(h, lay->fn_pc);
    b->id[1] = h->raw[lay->fn_ffid] | (uint64_t)h->raw[lay->fn_nupvalues] << 8;
    break;
  case LJ_GCT_CDATA:
    memcpy(&ctypeid, h->raw + lay->cd_ctypeid, 2);
    b->id[0] = ctypeid;
    break;
  case LJ_GCT_UDATA: b->id[0] = heap_field32(h, lay->ud_len); break;
  }
}

void ident_birth(struct heap_ctx *c, uint64_t addr, uint64_t bytes,
                 struct birth *b)
{
  struct heap_hdr h;
  if (!read_object(c, addr, bytes, &h)) {
    object_mark(c, addr, &h, b);
    return;
  }
  /* No object: a table part, and if a hash part, its first keys. */
  mark_clear(b);
  first_keys(c, addr, bytes / c->lay->node_size, b->id);
}

/* 1 if the object in h can be the one whose birth mark is b: the same
 * mark, but a table may have gained keys since. */
static int same_object(struct heap_ctx *c, uint64_t addr,
                       const struct heap_hdr *h, const struct birth *b)
{
  struct birth now;
  if (b->gct != h->gct) return 0;
  if (h->gct == LJ_GCT_TAB)
    return has_keys(c, heap_field64(h, c->lay->tab_node), tab_nodes(c->lay, h),
                    b->id);
  object_mark(c, addr, h, &now);
  return !memcmp(now.id, b->id, sizeof(now.id));
}

/* What the GC rewrites as it runs is left out: list links and mark bits;
 * a table's gray list link, free slot pointer and metamethod cache. A
 * table's contents are its parts. Threads, prototypes and traces change
 * as they run: only their type counts. */
static uint64_t object_digest(struct heap_ctx *c, uint64_t addr,
                              const struct heap_hdr *h)
{
  const struct lj_layout *lay = c->lay;
  uint64_t d = mix(0xcbf29ce484222325ull, h->gct);
  switch (h->gct) {
  case LJ_GCT_TAB: {
    uint64_t asize = heap_field32(h, lay->tab_asize),
             array = heap_field64(h, lay->tab_array),
             node = heap_field64(h, lay->tab_node);
    d = mix(mix(mix(d, heap_field64(h, lay->tab_metatable)), array), node);
    d = mix(d, asize << 32 | tab_nodes(lay, h));
    d = mix_bytes(d, c->mem, array, 8 * asize);
    return d ? mix_bytes(d, c->mem, node, tab_nodes(lay, h) * lay->node_size)
             : 0;
  }
  case LJ_GCT_FUNC:
    d = mix(mix(d, heap_field64(h, lay->fn_env)),
            h->raw[lay->fn_ffid] | (uint64_t)h->raw[lay->fn_nupvalues] << 8);
    return mix_bytes(d, c->mem, addr + lay->fn_pc, h->size - lay->fn_pc);
  case LJ_GCT_THREAD:
  case LJ_GCT_PROTO:
  case LJ_GCT_TRACE: return d;
  default:
    return mix_bytes(d, c->mem, addr + IDENT_GCT + 1, h->size - IDENT_GCT - 1);
  }
}

/* A table part is the same while the same table holds it, as a part of
 * the size sampled, born no object, with its birth keys still in it. */
static uint64_t part_now(struct heap_ctx *c, uint64_t addr, uint64_t bytes,
                         uint64_t owner, const struct birth *b)
{
  const struct lj_layout *lay = c->lay;
  struct heap_hdr h;
  int array;
  if (heap_read_obj(c, owner, LJ_GCT_TAB, &h)) return 0;
  array = addr == heap_field64(&h, lay->tab_array);
  if (bytes != (array ? 8ull * heap_field32(&h, lay->tab_asize)
                      : lay->node_size * tab_nodes(lay, &h)) ||
      b->gct || (!array && !has_keys(c, addr, tab_nodes(lay, &h), b->id)))
    return 0;
  return mix_bytes(mix(0x84222325cbf29ce4ull, owner), c->mem, addr, bytes);
}

uint64_t ident_now(struct heap_ctx *c, uint64_t addr, uint64_t bytes,
                   uint64_t owner, const struct birth *b)
{
  struct heap_hdr h;
  if (owner) return part_now(c, addr, bytes, owner, b);
  if (read_object(c, addr, bytes, &h) || !same_object(c, addr, &h, b)) return 0;
  return object_digest(c, addr, &h);
}
