/*
** luaspy syscalls (see syscalls.h and src/bpf/syscalls.bpf.c).
**
** Counts, total and maximum time come from the kernel's per-syscall
** totals, exact whatever the ring buffer drops; the percentiles, sizes
** and backtraces come from the events received. A backtrace is the whole
** stack (native, Lua); distinct ones are kept once with their frames.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../cmd/common.h"
#include "../output/json.h"
#include "../output/profile.h"
#include "../record/bpfglue.h"
#include "backtraces.h"
#include "session.h"
#include "syscalls.h"
#include "syscalls.skel.h"
#include "sysnames.h"

#define TOP_SYSCALLS 12 /* in the text report, by total time */
#define TOP_BACKTRACES 3
#define BT_DEPTH 14
#define MAX_SPAWNS 1000
#define NBUCKETS 64

struct scdata {
  uint64_t *lat; /* ns, of the events received */
  size_t nlat, cap;
  uint64_t sizes[NBUCKETS]; /* log2 buckets of the size argument */
  int sized;
};

struct spawn {
  long nr;
  uint32_t tid;
  int64_t ret;
  uint32_t bt;
};

struct syscalls {
  const struct syscalls_opts *o;
  struct tsession s;
  struct scdata sc[LS_MAX_SYSCALLS];
  struct btable bts; /* by syscall number */
  struct spawn spawns[MAX_SPAWNS];
  size_t nspawns;
  uint64_t received;
  struct profile *prof; /* with -o */
  const char **names;
  int failed;
};

static int is_spawn(long nr)
{
  static const char *const spawners[] = {"clone",  "clone3",   "fork", "vfork",
                                         "execve", "execveat", NULL};
  const char *name = sysname(nr);
  for (const char *const *s = spawners; name && *s; s++)
    if (!strcmp(name, *s)) return 1;
  return 0;
}

static int add_latency(struct scdata *d, uint64_t ns)
{
  if (d->nlat == d->cap) {
    size_t cap = d->cap ? 2 * d->cap : 256;
    uint64_t *nl = realloc(d->lat, cap * sizeof(*nl));
    if (!nl) return -1;
    d->lat = nl;
    d->cap = cap;
  }
  d->lat[d->nlat++] = ns;
  return 0;
}

static int bucket(uint64_t v)
{
  return v ? 64 - __builtin_clzll(v) - 1 : 0;
}

