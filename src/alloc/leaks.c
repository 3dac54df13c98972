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
#include "hwwatch.h"
#include "ident.h"
#include "leaks.h"

#define CACHE_BYTES (64u << 20) /* target memory cached while walking */
#define MAX_SAMPLES (4u << 20)  /* kept; later ones are only counted */
#define BT_DEPTH 12             /* frames printed per site */
/* A site is reported when this many of its samples, and this share of
 * the sampled bytes, are alive: below, a request in flight at the end or
 * a cache that settled is as likely as a leak. */
#define FLOOR_OBJECTS 3
#define FLOOR_SHARE 0.001
/* Alive samples of a site watched, and the shortest watch. */
#define WATCH_PER_SITE HWWATCH_SLOTS
#define WATCH_MIN_S 0.25

/* What a distinct allocation stack (ls->bts.bts[i] for sites[i]) did. */
struct site {
  uint64_t objs, bytes;           /* sampled */
  uint64_t live_objs, live_bytes; /* ... and alive at the end */
  uint64_t oldest_ts;             /* of its alive samples */
  uint32_t watched, intact;       /* samples watched, and not written */
};

struct sample {
  uint64_t block, bytes, ts;
  struct birth birth; /* read when its window closed */
  uint64_t digest;    /* of the block's object at the first walk */
  uint32_t site;
  int32_t vm;
  uint8_t freed; /* a free of the block, or a new block there, was seen */
  uint8_t alive;
  uint8_t part;    /* the walks found a table part there, not an object */
  uint8_t written; /* a watch saw its type byte written */
};

