/*
** Sampled allocations and their liveness (see leaks.h).
*/
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../cmd/common.h"
#include "../heap/heap.h"
#include "../output/json.h"
#include "../output/profile.h"
#include "../trace/backtraces.h"
#include "leaks.h"

#define CACHE_BYTES (64u << 20) /* target memory cached while walking */
#define MAX_SAMPLES (4u << 20)  /* kept; later ones are only counted */
#define BT_DEPTH 12             /* frames printed per site */
/* A site is reported when this many of its samples, and this share of
 * the sampled bytes, are alive: below, a request in flight at the end or
 * a cache that settled is as likely as a leak. */
#define FLOOR_OBJECTS 3
#define FLOOR_SHARE 0.001

/* What a distinct allocation stack (ls->bts.bts[i] for sites[i]) did. */
struct site {
  uint64_t objs, bytes;           /* sampled */
  uint64_t live_objs, live_bytes; /* ... and alive at the end */
  uint64_t oldest_ts;             /* of its alive samples */
};

struct sample {
  uint64_t block, bytes, ts;
  uint32_t site;
  int32_t vm;
  int alive;
};

struct leakset {
  struct btable bts; /* the stacks, by site */
  struct site *sites;
  size_t nsites, capsites;
  struct sample *v;
  size_t n, cap;
  uint64_t dropped; /* samples past MAX_SAMPLES */
  uint64_t now_ns;  /* when judged */
  uint64_t bytes, live, live_bytes;
};

struct leakset *leaks_new(void)
{
  struct leakset *ls = calloc(1, sizeof(*ls));
  if (ls && btable_init(&ls->bts)) {
    free(ls);
    return NULL;
  }
  return ls;
}

void leaks_free(struct leakset *ls)
{
  if (!ls) return;
  btable_free(&ls->bts);
  free(ls->sites);
  free(ls->v);
  free(ls);
}

static int grow(void **v, size_t *cap, size_t need, size_t size)
{
  size_t c = *cap ? *cap : 256;
  void *nv;
  if (need <= *cap) return 0;
  while (c < need) c *= 2;
  if (!(nv = realloc(*v, c * size))) return -1;
  *v = nv;
  *cap = c;
  return 0;
}

int leaks_add(struct leakset *ls, int vm, uint64_t block, uint64_t bytes,
              uint64_t ts, const struct tframe *frames, size_t n)
{
  long id;
  ls->bytes += bytes;
  if (ls->n == MAX_SAMPLES) {
    ls->dropped++;
    return 0;
  }
  if ((id = btable_add(&ls->bts, 0, frames, n)) < 0) return -1;
  if ((size_t)id == ls->nsites) { /* new */
    if (grow((void **)&ls->sites, &ls->capsites, ls->nsites + 1,
             sizeof(*ls->sites)))
      return -1;
    memset(&ls->sites[ls->nsites++], 0, sizeof(*ls->sites));
  }
  ls->sites[id].objs++;
  ls->sites[id].bytes += bytes;
  if (grow((void **)&ls->v, &ls->cap, ls->n + 1, sizeof(*ls->v))) return -1;
  ls->v[ls->n++] = (struct sample){
      .block = block, .bytes = bytes, .ts = ts, .site = (uint32_t)id, .vm = vm};
  return 0;
}

/* A block freed since it was sampled may hold a live object again. The
 * allocator's chunk header (the word before the block, in LuaJIT's own
 * allocator and glibc's: size and 3 flag bits) tells most reuses apart: a
 * block cut to another size is not the one sampled. Chunks are the size
 * asked for plus one word, rounded to 8 (lj_alloc) or 16 (glibc). Blocks
 * of 128 KiB and more are mapped on their own and not checked. */
#define DIRECT_BYTES (128u << 10)

static int same_block(struct tmem *mem, const struct sample *smp)
{
  uint64_t head, size, want8, want16;
  if (smp->bytes >= DIRECT_BYTES) return 1;
  if (tmem_u64(mem, smp->block - 8, &head)) return 0;
  size = head & ~7ull;
  want8 = (smp->bytes + 8 + 7) & ~7ull;
  want16 = (smp->bytes + 8 + 15) & ~15ull;
  return size == (want8 < 32 ? 32 : want8) ||
         size == (want16 < 32 ? 32 : want16);
}

