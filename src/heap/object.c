/*
** One GC object: its header, checked for plausibility, and its size as
** lj_gc.c/lj_*_free count it (GC64 sizes; cdata sizes from the FFI's
** C type table, as lj_cdata_free computes them).
*/
#include <string.h>

#include "heap.h"

#define PTR_OK(p) (((p)&7) == 0 && (p) <= LJ_GC64_PTRMASK)
#define MAX_STR (1ull << 31)   /* LJ_MAX_STR */
#define MAX_ASIZE (1ull << 27) /* LJ_MAX_ASIZE, roughly */
#define MAX_HSIZE (1ull << 26) /* LJ_MAX_HBITS 26 */
#define MAX_STACK (1u << 20)   /* LJ_STACK_MAX plus slack */
#define MAX_PROTO (1ull << 28)
#define MAX_TRACE_PART (1u << 24)

/* CType info: type number in the top 4 bits (lj_ctype.h). */
#define CT_HASSIZE 5 /* CT_ENUM: last type whose size field is its size */
#define CT_ATTRIB 8
#define CDATA_VAR 0x80 /* cdataisv(): variable-size or realigned cdata */

const char *heap_type_name(int type)
{
  static const char *const names[HEAP_NTYPES] = {
      "string", "upvalue", "thread", "prototype", "function",
      "trace",  "cdata",   "table",  "userdata"};
  return type >= 0 && type < HEAP_NTYPES ? names[type] : "?";
}

uint64_t heap_field64(const struct heap_hdr *h, uint32_t off)
{
  return lj_get_u64(h->raw, off);
}

uint32_t heap_field32(const struct heap_hdr *h, uint32_t off)
{
  return lj_get_u32(h->raw, off);
}

void heap_ctx_init(struct heap_ctx *c, struct tmem *mem, const struct lj_vm *vm,
                   const struct heap_limits *lim)
{
  uint64_t cts = 0;
  memset(c, 0, sizeof(*c));
  c->mem = mem;
  c->vm = vm;
  c->lay = vm->lay;
  c->lim = *lim;
  if (!tmem_u64(mem, vm->G + c->lay->g_ctype_state, &cts) && cts && PTR_OK(cts))
    tmem_u64(mem, cts + c->lay->cts_tab, &c->ctype_tab);
}

uint32_t heap_hdr_size(const struct lj_layout *lay, int gct)
{
  switch (gct - LJ_GCT_STR) {
  case HEAP_STR: return lay->str_data;
  case HEAP_UPVAL: return lay->uv_size;
  case HEAP_THREAD: return lay->L_size;
  case HEAP_PROTO: return lay->pt_size;
  case HEAP_FUNC: return lay->fn_cupvalue;
  case HEAP_TRACE: return lay->tr_size;
  case HEAP_CDATA: return lay->cd_size;
  case HEAP_TAB: return lay->tab_size;
  case HEAP_UDATA: return lay->ud_size;
  }
  return 0;
}

/* Payload size of a non-vector cdata: its C type's size, through
 * attribute entries, or a pointer's size for types without one. */
static uint64_t ctype_payload(struct heap_ctx *c, uint16_t id)
{
  const struct lj_layout *lay = c->lay;
  for (int hops = 0; c->ctype_tab && hops < 8; hops++) {
    uint32_t ct[2]; /* info, size */
    if (tmem_read(c->mem, c->ctype_tab + (uint64_t)id * lay->ctype_size, ct,
                  sizeof(ct)))
      break;
    if ((ct[0] >> 28) == CT_ATTRIB) {
      id = (uint16_t)(ct[0] & 0xffff);
      continue;
    }
    return (ct[0] >> 28) <= CT_HASSIZE && ct[1] < (1u << 30) ? ct[1] : 8;
  }
  return 8;
}

/* The same, remembered: a C type keeps its size (types are never freed,
 * their ids never reused). */
static uint64_t cdata_payload(struct heap_ctx *c, uint16_t id)
{
  struct heap_ctype_size *e = &c->ctype_memo[id % HEAP_CTYPE_MEMO];
  if (e->id1 != id + 1u) {
    e->size = (uint32_t)ctype_payload(c, id);
    e->id1 = id + 1u;
  }
  return e->size;
}