struct leakset {
  struct btable bts; /* the stacks, by site */
  struct site *sites;
  size_t nsites, capsites;
  struct sample *v;
  size_t n, cap;
  struct addrmap blocks; /* block -> its latest sample, until freed */
  size_t born;           /* samples whose birth marks were read */
  struct tmem *mem;      /* the target, for them */
  uint64_t dropped;      /* samples past MAX_SAMPLES */
  uint64_t now_ns;       /* when judged */
  uint64_t bytes, live, live_bytes;
  uint64_t freed;    /* samples seen freed while the probes were on */
  uint64_t changed;  /* ... found by both walks, but not the same object */
  uint64_t unjudged; /* ... without a birth mark: not judged */
  uint64_t watched, rewritten; /* ... alive, watched, and written there */
  double watch_s;              /* how long they were watched */
  char watch_error[160];       /* why none could be, if so */
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
  addrmap_free(&ls->blocks);
  tmem_free(ls->mem);
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

void leaks_freed(struct leakset *ls, uint64_t block)
{
  uint32_t k;
  if (block && !addrmap_get(&ls->blocks, block, &k)) {
    ls->v[k].freed = 1;
    ls->freed++;
    addrmap_del(&ls->blocks, block);
  }
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
  /* The allocator handed out the block again: it was freed since. */
  leaks_freed(ls, block);
  if (addrmap_add(&ls->blocks, block, (uint32_t)ls->n) < 0) return -1;
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

/* Walk `pass` 0 finds the samples of VM i that the walk reaches and notes
 * what their blocks hold; walk 1 keeps those it reaches again holding the
 * same. */
static int judge_vm(struct leakset *ls, struct ttarget *tt, size_t i, int pass,
                    struct leakrun *r)
{
  struct tmem *mem = ls->mem;
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
    uint64_t d = 0;
    if (smp->vm != (int32_t)i || smp->freed || !smp->birth.known ||
        (pass && !smp->alive))
      continue;
    if (!addrmap_get(&s.seen, smp->block, &idx)) {
      smp->part = 0;
      d = ident_now(&c, smp->block, smp->bytes, 0, &smp->birth);
    } else if (!addrmap_get(&parts, smp->block, &idx)) {
      smp->part = 1;
      d = ident_now(&c, smp->block, smp->bytes, s.objs[idx].addr, &smp->birth);
    }
    if (!pass) {
      smp->alive = d != 0;
      smp->digest = d;
    } else if (d != smp->digest) {
      smp->alive = 0;
      ls->changed += d != 0;
    }
  }
out:
  addrmap_free(&parts);
  heap_snap_free(&s);
  return rc;
}

/* The reader of the target's memory, made at first use. */
static int have_mem(struct leakset *ls, pid_t pid)
{
  if (!ls->mem && !(ls->mem = tmem_new(pid, CACHE_BYTES))) {
    die_msg("leaks: out of memory");
    return -1;
  }
  return 0;
}

int leaks_births(struct leakset *ls, const struct ttarget *tt,
                 uint64_t since_ns)
{
  const struct heap_limits lim = {0};
  struct heap_ctx c;
  int32_t vm = -1;
  if (have_mem(ls, tt->pid)) return -1;
  tmem_flush(ls->mem);
  for (; ls->born < ls->n; ls->born++) {
    struct sample *smp = &ls->v[ls->born];
    if (smp->vm < 0 || (size_t)smp->vm >= tt->t.nvms || smp->ts < since_ns)
      continue;
    if (smp->vm != vm)
      heap_ctx_init(&c, ls->mem, &tt->t.vms[vm = smp->vm], &lim);
    ident_birth(&c, smp->block, smp->bytes, &smp->birth);
  }
  return 0;
}

/* The sites' alive counts from their samples. */
static void tally(struct leakset *ls)
{
  ls->live = ls->live_bytes = 0;
  for (size_t i = 0; i < ls->nsites; i++) {
    ls->sites[i].live_objs = ls->sites[i].live_bytes = 0;
    ls->sites[i].oldest_ts = 0;
  }
  for (size_t k = 0; k < ls->n; k++) {
    const struct sample *smp = &ls->v[k];
    struct site *s = &ls->sites[smp->site];
    if (!smp->alive) continue;
    ls->live++;
    ls->live_bytes += smp->bytes;
    s->live_objs++;
    s->live_bytes += smp->bytes;
    if (!s->oldest_ts || smp->ts < s->oldest_ts) s->oldest_ts = smp->ts;
  }
}

/* A block freed after it was sampled and reused for a live object of the
 * same size would pass one walk: most such reuses are by requests in
 * flight, whose objects are gone a moment later, or replaced by the next
 * request's. Two walks, recheck_s apart, must both find a sample holding
 * the same object for it to be alive: what a program still uses changes,
 * what it leaked does not. */
int leaks_judge(struct leakset *ls, struct ttarget *tt, uint64_t now_ns,
                double recheck_s, struct leakrun *r)
{
  int rc = 0;
  if (have_mem(ls, tt->pid)) return -1;
  ls->now_ns = now_ns;
  for (int pass = 0; pass < 2 && !rc; pass++) {
    if (pass) sleep_s(recheck_s);
    for (size_t i = 0; i < tt->t.nvms && !rc; i++)
      rc = judge_vm(ls, tt, i, pass, r);
  }
  tmem_flush(ls->mem); /* its copies of the heap are not needed again */
  for (size_t k = 0; k < ls->n; k++) ls->unjudged += !ls->v[k].birth.known;
  tally(ls);
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

/* The alive object samples to watch: up to WATCH_PER_SITE of each site
 * above the floor, spread over its run, taken in turns over the sites
 * (heaviest first) so that each site has one before any has two. Returns
 * their number in w (room for nsites * WATCH_PER_SITE), 0 when out of
 * memory. */
static size_t watch_list(const struct leakset *ls, uint32_t *w)
{
  size_t nr, n = 0;
  uint32_t *v = ranked(ls, &nr);
  uint32_t *rank = calloc(ls->nsites + 1, sizeof(*rank)); /* 1 + place */
  uint32_t *cnt = calloc(nr + 1, 2 * sizeof(*cnt)), *seen = cnt + nr + 1;
  uint32_t *pick = malloc((nr + 1) * WATCH_PER_SITE * sizeof(*pick));
  if (!v || !rank || !cnt || !pick) goto out;
  for (size_t r = 0; r < nr; r++) rank[v[r]] = (uint32_t)r + 1;
  memset(pick, 0xff, nr * WATCH_PER_SITE * sizeof(*pick));
  for (size_t k = 0; k < ls->n; k++)
    if (ls->v[k].alive && !ls->v[k].part && rank[ls->v[k].site])
      cnt[rank[ls->v[k].site] - 1]++;
  for (size_t k = 0; k < ls->n; k++) {
    uint32_t r = rank[ls->v[k].site] - 1, j;
    if (!ls->v[k].alive || ls->v[k].part || r == UINT32_MAX) continue;
    j = seen[r]++;
    for (uint32_t t = 0; t < WATCH_PER_SITE; t++)
      if (j == (uint64_t)t * cnt[r] / WATCH_PER_SITE) {
        pick[r * WATCH_PER_SITE + t] = (uint32_t)k;
        break;
      }
  }
  for (uint32_t t = 0; t < WATCH_PER_SITE; t++)
    for (size_t r = 0; r < nr; r++)
      if (pick[r * WATCH_PER_SITE + t] != UINT32_MAX)
        w[n++] = pick[r * WATCH_PER_SITE + t];
out:
  free(v);
  free(rank);
  free(cnt);
  free(pick);
  return n;
}

/* Samples that a watch found written: freed or made anew since. A site
 * none of whose watched samples stayed intact churns (the same blocks
 * handed out again and again): none of its samples count. */
static void drop_rewritten(struct leakset *ls)
{
  for (size_t k = 0; k < ls->n; k++) {
    struct sample *smp = &ls->v[k];
    const struct site *s = &ls->sites[smp->site];
    if (smp->written || (s->watched && !s->intact)) smp->alive = 0;
  }
  tally(ls);
}

int leaks_confirm(struct leakset *ls, pid_t pid, double seconds)
{
  uint32_t *w = malloc((ls->nsites + 1) * WATCH_PER_SITE * sizeof(*w));
  size_t n, rounds, most = (size_t)(seconds / WATCH_MIN_S), done = 0;
  if (!w) {
    die_msg("leaks: out of memory");
    return -1;
  }
  n = watch_list(ls, w);
  rounds = (n + HWWATCH_SLOTS - 1) / HWWATCH_SLOTS;
  if (rounds > most) rounds = most ? most : 1;
  for (size_t r = 0; r < rounds && proc_alive(pid); r++) {
    uint64_t addrs[HWWATCH_SLOTS], hits[HWWATCH_SLOTS];
    size_t m = n - done < HWWATCH_SLOTS ? n - done : HWWATCH_SLOTS;
    for (size_t i = 0; i < m; i++)
      addrs[i] = ls->v[w[done + i]].block + IDENT_GCT;
    if (hwwatch_run(pid, addrs, m, seconds / (double)rounds, hits,
                    ls->watch_error, sizeof(ls->watch_error)) < 0)
      break;
    ls->watch_s += seconds / (double)rounds;
    for (size_t i = 0; i < m; i++) {
      struct sample *smp = &ls->v[w[done + i]];
      struct site *s = &ls->sites[smp->site];
      if (hits[i] == UINT64_MAX) continue;
      ls->watched++;
      s->watched++;
      if (hits[i]) {
        smp->written = 1;
        ls->rewritten++;
      } else {
        s->intact++;
      }
    }
    done += m;
  }
  free(w);
  drop_rewritten(ls);
  return 0;
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
  fprintf(f,
          "  not alive: %llu freed while probed, %llu reached by both walks "
          "but changed (reused, or in use)\n",
          (unsigned long long)ls->freed, (unsigned long long)ls->changed);
  if (ls->unjudged)
    fprintf(f,
            "  not judged: %llu made as their window closed (no birth "
            "mark)\n",
            (unsigned long long)ls->unjudged);
  if (ls->watched)
    fprintf(f,
            "  watched %llu alive samples for %.1f s: %llu written there "
            "(freed or reused)\n",
            (unsigned long long)ls->watched, ls->watch_s,
            (unsigned long long)ls->rewritten);
  else if (ls->watch_error[0])
    fprintf(f, "  not watched: %s\n", ls->watch_error);
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
  fprintf(f, "  %7s %8s %10s %8s %6s  %s\n", "share", "objects", "bytes",
          "oldest", "intact", "site");
  for (size_t i = 0; i < n && i < (size_t)r->top; i++) {
    const struct site *s = &ls->sites[v[i]];
    const struct bt *b = &ls->bts.bts[v[i]];
    const struct tframe *at = site_frame(b);
    char intact[24] = "-";
    double p, err;
    share(ls, s, &p, &err);
    if (s->watched)
      snprintf(intact, sizeof(intact), "%u/%u", s->intact, s->watched);
    fprintf(f, "  %6.1f%% %8llu %10llu %7.1fs %6s  ", 100 * p,
            (unsigned long long)s->live_objs, (unsigned long long)s->live_bytes,
            (double)(ls->now_ns - s->oldest_ts) / 1e9, intact);
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
  json_key(j, "freed_allocations");
  json_uint(j, ls->freed);
  json_key(j, "changed_allocations");
  json_uint(j, ls->changed);
  json_key(j, "unjudged_allocations");
  json_uint(j, ls->unjudged);
  json_key(j, "watch_seconds");
  json_double(j, ls->watch_s);
  json_key(j, "watched_allocations");
  json_uint(j, ls->watched);
  json_key(j, "rewritten_allocations");
  json_uint(j, ls->rewritten);
  json_key(j, "watch_error");
  json_str(j, ls->watch_error[0] ? ls->watch_error : NULL);
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
    json_key(j, "watched_objects");
    json_uint(j, s->watched);
    json_key(j, "intact_objects");
    json_uint(j, s->intact);
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
