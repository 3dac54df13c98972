/*
** Census: every object on the GC's lists, by type (lj_gc.c's view).
**
** gc.root links all objects but strings and open upvalues (udata sit
** right after the main thread in it); strings hang off the string hash
** table's chains (an anchor's low bit is a flag); open upvalues are on
** the doubly linked list anchored at g->uvhead; finalizable udata and
** cdata wait on the circular gc.mmudata list. A running target relinks
** and frees objects while we read: a list walk stops at the first
** implausible object and at a cycle (Brent's algorithm: a changing list
** cannot make us loop), and says so.
*/
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "radix.h"

#define STR_SLICE (1u << 22) /* string table anchors walked at a time */
#define STR_WINDOW 65536     /* strings whose headers are gathered at once */
#define CENSUS_TRIES 3       /* walks of a list that changed under us */

/* Walks the list from first along the link at offset link_off until 0 or
 * stop, tallying objects. A broken list ends its own walk only; -1 when
 * the object budget is spent. */
static int walk_list(struct heap_ctx *c, struct heap_tally *t, uint64_t first,
                     uint64_t stop, uint32_t link_off)
{
  uint64_t p = first, saved = 0, power = 1, lam = 0, total = 0;
  for (int i = 0; i < HEAP_NTYPES; i++) total += t->objects[i];
  while (p && p != stop) {
    struct heap_hdr h;
    if (total++ >= c->lim.max_objects) {
      t->incomplete = "stopped at --max-objects";
      return -1;
    }
    if (heap_read_obj(c, p, 0, &h)) {
      /* Freed or relinked under us: what follows can't be trusted. */
      t->skipped++;
      if (!t->incomplete) t->incomplete = "a GC list changed while read";
      return 0;
    }
    t->objects[h.gct - LJ_GCT_STR]++;
    t->bytes[h.gct - LJ_GCT_STR] += h.size;
    if (p == saved) {
      if (!t->incomplete) t->incomplete = "a GC list changed into a cycle";
      return 0;
    }
    if (++lam == power) {
      saved = p;
      power *= 2;
      lam = 0;
    }
    p = link_off ? heap_field64(&h, link_off) : h.nextgc;
    p &= LJ_GC64_PTRMASK;
  }
  return 0;
}

/* Gathers of string headers, a window of them at a time. */
struct strwin {
  uint32_t lens[STR_WINDOW];
  size_t offs[STR_WINDOW];
  unsigned char ok[STR_WINDOW];
  unsigned char raw[];
};

/* Counts the strings at cur[0..k) (sorted), their headers gathered a
 * window at a time, and leaves in cur[] the next link of each chain (0
 * where it ends). Returns -1 at --max-objects. */
static int count_links(struct heap_ctx *c, struct heap_tally *t,
                       struct strwin *win, uint64_t *cur, size_t k,
                       uint64_t *total)
{
  uint32_t hs = heap_hdr_size(c->lay, LJ_GCT_STR);
  for (size_t w = 0; w < k; w += STR_WINDOW) {
    size_t n = k - w < STR_WINDOW ? k - w : STR_WINDOW;
    tmem_gather(c->mem, cur + w, win->lens, win->offs, n, win->raw, win->ok);
    for (size_t j = 0; j < n; j++) {
      struct heap_hdr h;
      if ((*total)++ >= c->lim.max_objects) {
        t->incomplete = "stopped at --max-objects";
        return -1;
      }
      memcpy(h.raw, win->raw + win->offs[j], hs);
      if (!win->ok[j] || heap_parse_obj(c, cur[w + j], LJ_GCT_STR, &h)) {
        /* Freed under us: this chain ends here, the others go on. */
        t->skipped++;
        if (!t->incomplete) t->incomplete = "a GC list changed while read";
        cur[w + j] = 0;
        continue;
      }
      t->objects[HEAP_STR]++;
      t->bytes[HEAP_STR] += h.size;
      cur[w + j] = h.nextgc;
    }
  }
  return 0;
}

/* The chains anchored at the n GCRefs at anchors. Returns 0, -1 at
 * --max-objects, 1 when the anchors are unreadable. */