static void on_event(const struct ls_event *ev, size_t size, void *arg)
{
  struct syscalls *sy = arg;
  long nr = (long)ev->h.arg, id;
  size_t n;
  (void)size;
  if (nr < 0 || nr >= LS_MAX_SYSCALLS) return;
  sy->received++;
  n = ttarget_stack(&sy->s.tt, ev, 0);
  if ((id = btable_add(&sy->bts, nr, sy->s.tt.frames, n)) < 0) goto fail;
  if (ev->h.type == LS_EV_SYSCALL) {
    struct scdata *d = &sy->sc[nr];
    sy->bts.bts[id].count++;
    sy->bts.bts[id].ns += ev->h.value;
    if (add_latency(d, ev->h.value)) goto fail;
    if (ev->h.arg2 > 0) {
      d->sized = 1;
      d->sizes[bucket((uint64_t)ev->h.arg2)]++;
    }
    if (sy->prof) {
      char leaf[64];
      uint64_t us = (ev->h.value + 500) / 1000;
      for (size_t i = 0; i < n; i++) sy->names[i] = sy->s.tt.frames[i].str;
      snprintf(leaf, sizeof(leaf), "syscall:%s",
               sysname(nr) ? sysname(nr) : "?");
      sy->names[n] = leaf;
      if (us && profile_add(sy->prof, sy->names, n + 1, us)) goto fail;
    }
  } else if (ev->h.type == LS_EV_EXEC) {
    sy->bts.bts[id].count++;
  } else {
    return;
  }
  /* Processes started: clone and fork in the parent (ret = the child),
   * exec as it begins. */
  if (is_spawn(nr) && (ev->h.type == LS_EV_EXEC || ev->h.ret > 0) &&
      sy->nspawns < MAX_SPAWNS)
    sy->spawns[sy->nspawns++] = (struct spawn){
        .nr = nr, .tid = ev->h.tid, .ret = ev->h.ret, .bt = (uint32_t)id};
  return;
fail:
  sy->failed = 1;
  *sy->o->stop = 1;
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The q-quantile of sorted latencies, in microseconds; -1 if none. */
static double quantile(const struct scdata *d, double q)
{
  size_t i;
  if (!d->nlat) return -1;
  i = (size_t)(q * (double)(d->nlat - 1) + 0.5);
  return d->lat[i] / 1e3;
}

static void write_json(struct syscalls *sy, const struct ls_scstat *st,
                       const uint64_t c[LS_NTCOUNTERS])
{
  struct json *j = json_new(stdout);
  size_t top[TOP_BACKTRACES];
  json_begin_obj(j);
  json_key(j, "pid");
  json_int(j, sy->o->pid);
  json_key(j, "events");
  json_uint(j, sy->received);
  json_key(j, "lost");
  json_uint(j, c[LS_TC_LOST]);
  json_key(j, "syscalls");
  json_begin_arr(j);
  for (long nr = 0; nr < LS_MAX_SYSCALLS; nr++) {
    const struct scdata *d = &sy->sc[nr];
    if (!st[nr].count) continue;
    json_begin_obj(j);
    json_key(j, "name");
    json_str(j, sysname(nr));
    json_key(j, "nr");
    json_int(j, nr);
    json_key(j, "count");
    json_uint(j, st[nr].count);
    json_key(j, "total_us");
    json_double(j, st[nr].total_ns / 1e3);
    json_key(j, "p50_us");
    if (d->nlat)
      json_double(j, quantile(d, 0.5));
    else
      json_null(j);
    json_key(j, "p99_us");
    if (d->nlat)
      json_double(j, quantile(d, 0.99));
    else
      json_null(j);
    json_key(j, "max_us");
    json_double(j, st[nr].max_ns / 1e3);
    if (d->sized) {
      json_key(j, "sizes");
      json_begin_arr(j);
      for (int b = 0; b < NBUCKETS; b++) {
        if (!d->sizes[b]) continue;
        json_begin_obj(j);
        json_key(j, "min");
        json_uint(j, b ? 1ull << b : 0);
        json_key(j, "max");
        json_uint(j, b < 63 ? (2ull << b) - 1 : UINT64_MAX);
        json_key(j, "count");
        json_uint(j, d->sizes[b]);
        json_end_obj(j);
      }
      json_end_arr(j);
    }
    json_key(j, "backtraces");
    json_begin_arr(j);
    size_t nt = btable_top(&sy->bts, nr, top, TOP_BACKTRACES);
    for (size_t k = 0; k < nt; k++) {
      const struct bt *b = &sy->bts.bts[top[k]];
      json_begin_obj(j);
      json_key(j, "count");
      json_uint(j, b->count);
      json_key(j, "total_us");
      json_double(j, b->ns / 1e3);
      json_key(j, "frames");
      bt_json_frames(j, b);
      json_end_obj(j);
    }
    json_end_arr(j);
    json_end_obj(j);
  }
  json_end_arr(j);
  json_key(j, "spawns");
  json_begin_arr(j);
  for (size_t i = 0; i < sy->nspawns; i++) {
    const struct spawn *sp = &sy->spawns[i];
    const struct bt *b = &sy->bts.bts[sp->bt];
    const struct tframe *site = bt_lua_site(b);
    json_begin_obj(j);
    json_key(j, "syscall");
    json_str(j, sysname(sp->nr));
    json_key(j, "tid");
    json_int(j, sp->tid);
    json_key(j, "child");
    if (sp->ret > 0)
      json_int(j, sp->ret);
    else
      json_null(j);
    json_key(j, "site");
    tframe_json_site(j, site);
    json_key(j, "frames");
    bt_json_frames(j, b);
    json_end_obj(j);
  }
  json_end_arr(j);
  json_end_obj(j);
  fputc('\n', stdout);
  json_done(j);
  json_free(j);
}

static void write_text(struct syscalls *sy, const struct ls_scstat *st,
                       const uint64_t c[LS_NTCOUNTERS])
{
  FILE *f = stdout;
  long order[LS_MAX_SYSCALLS];
  size_t n = 0, top[TOP_BACKTRACES];
  for (long nr = 0; nr < LS_MAX_SYSCALLS; nr++)
    if (st[nr].count) order[n++] = nr;
  for (size_t i = 1; i < n; i++) /* by total time, insertion sort */
    for (size_t k = i;
         k > 0 && st[order[k]].total_ns > st[order[k - 1]].total_ns; k--) {
      long t = order[k];
      order[k] = order[k - 1];
      order[k - 1] = t;
    }
  fprintf(f,
          "system calls of process %d (%llu events with stacks, %llu lost)\n",
          (int)sy->o->pid, (unsigned long long)sy->received,
          (unsigned long long)c[LS_TC_LOST]);
  fprintf(f, "%-18s %10s %12s %10s %10s %10s\n", "syscall", "count", "total ms",
          "p50 us", "p99 us", "max us");
  for (size_t i = 0; i < n; i++) {
    long nr = order[i];
    fprintf(f, "%-18s %10llu %12.3f %10.1f %10.1f %10.1f\n",
            sysname(nr) ? sysname(nr) : "?", (unsigned long long)st[nr].count,
            st[nr].total_ns / 1e6, quantile(&sy->sc[nr], 0.5),
            quantile(&sy->sc[nr], 0.99), st[nr].max_ns / 1e3);
  }
  for (size_t i = 0; i < n && i < TOP_SYSCALLS; i++) {
    long nr = order[i];
    const struct scdata *d = &sy->sc[nr];
    size_t nt = btable_top(&sy->bts, nr, top, TOP_BACKTRACES);
    fprintf(f, "\n%s: top backtraces, innermost frame first\n", sysname(nr));
    for (size_t k = 0; k < nt; k++) {
      fprintf(f, "    %llu calls, %.3f ms:\n",
              (unsigned long long)sy->bts.bts[top[k]].count,
              sy->bts.bts[top[k]].ns / 1e6);
      bt_print(f, &sy->bts.bts[top[k]], "        ", BT_DEPTH);
    }
    if (d->sized) {
      fprintf(f, "    sizes:\n");
      for (int b = 0; b < NBUCKETS; b++)
        if (d->sizes[b])
          fprintf(f, "      [%llu, %llu] %llu\n",
                  (unsigned long long)(b ? 1ull << b : 0),
                  (unsigned long long)(b < 63 ? (2ull << b) - 1 : UINT64_MAX),
                  (unsigned long long)d->sizes[b]);
    }
  }
  fprintf(f, "\nprocesses started: %zu\n", sy->nspawns);
  for (size_t i = 0; i < sy->nspawns; i++) {
    const struct spawn *sp = &sy->spawns[i];
    const struct tframe *site = bt_lua_site(&sy->bts.bts[sp->bt]);
    fprintf(f, "  %s by thread %u", sysname(sp->nr), (unsigned)sp->tid);
    if (sp->ret > 0) fprintf(f, " -> %lld", (long long)sp->ret);
    if (site) fprintf(f, " at %s:%d", site->chunk, site->line);
    fputc('\n', f);
    if (i < 3) bt_print(f, &sy->bts.bts[sp->bt], "        ", BT_DEPTH);
  }
}

static struct luaspy_syscalls *load(const struct syscalls_opts *o)
{
  struct luaspy_syscalls *skel;
  int ncpus = libbpf_num_possible_cpus(), err;
  bpfglue_quiet_libbpf();
  if (!(skel = luaspy_syscalls__open())) {
    die_msg("syscalls: cannot open the BPF programs: %s", strerror(errno));
    return NULL;
  }
  skel->rodata->filtered = o->nfilter > 0;
  bpf_map__set_max_entries(skel->maps.luaspy_scratch,
                           ncpus > 0 ? (__u32)ncpus : 1);
  if ((err = -luaspy_syscalls__load(skel))) goto fail;
  for (int i = 0; i < o->nfilter; i++) {
    __u32 k = (__u32)o->filter[i];
    __u8 one = 1;
    if (bpf_map_update_elem(bpf_map__fd(skel->maps.luaspy_wanted), &k, &one,
                            BPF_ANY)) {
      err = errno;
      goto fail;
    }
  }
  if ((err = -luaspy_syscalls__attach(skel))) goto fail;
  return skel;
fail:
  die_msg("syscalls: cannot load the BPF programs: %s%s", strerror(err),
          bpfglue_hint(err));
  luaspy_syscalls__destroy(skel);
  return NULL;
}

int syscalls_run(const struct syscalls_opts *o)
{
  static struct syscalls sy; /* big: per-syscall data and the spawns */
  struct luaspy_syscalls *skel = NULL;
  struct ls_scstat st[LS_MAX_SYSCALLS];
  uint64_t c[LS_NTCOUNTERS];
  int rc = 1;
  memset(&sy, 0, sizeof(sy));
  sy.o = o;
  if (ttarget_open(&sy.s.tt, o->pid, 0)) return 1;
  if (btable_init(&sy.bts) ||
      (o->output &&
       (!(sy.prof = profile_new("us")) ||
        !(sy.names = calloc(TSTACK_MAX + 1, sizeof(*sy.names)))))) {
    die_msg("out of memory");
    goto out;
  }
  if (!(skel = load(o))) goto out;
  sy.s.procs_fd = bpf_map__fd(skel->maps.luaspy_procs);
  sy.s.vms_fd = bpf_map__fd(skel->maps.luaspy_vms);
  sy.s.events_fd = bpf_map__fd(skel->maps.luaspy_events);
  sy.s.counts_fd = bpf_map__fd(skel->maps.luaspy_counts);
  sy.s.duration = o->duration;
  sy.s.stop = o->stop;
  sy.s.fn = on_event;
  sy.s.arg = &sy;
  if (tsession_run(&sy.s, "syscalls")) goto out;
  if (sy.failed) {
    die_msg("out of memory");
    goto out;
  }
  tsession_counts(&sy.s, c);
  for (__u32 nr = 0; nr < LS_MAX_SYSCALLS; nr++)
    if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.luaspy_scstats), &nr,
                            &st[nr]))
      memset(&st[nr], 0, sizeof(st[nr]));
  for (long nr = 0; nr < LS_MAX_SYSCALLS; nr++)
    qsort(sy.sc[nr].lat, sy.sc[nr].nlat, sizeof(uint64_t), cmp_u64);
  if (o->json)
    write_json(&sy, st, c);
  else
    write_text(&sy, st, c);
  if (sy.prof) {
    struct render_opts ro = {.title = "luaspy syscalls",
                             .subtitle = "microseconds in system calls"};
    if (profile_write(sy.prof, o->output, o->format, &ro)) goto out;
    if (strcmp(o->output, "-"))
      fprintf(stderr, "luaspy: wrote %s\n", o->output);
  }
  rc = 0;
out:
  luaspy_syscalls__destroy(skel);
  for (long nr = 0; nr < LS_MAX_SYSCALLS; nr++) free(sy.sc[nr].lat);
  btable_free(&sy.bts);
  free(sy.names);
  profile_free(sy.prof);
  ttarget_close(&sy.s.tt);
  return rc;
}