static int obj_size(struct heap_ctx *c, uint64_t addr, int type,
                    struct heap_hdr *h, const unsigned char *below)
{
  const struct lj_layout *lay = c->lay;
  switch (type) {
  case HEAP_STR: {
    uint32_t len = heap_field32(h, lay->str_len);
    if (len >= MAX_STR) return -1;
    h->size = lay->str_data + ((len + 4ull) & ~3ull);
    return 0;
  }
  case HEAP_UPVAL:
    if (h->raw[10] > 1) return -1; /* closed: 0 or 1 */
    h->size = lay->uv_size;
    return 0;
  case HEAP_THREAD: {
    uint32_t ss = heap_field32(h, lay->L_stacksize);
    /* The strongest check there is: a thread points back to its VM. */
    if (heap_field64(h, lay->L_glref) != c->vm->G || ss > MAX_STACK) return -1;
    h->size = lay->L_size + 8ull * ss;
    return 0;
  }
  case HEAP_PROTO: {
    uint32_t sz = heap_field32(h, lay->pt_sizept);
    if (sz < lay->pt_size || sz >= MAX_PROTO) return -1;
    h->size = sz;
    return 0;
  }
  case HEAP_FUNC: {
    uint8_t ffid = h->raw[lay->fn_ffid], nup = h->raw[lay->fn_nupvalues];
    if (!PTR_OK(heap_field64(h, lay->fn_env))) return -1;
    h->size =
        ffid == 0 ? lay->fn_uvptr + 8ull * nup : lay->fn_cupvalue + 8ull * nup;
    return 0;
  }
  case HEAP_TRACE: {
    uint32_t nins = heap_field32(h, lay->tr_nins);
    uint32_t nk = heap_field32(h, lay->tr_nk);
    uint32_t nsnapmap = heap_field32(h, lay->tr_nsnapmap);
    uint16_t nsnap;
    memcpy(&nsnap, h->raw + lay->tr_nsnap, 2);
    if (nins < nk || nins - nk > MAX_TRACE_PART || nsnapmap > MAX_TRACE_PART)
      return -1;
    h->size = ((lay->tr_size + 7ull) & ~7ull) +
              (uint64_t)(nins - nk) * lay->irins_size +
              (uint64_t)nsnap * lay->snap_size + 4ull * nsnapmap;
    return 0;
  }
  case HEAP_CDATA: {
    uint16_t id;
    memcpy(&id, h->raw + lay->cd_ctypeid, 2);
    if (h->marked & CDATA_VAR) {
      /* GCcdataVar sits just below: offset u16, extra u16, len u32. */
      uint32_t v[2];
      if (below)
        memcpy(v, below, 8);
      else if (tmem_read(c->mem, addr - 8, v, 8))
        return -1;
      if (v[1] >= MAX_STR) return -1;
      h->size = (uint64_t)v[1] + (v[0] >> 16);
    } else {
      h->size = lay->cd_size + cdata_payload(c, id);
    }
    return 0;
  }
  case HEAP_TAB: {
    int8_t colo = (int8_t)h->raw[lay->tab_colo];
    uint32_t asize = heap_field32(h, lay->tab_asize);
    uint32_t hmask = heap_field32(h, lay->tab_hmask);
    if (asize > MAX_ASIZE || hmask >= MAX_HSIZE || (hmask & (hmask + 1)) ||
        !PTR_OK(heap_field64(h, lay->tab_array)) ||
        !PTR_OK(heap_field64(h, lay->tab_node)) ||
        !PTR_OK(heap_field64(h, lay->tab_metatable)))
      return -1;
    /* lj_tab_free: a colocated array is part of the table's block. */
    h->size = lay->tab_size + (colo ? 8ull * (uint8_t)(colo & 0x7f) : 0) +
              (asize && colo <= 0 ? 8ull * asize : 0) +
              (hmask ? (uint64_t)lay->node_size * (hmask + 1) : 0);
    return 0;
  }
  case HEAP_UDATA: {
    uint32_t len = heap_field32(h, lay->ud_len);
    if (len >= MAX_STR) return -1;
    h->size = lay->ud_size + (uint64_t)len;
    return 0;
  }
  }
  return -1;
}

int heap_parse_obj_below(struct heap_ctx *c, uint64_t addr, int gct,
                         struct heap_hdr *h, const unsigned char *below)
{
  int type;
  memcpy(&h->nextgc, h->raw, 8);
  h->marked = h->raw[8];
  h->gct = h->raw[9];
  type = h->gct - LJ_GCT_STR;
  if ((gct && h->gct != gct) || type < 0 || type >= HEAP_NTYPES ||
      !PTR_OK(h->nextgc))
    return -1;
  return obj_size(c, addr, type, h, below);
}

int heap_parse_obj(struct heap_ctx *c, uint64_t addr, int gct,
                   struct heap_hdr *h)
{
  return heap_parse_obj_below(c, addr, gct, h, NULL);
}

static int read_obj(struct heap_ctx *c, uint64_t addr, int gct,
                    struct heap_hdr *h, int fresh)
{
  int (*rd)(struct tmem *, uint64_t, void *, size_t) =
      fresh ? tmem_read_fresh : tmem_read;
  uint32_t n;
  int whole;
  if (!addr || !PTR_OK(addr)) return -1;
  /* The largest header at once (a lone object: one syscall); near the
   * end of a mapping, only the object's own header. */
  whole = !rd(c->mem, addr, h->raw, sizeof(h->raw));
  if (!whole && rd(c->mem, addr, h->raw, 16)) return -1;
  n = heap_hdr_size(c->lay, h->raw[9]);
  if (!n || n > sizeof(h->raw) ||
      (!whole && n > 16 && rd(c->mem, addr + 16, h->raw + 16, n - 16)))
    return -1;
  return heap_parse_obj(c, addr, gct, h);
}

int heap_read_obj(struct heap_ctx *c, uint64_t addr, int gct,
                  struct heap_hdr *h)
{
  /* A cached block may predate the object (new objects land in memory
   * that was free when the block was copied): check with the target. */
  return read_obj(c, addr, gct, h, 0) && read_obj(c, addr, gct, h, 1) ? -1 : 0;
}