/* Walk `pass` 0 marks the samples of VM i alive that the walk reaches;
 * walk 1 keeps only those it reaches again. */
static int judge_vm(struct leakset *ls, struct ttarget *tt, struct tmem *mem,
                    size_t i, int pass, struct leakrun *r)
{
  const struct heap_limits lim = {.max_objects = 50000000,
                                  .max_entries = 10000000};
  struct heap_ctx c;
  struct heap_snap s = {0};
  struct addrmap parts = {0};
  uint32_t idx;
  int rc = 0;
  tmem_flush(mem);
  heap_ctx_init(&c, mem, &tt->t.vms[i], &lim);
  s.vm = &tt->t.vms[i];
  s.parts = &parts;
  if (heap_graph(&c, &s)) {
    rc = -1;
    goto out;
  }
  r->skipped += s.graph.skipped;
  if (s.graph.incomplete) r->incomplete = s.graph.incomplete;
  for (size_t k = 0; k < ls->n; k++) {
    struct sample *smp = &ls->v[k];
    if (smp->vm != (int32_t)i) continue;
    int found = (!addrmap_get(&s.seen, smp->block, &idx) ||
                 !addrmap_get(&parts, smp->block, &idx)) &&
                same_block(mem, smp);
    smp->alive = pass ? smp->alive && found : found;
  }
out:
  addrmap_free(&parts);
  heap_snap_free(&s);
  return rc;
}

/* A block freed after it was sampled and reused for a live object of the
 * same size would pass one walk: most such reuses are by requests in
 * flight, whose objects are gone a moment later. Two walks, recheck_s
 * apart, must both find a sample for it to be alive. */
int leaks_judge(struct leakset *ls, struct ttarget *tt, uint64_t now_ns,
                double recheck_s, struct leakrun *r)
{
  struct tmem *mem = tmem_new(tt->pid, CACHE_BYTES);
  int rc = 0;
  if (!mem) {
    die_msg("leaks: out of memory");
    return -1;
  }
  ls->now_ns = now_ns;
  for (int pass = 0; pass < 2 && !rc; pass++) {
    if (pass) sleep_s(recheck_s);
    for (size_t i = 0; i < tt->t.nvms && !rc; i++)
      rc = judge_vm(ls, tt, mem, i, pass, r);
  }
  tmem_free(mem);
  for (size_t k = 0; k < ls->n && !rc; k++) {
    const struct sample *smp = &ls->v[k];
    struct site *s = &ls->sites[smp->site];
    if (!smp->alive) continue;
    ls->live++;
    ls->live_bytes += smp->bytes;
    s->live_objs++;
    s->live_bytes += smp->bytes;
    if (!s->oldest_ts || smp->ts < s->oldest_ts) s->oldest_ts = smp->ts;
  }
  return rc;
}

static int above_floor(const struct leakset *ls, const struct site *s)
{
  return s->live_objs >= FLOOR_OBJECTS &&
         (double)s->live_bytes >= FLOOR_SHARE * (double)ls->bytes;
}

static int by_live_bytes(const void *a, const void *b, void *arg)
{
  const struct leakset *ls = arg;
  const struct site *x = &ls->sites[*(const uint32_t *)a],
                    *y = &ls->sites[*(const uint32_t *)b];
  if (x->live_bytes != y->live_bytes)
    return x->live_bytes < y->live_bytes ? 1 : -1;
  return x->live_objs < y->live_objs ? 1 : x->live_objs > y->live_objs ? -1 : 0;
}

/* The sites above the noise floor, heaviest first: an array (free it)
 * and its length in *n; NULL when out of memory. */
static uint32_t *ranked(const struct leakset *ls, size_t *n)
{
  uint32_t *v = malloc((ls->nsites ? ls->nsites : 1) * sizeof(*v));
  *n = 0;
  if (!v) return NULL;
  for (size_t i = 0; i < ls->nsites; i++)
    if (above_floor(ls, &ls->sites[i])) v[(*n)++] = (uint32_t)i;
  qsort_r(v, *n, sizeof(*v), by_live_bytes, (void *)ls);
  return v;
}