static int walk_chains(struct heap_ctx *c, struct heap_tally *t,
                       uint64_t anchors, size_t n, uint64_t *total)
{
  uint32_t hs = heap_hdr_size(c->lay, LJ_GCT_STR);
  uint64_t *cur = malloc(8 * n), *tmp = malloc(8 * n);
  struct strwin *win = malloc(sizeof(*win) + (size_t)hs * STR_WINDOW);
  size_t rounds = 0;
  int rc = 0;
  if (!cur || !tmp || !win || tmem_read(c->mem, anchors, cur, 8 * n)) {
    t->incomplete = "string table unreadable";
    rc = 1;
    goto out;
  }
  for (size_t i = 0; i < STR_WINDOW; i++) {
    win->lens[i] = hs;
    win->offs[i] = (size_t)hs * i;
  }
  /* cur holds the next string of every live chain, compacted each round
   * (an anchor's low bit is a flag, not part of the pointer), sorted by
   * address: a round's windows sweep the heap once. */
  for (size_t live = n, k, j; rc == 0; rounds++, live = k) {
    uint64_t *sorted;
    for (j = k = 0; j < live; j++)
      if ((cur[j] &= ~1ull & LJ_GC64_PTRMASK)) cur[k++] = cur[j];
    if (!k) break;
    if (rounds > 100000) { /* chains are ~1 long: this one is looping */
      t->incomplete = "a GC list changed into a cycle";
      break;
    }
    if ((sorted = u64_sort(cur, tmp, k)) != cur) {
      tmp = cur;
      cur = sorted;
    }
    rc = count_links(c, t, win, cur, k, total);
  }
out:
  free(cur);
  free(tmp);
  free(win);
  return rc;
}

/* The string chains, a link of every chain at a time: strings lie all over
 * the heap in hash order, so their headers are gathered (1024 ranges per
 * syscall, neighbours merged) rather than read through the cache. The
 * table is taken a slice at a time, to bound the memory this takes. */
static int walk_strings(struct heap_ctx *c, struct heap_tally *t)
{
  const struct lj_layout *lay = c->lay;
  uint64_t tab, total = 0;
  uint32_t mask;
  int rc = 0;
  for (int i = 0; i < HEAP_NTYPES; i++) total += t->objects[i];
  if (tmem_u64(c->mem, c->vm->G + lay->g_strhash, &tab) ||
      tmem_u32(c->mem, c->vm->G + lay->g_strmask, &mask) ||
      mask >= (1u << 28)) {
    t->incomplete = "string table unreadable";
    return 0;
  }
  for (uint64_t first = 0; first <= mask && rc == 0; first += STR_SLICE)
    rc = walk_chains(
        c, t, tab + 8 * first,
        mask + 1 - first < STR_SLICE ? mask + 1 - first : STR_SLICE, &total);
  /* An unreadable slice (1): the table is one block, so the next slices
   * are unreadable too; a garbage mask would make that 256 of them. */
  return rc > 0 ? 0 : rc;
}

static int walk_root(struct heap_ctx *c, struct heap_tally *t)
{
  uint64_t root;
  if (tmem_u64(c->mem, c->vm->G + c->lay->g_gc_root, &root)) {
    t->incomplete = "gc.root unreadable";
    return 0;
  }
  return walk_list(c, t, root, 0, 0);
}

static uint64_t tally_objects(const struct heap_tally *t)
{
  uint64_t n = 0;
  for (int i = 0; i < HEAP_NTYPES; i++) n += t->objects[i];
  return n;
}

/* Runs one part of the census again, from fresh memory, while the heap
 * changes under it (the GC freed what we stood on, the string table was
 * resized), keeping the fullest count. */
static int with_retries(struct heap_ctx *c, struct heap_tally *t,
                        int (*part)(struct heap_ctx *, struct heap_tally *))
{
  struct heap_tally best = *t;
  int rc = 0;
  for (int i = 0; i < CENSUS_TRIES; i++) {
    struct heap_tally try = *t;
    try.incomplete = NULL;
    if (i) tmem_flush(c->mem);
    rc = part(c, &try);
    if (i == 0 || tally_objects(&try) > tally_objects(&best)) best = try;
    if (!try.incomplete || rc) break;
  }
  if (t->incomplete && !best.incomplete) best.incomplete = t->incomplete;
  *t = best;
  return rc;
}

void heap_census(struct heap_ctx *c, struct heap_snap *s)
{
  const struct lj_layout *lay = c->lay;
  struct heap_tally *t = &s->census;
  uint64_t mm, uvhead = c->vm->G + lay->g_uvhead, uvfirst;
  if (with_retries(c, t, walk_root) || with_retries(c, t, walk_strings) ||
      tmem_u64(c->mem, uvhead + lay->uv_next, &uvfirst) ||
      walk_list(c, t, uvfirst, uvhead, lay->uv_next))
    return;
  if (!tmem_u64(c->mem, c->vm->G + lay->g_gc_mmudata, &mm) && mm) {
    struct heap_hdr h;
    if (!heap_read_obj(c, mm, 0, &h)) {
      t->objects[h.gct - LJ_GCT_STR]++;
      t->bytes[h.gct - LJ_GCT_STR] += h.size;
      walk_list(c, t, h.nextgc, mm, 0);
    }
  }
}
