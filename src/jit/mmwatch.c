/*
** Loading the syscall tracer and sorting its events.
**
** A failed placement is LuaJIT's mcode_alloc_at pattern: mmap(hint)
** returns another address (the kernel treats the hint as a hint), and
** the same thread munmaps exactly that block next. Up to 32 such pairs
** precede each "failed to allocate mcode memory".
**
** Stack events come on a second ring buffer; they are named as they
** arrive (unwinding needs the target's mappings of the moment).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "../record/bpfglue.h"
#include "../trace/session.h"
#include "mm_event.h" /* before the skeleton, which uses its types */
#include "jit_mm.skel.h"
#include "mmwatch.h"

#define TIDS 256 /* threads followed for mmap/munmap pairs (hashed) */
#define JIT_MM_STACK_RING (4u << 20)

struct last_mmap {
  uint32_t tid;
  uint64_t hint, ret, len;
};

struct jit_mmwatch {
  struct jit_watch *w;
  struct luaspy_jit_mm *skel;
  struct ring_buffer *rb;
  struct ttarget tt; /* naming the stacks */
  int tt_open;
  uint64_t unnamed; /* stacks not kept: no memory */
  uint64_t t0_ns, mark_ns;
  struct last_mmap last[TIDS];
  struct jit_mm_stats st;
};

static void count_size(struct jit_mm_stats *st, uint64_t len)
{
  for (int i = 0; i < JIT_MM_SIZES; i++) {
    if (st->sizes[i].len == len || !st->sizes[i].n) {
      st->sizes[i].len = len;
      st->sizes[i].n++;
      return;
    }
  }
  st->other_sizes++;
}

static void count_where(struct jit_mmwatch *m, const struct jit_mm_event *e)
{
  struct jit_mm_stats *st = &m->st;
  for (int i = 0; i < JIT_MM_WHERE; i++) {
    struct jit_mm_where *x = &st->where[i];
    if (x->n && (x->vm != e->vm || x->startpt != e->startpt ||
                 x->startpc != e->startpc))
      continue;
    if (!x->n) {
      x->vm = e->vm;
      x->startpt = e->startpt & LJ_GC64_PTRMASK;
      x->startpc = e->startpc;
      x->loc =
          jit_loc(&m->w->locs, m->w->vms[e->vm].idx, x->startpt, x->startpc);
    }
    x->n++;
    return;
  }
}

static void bucket(struct jit_mmwatch *m, uint32_t *b, uint64_t ts)
{
  double t = ts > m->t0_ns ? (double)(ts - m->t0_ns) / 1e9 : 0;
  size_t i = (size_t)(t / JIT_MM_BUCKET);
  if (i < m->st.nbuckets) b[i]++;
}

static int on_event(void *ctx, void *data, size_t size)
{
  struct jit_mmwatch *m = ctx;
  const struct jit_mm_event *e = data;
  struct jit_mm_stats *st = &m->st;
  struct last_mmap *l;
  int compiling;
  if (size < sizeof(*e) || e->kind < JIT_MM_MMAP || e->kind > JIT_MM_MPROTECT)
    return 0;
  st->n[e->kind]++;
  if (m->mark_ns && e->ts > m->mark_ns) st->after_mark[e->kind]++;
  compiling = e->vm < m->w->nvms && e->vmstate <= LJ_VMST_RECORD &&
              e->vmstate >= LJ_VMST_ASM;
  l = &m->last[e->tid % TIDS];
  switch (e->kind) {
  case JIT_MM_MMAP:
    bucket(m, st->mmaps, e->ts);
    if (e->ret < 0 && e->ret > -4096) {
      st->mmap_errors++;
      break;
    }
    st->mapped_bytes += e->len;
    count_size(st, e->len);
    if (compiling && e->vmstate == LJ_VMST_ASM) {
      st->mcode_mmaps++;
      count_where(m, e);
    }
    *l = (struct last_mmap){e->tid, e->addr, (uint64_t)e->ret, e->len};
    break;
  case JIT_MM_MUNMAP:
    if (l->tid == e->tid && l->hint && l->ret != l->hint && l->ret == e->addr &&
        l->len == e->len)
      st->failed_placements++;
    l->tid = 0;
    break;
  case JIT_MM_MPROTECT:
    bucket(m, st->mprotects, e->ts);
    if (compiling) st->compiling_mprotects++;
    break;
  }
  return 0;
}

static int kind_of(long nr)
{
  switch (nr) {
  case JIT_MM_NR_MMAP: return JIT_MM_MMAP;
  case JIT_MM_NR_MUNMAP: return JIT_MM_MUNMAP;
  case JIT_MM_NR_MPROTECT: return JIT_MM_MPROTECT;
  }
  return 0;
}

static int on_stack(void *ctx, void *data, size_t size)
{
  struct jit_mmwatch *m = ctx;
  const struct ls_event *ev = data;
  struct jit_mm_stats *st = &m->st;
  long id;
  int kind;
  size_t n;
  if (!tevent_ok(data, size) || ev->h.type != LS_EV_SYSCALL ||
      !(kind = kind_of((long)ev->h.arg)))
    return 0;
  n = ttarget_stack(&m->tt, ev, 0);
  if ((id = btable_add(&st->bts, kind, m->tt.frames, n)) < 0) {
    m->unnamed++; /* no memory */
    return 0;
  }
  st->bts.bts[id].count++;
  st->stacked[kind]++;
  return 0;
}