/* The innermost Lua or trace frame with a line: where the allocation was
 * made (a trace's line is that of the code it compiled, there). */
static const struct tframe *site_frame(const struct bt *b)
{
  for (size_t i = 0; i < b->n; i++)
    if ((!strcmp(b->frames[i].kind, "lua") ||
         !strcmp(b->frames[i].kind, "trace")) &&
        b->frames[i].line > 0 && b->frames[i].chunk[0])
      return &b->frames[i];
  return NULL;
}

/* Share of the alive sampled bytes, and its standard error as if the
 * samples were independent (windows make them clustered: a floor). */
static void share(const struct leakset *ls, const struct site *s, double *p,
                  double *err)
{
  double k = (double)ls->live;
  *p = ls->live_bytes ? (double)s->live_bytes / (double)ls->live_bytes : 0;
  *err = k > 0 ? sqrt(*p * (1 - *p) / k) : 0;
}

static void print_header(const struct leakset *ls, const struct leakrun *r,
                         FILE *f)
{
  fprintf(f,
          "luaspy leaks: process %d, %.1f s; allocator probes attached %.3f s "
          "in %u windows (%.2f%% of the time)\n",
          (int)r->pid, r->seconds, r->probed_s, r->windows,
          r->seconds > 0 ? 100 * r->probed_s / r->seconds : 0);
  fprintf(f,
          "  sampled %zu allocations, %llu bytes; alive at the end: %llu "
          "(%llu bytes)\n",
          ls->n, (unsigned long long)ls->bytes, (unsigned long long)ls->live,
          (unsigned long long)ls->live_bytes);
  fprintf(f, "  GC heap (g->gc.total, all VMs): %llu -> %llu bytes (%+lld)\n",
          (unsigned long long)r->gc_before, (unsigned long long)r->gc_after,
          (long long)(r->gc_after - r->gc_before));
  if (r->lost || ls->dropped)
    fprintf(f,
            "  lost: %llu events (ring buffer full), %llu samples past "
            "the limit\n",
            (unsigned long long)r->lost, (unsigned long long)ls->dropped);
  if (r->skipped)
    fprintf(f, "  heap objects skipped as inconsistent: %llu\n",
            (unsigned long long)r->skipped);
  if (r->incomplete)
    fprintf(f, "  heap walk incomplete: %s (alive samples undercounted)\n",
            r->incomplete);
}

void leaks_report_text(const struct leakset *ls, const struct leakrun *r,
                       FILE *f)
{
  size_t n;
  uint32_t *v = ranked(ls, &n);
  print_header(ls, r, f);
  if (!v) return;
  if (!n) {
    fprintf(f,
            "no allocation site holds sampled memory above the noise "
            "floor (%d objects and %.1f%% of the sampled bytes)\n",
            FLOOR_OBJECTS, 100 * FLOOR_SHARE);
    free(v);
    return;
  }
  fprintf(f, "\nallocation sites still holding what they allocated, by "
             "sampled bytes alive:\n");
  fprintf(f, "  %7s %8s %10s %8s  %s\n", "share", "objects", "bytes", "oldest",
          "site");
  for (size_t i = 0; i < n && i < (size_t)r->top; i++) {
    const struct site *s = &ls->sites[v[i]];
    const struct bt *b = &ls->bts.bts[v[i]];
    const struct tframe *at = site_frame(b);
    double p, err;
    share(ls, s, &p, &err);
    fprintf(f, "  %6.1f%% %8llu %10llu %7.1fs  ", 100 * p,
            (unsigned long long)s->live_objs, (unsigned long long)s->live_bytes,
            (double)(ls->now_ns - s->oldest_ts) / 1e9);
    if (at)
      fprintf(f, "%s:%d\n", at->chunk, at->line);
    else
      fprintf(f, "%s\n", b->frames[0].str);
    bt_print(f, b, "        ", BT_DEPTH);
  }
  free(v);
}