struct jit_mmwatch *jit_mm_open(struct jit_watch *w, double seconds, char *why,
                                size_t len)
{
  struct jit_mmwatch *m = calloc(1, sizeof(*m));
  int err;
  bpfglue_quiet_libbpf();
  if (!m) {
    snprintf(why, len, "out of memory");
    return NULL;
  }
  m->w = w;
  if (btable_init(&m->st.bts)) {
    snprintf(why, len, "out of memory");
    goto fail;
  }
  m->st.nbuckets = (size_t)(seconds / JIT_MM_BUCKET) + 2;
  m->st.mmaps = calloc(m->st.nbuckets, sizeof(uint32_t));
  m->st.mprotects = calloc(m->st.nbuckets, sizeof(uint32_t));
  if (!m->st.mmaps || !m->st.mprotects) {
    snprintf(why, len, "out of memory");
    goto fail;
  }
  if (!(m->skel = luaspy_jit_mm__open())) {
    snprintf(why, len, "cannot open the BPF programs: %s", strerror(errno));
    goto fail;
  }
  int ncpus = libbpf_num_possible_cpus();
  bpf_map__set_max_entries(m->skel->maps.luaspy_scratch,
                           ncpus > 0 ? (__u32)ncpus : 1);
  /* Sampled stacks come at most 3 * 10 * JIT_MM_STACKS_PER_TICK a second,
   * about 10 MiB/s, read every 10 ms: the 64 MiB of offcpu and syscalls
   * would only be memory mapped into luaspy (and counted in its RSS). */
  bpf_map__set_max_entries(m->skel->maps.luaspy_events, JIT_MM_STACK_RING);
  struct jit_mm_config *c = (struct jit_mm_config *)&m->skel->rodata->cfg;
  c->tgid = (uint32_t)w->pid;
  for (size_t i = 0; i < w->nvms && i < JIT_MM_MAX_VMS; i++) {
    const struct lj_vm *vm = w->vms[i].vm;
    c->G[i] = vm->G;
    c->J[i] = vm->J;
    c->nvms++;
  }
  if (c->nvms) {
    const struct lj_layout *lay = w->vms[0].vm->lay;
    c->g_vmstate = lay->g_vmstate;
    c->tr_startpt = lay->tr_startpt; /* J->cur is at offset 0 of J */
    c->tr_startpc = lay->tr_startpc;
  }
  if ((err = -luaspy_jit_mm__load(m->skel)) ||
      (err = -luaspy_jit_mm__attach(m->skel))) {
    snprintf(why, len, "cannot load the syscall tracer: %s%s", strerror(err),
             err == EPERM || err == EACCES
                 ? " (needs root or CAP_BPF+CAP_PERFMON)"
                 : "");
    goto fail;
  }
  if (!(m->rb = ring_buffer__new(bpf_map__fd(m->skel->maps.jit_mm_events),
                                 on_event, m, NULL)) ||
      ring_buffer__add(m->rb, bpf_map__fd(m->skel->maps.luaspy_events),
                       on_stack, m)) {
    snprintf(why, len, "cannot open the BPF ring buffer: %s", strerror(errno));
    goto fail;
  }
  if (ttarget_open_found(&m->tt, w->t, 0)) {
    snprintf(why, len, "cannot read the process for stacks");
    goto fail;
  }
  m->tt_open = 1;
  if (ttarget_push(&m->tt, bpf_map__fd(m->skel->maps.luaspy_procs),
                   bpf_map__fd(m->skel->maps.luaspy_vms))) {
    snprintf(why, len, "cannot pass the Lua VMs to the kernel: %s",
             strerror(errno));
    goto fail;
  }
  return m;
fail:
  jit_mm_close(m);
  return NULL;
}

void jit_mm_start(struct jit_mmwatch *m, uint64_t t0_ns)
{
  m->t0_ns = t0_ns;
}

void jit_mm_mark(struct jit_mmwatch *m, uint64_t ns)
{
  m->mark_ns = ns;
  m->st.marked = 1;
}

void jit_mm_poll(struct jit_mmwatch *m)
{
  uint64_t c[LS_NTCOUNTERS];
  ring_buffer__consume(m->rb);
  m->st.dropped = m->skel->bss->dropped;
  /* stack events lost to a full ring buffer, or to no memory */
  tcounts(bpf_map__fd(m->skel->maps.luaspy_counts), c);
  m->st.stacks_lost = c[LS_TC_LOST] + m->unnamed;
}

const struct jit_mm_stats *jit_mm_stats(const struct jit_mmwatch *m)
{
  return &m->st;
}

void jit_mm_close(struct jit_mmwatch *m)
{
  if (!m) return;
  ring_buffer__free(m->rb);
  luaspy_jit_mm__destroy(m->skel);
  if (m->tt_open) ttarget_close(&m->tt);
  btable_free(&m->st.bts);
  free(m->st.mmaps);
  free(m->st.mprotects);
  free(m);
}