int leaks_report_json(const struct leakset *ls, const struct leakrun *r,
                      FILE *f)
{
  struct json *j = json_new(f);
  size_t n;
  uint32_t *v = ranked(ls, &n);
  int rc;
  if (!j || !v) {
    json_free(j);
    free(v);
    die_msg("leaks: out of memory");
    return -1;
  }
  json_begin_obj(j);
  json_key(j, "pid");
  json_int(j, r->pid);
  json_key(j, "seconds");
  json_double(j, r->seconds);
  json_key(j, "probed_seconds");
  json_double(j, r->probed_s);
  json_key(j, "windows");
  json_uint(j, r->windows);
  json_key(j, "sampled_allocations");
  json_uint(j, ls->n);
  json_key(j, "sampled_bytes");
  json_uint(j, ls->bytes);
  json_key(j, "alive_allocations");
  json_uint(j, ls->live);
  json_key(j, "alive_bytes");
  json_uint(j, ls->live_bytes);
  json_key(j, "gc_total_before");
  json_uint(j, r->gc_before);
  json_key(j, "gc_total_after");
  json_uint(j, r->gc_after);
  json_key(j, "lost");
  json_uint(j, r->lost + ls->dropped);
  json_key(j, "heap_skipped");
  json_uint(j, r->skipped);
  json_key(j, "heap_incomplete");
  json_str(j, r->incomplete);
  json_key(j, "allocator");
  json_begin_obj(j);
  json_key(j, "object");
  json_str(j, r->alloc_path);
  json_key(j, "offset");
  json_uint(j, r->alloc_offset);
  json_end_obj(j);
  json_key(j, "sites");
  json_begin_arr(j);
  for (size_t i = 0; i < n; i++) {
    const struct site *s = &ls->sites[v[i]];
    const struct bt *b = &ls->bts.bts[v[i]];
    double p, err;
    share(ls, s, &p, &err);
    json_begin_obj(j);
    json_key(j, "site");
    tframe_json_site(j, site_frame(b));
    json_key(j, "alive_objects");
    json_uint(j, s->live_objs);
    json_key(j, "alive_bytes");
    json_uint(j, s->live_bytes);
    json_key(j, "share");
    json_double(j, p);
    json_key(j, "share_stderr");
    json_double(j, err);
    json_key(j, "sampled_objects");
    json_uint(j, s->objs);
    json_key(j, "sampled_bytes");
    json_uint(j, s->bytes);
    json_key(j, "oldest_seconds");
    json_double(j, (double)(ls->now_ns - s->oldest_ts) / 1e9);
    json_key(j, "frames");
    bt_json_frames(j, b);
    json_end_obj(j);
  }
  json_end_arr(j);
  json_end_obj(j);
  fputc('\n', f);
  rc = json_done(j);
  json_free(j);
  free(v);
  return rc ? -1 : 0;
}

int leaks_flame(const struct leakset *ls, const char *path, const char *format)
{
  struct profile *p = profile_new("bytes");
  const char **names = NULL;
  size_t most = 1;
  int rc = -1;
  for (size_t i = 0; i < ls->nsites; i++)
    if (ls->bts.bts[i].n > most) most = ls->bts.bts[i].n;
  if (!p || !(names = malloc(most * sizeof(*names)))) {
    die_msg("leaks: out of memory");
    goto out;
  }
  for (size_t i = 0; i < ls->nsites; i++) {
    const struct site *s = &ls->sites[i];
    const struct bt *b = &ls->bts.bts[i];
    if (!s->live_bytes) continue;
    for (size_t k = 0; k < b->n; k++) names[k] = b->frames[b->n - 1 - k].str;
    if (profile_add(p, names, b->n, s->live_bytes)) goto out;
  }
  if (!profile_total(p)) {
    const char *none = "[no sampled allocation alive]";
    if (profile_add(p, &none, 1, 1)) goto out;
  }
  rc = profile_write(
      p, path, format,
      &(struct render_opts){.title =
                                "Lua allocations still alive (sampled bytes)"});
out:
  free(names);
  profile_free(p);
  return rc;
}
