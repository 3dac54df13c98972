/*
** Text and JSON output of `luaspy jit` (the JSON is documented in
** `luaspy jit --help`; field names are stable).
*/
#include <stdlib.h>
#include <string.h>

#include "../output/json.h"
#include "report.h"

#define TEXT_TRACES 20 /* traces listed per VM in the text output */
#define TEXT_ABORTS 20
#define TOP_BACKTRACES 3 /* per syscall */
#define BT_DEPTH 12      /* frames of each in the text output */

static const char *const mm_names[] = {NULL, "mmap", "munmap", "mprotect"};

static const char *const vs_names[JIT_VS_N] = {
    "interpreted", "c",        "gc",    "exit", "record",
    "optimize",    "assemble", "trace", "other"};

/* Traces are placed top-down from mctop towards mcbot. */
static uint64_t area_free(const struct jit_state *c)
{
  return c->mcarea && c->mctop > c->mcbot ? c->mctop - c->mcbot : 0;
}

static double rate(uint64_t n, double secs)
{
  return secs > 0 ? (double)n / secs : 0;
}

struct counts {
  uint64_t compiled, died, aborts, late;
  uint32_t alive;
};

static struct counts vm_counts(const struct jit_vmwatch *vw)
{
  struct counts c = {0};
  for (size_t i = 0; i < vw->ntraces; i++) {
    const struct jit_trace *tr = &vw->traces[i];
    c.compiled += !tr->before;
    c.died += tr->died >= 0;
    c.late += tr->late;
  }
  for (size_t i = 0; i < vw->naborts; i++) c.aborts += vw->aborts[i].count;
  c.alive = jit_alive(vw->vm, &vw->cur);
  return c;
}

static const char *reason_text(const struct jit_vmwatch *vw,
                               const struct jit_abort *a, char *buf, size_t len)
{
  return jit_abort_text(vw->vm->lay, a->reason, a->detail, buf, len);
}

/* Traces by samples, then by birth: the order of the text listing. */
static const struct jit_vmwatch *sort_vw;
static int by_samples(const void *a, const void *b)
{
  const struct jit_trace *x = &sort_vw->traces[*(const size_t *)a],
                         *y = &sort_vw->traces[*(const size_t *)b];
  if (x->samples != y->samples) return x->samples < y->samples ? 1 : -1;
  return (x->born > y->born) - (x->born < y->born);
}

static void text_traces(FILE *out, const struct jit_session *s,
                        const struct jit_vmwatch *vw)
{
  size_t *ix = malloc(vw->ntraces * sizeof(*ix)), n = 0;
  if (!ix) return;
  for (size_t i = 0; i < vw->ntraces; i++) ix[n++] = i;
  sort_vw = vw;
  qsort(ix, n, sizeof(*ix), by_samples);
  fprintf(out,
          "  traces (runs = share of vmstate samples, a sample):\n"
          "    %-6s %-5s %-14s %8s  %-32s %-10s %s\n",
          "trace", "root", "link", "mcode", "start", "compiled", "runs");
  for (size_t k = 0; k < n && k < TEXT_TRACES; k++) {
    const struct jit_trace *tr = &vw->traces[ix[k]];
    char root[16] = "-", born[32];
    if (tr->h.root) snprintf(root, sizeof(root), "%u", tr->h.root);
    if (tr->before)
      snprintf(born, sizeof(born), "before");
    else
      snprintf(born, sizeof(born), "+%.2fs%s", tr->born,
               tr->late ? " LATE" : "");
    fprintf(out, "    %-6u %-5s %-14s %7uB  %-32s %-10s %.1f%%%s\n",
            tr->h.traceno, root, jit_linktype_name(tr->h.linktype),
            tr->h.szmcode, jit_loc_name(&s->w->locs, tr->loc), born,
            vw->nsamples ? 100.0 * tr->samples / vw->nsamples : 0.0,
            tr->died >= 0 ? " (freed)" : "");
  }
  if (n > TEXT_TRACES)
    fprintf(out, "    ... %zu more (--json lists all)\n", n - TEXT_TRACES);
  free(ix);
}

static void text_vm(FILE *out, const struct jit_session *s,
                    const struct jit_vmwatch *vw)
{
  const struct jit_state *c = &vw->cur;
  struct counts n = vm_counts(vw);
  uint64_t limit = (uint64_t)c->param[14] << 10;
  fprintf(out, "VM 0x%llx LuaJIT 2.1 %s: JIT %s%s\n",
          (unsigned long long)vw->vm->G, lj_flavor_name(vw->vm->lay->flavor),
          c->flags & JIT_FLAG_ON ? "on" : "off",
          (c->flags & JIT_FLAG_ON) == !!(c->dispatchmode & JIT_DISPMODE_JIT)
              ? ""
              : " (dispatch not switched yet)");
  fprintf(out, "  parameters:");
  for (int i = 0; i < JIT_NPARAM; i++)
    fprintf(out, " %s=%u", jit_param_name(i), c->param[i]);
  fprintf(out,
          "\n  machine code: %u area%s, %llu KiB of maxmcode %llu KiB "
          "(%.0f%%), %llu KiB free in the current area\n",
          vw->areas, vw->areas == 1 ? "" : "s",
          (unsigned long long)(c->szallmcarea >> 10),
          (unsigned long long)(limit >> 10),
          limit ? 100.0 * c->szallmcarea / limit : 0.0,
          (unsigned long long)(area_free(c) >> 10));
  fprintf(out,
          "  traces: %u alive; in the window %llu compiled (%.1f/s), "
          "%llu aborted (%.1f/s), %llu freed (%.1f/s), %zu flush%s, "
          "%llu late\n",
          n.alive, (unsigned long long)n.compiled, rate(n.compiled, s->seconds),
          (unsigned long long)n.aborts, rate(n.aborts, s->seconds),
          (unsigned long long)n.died, rate(n.died, s->seconds), vw->nflushes,
          vw->nflushes == 1 ? "" : "es", (unsigned long long)n.late);
  if (vw->nsamples) {
    fprintf(out,
            "  time (%llu vmstate samples):", (unsigned long long)vw->nsamples);
    for (int i = 0; i < JIT_VS_N; i++)
      if (vw->vs[i])
        fprintf(out, " %s %.1f%%", vs_names[i],
                100.0 * vw->vs[i] / vw->nsamples);
    fputc('\n', out);
  }
  if (vw->ntraces) text_traces(out, s, vw);
  if (vw->naborts) {
    fprintf(out, "  aborts (LuaJIT's penalty cache: root traces by start):\n");
    for (size_t i = 0; i < vw->naborts && i < TEXT_ABORTS; i++) {
      const struct jit_abort *a = &vw->aborts[i];
      char rb[128];
      fprintf(out, "    %-32s %s: %u in the window%s%s\n",
              jit_loc_name(&s->w->locs, a->loc),
              reason_text(vw, a, rb, sizeof(rb)), a->count,
              a->before ? ", also before" : "",
              a->blacklisted ? ", BLACKLISTED" : "");
    }
    if (vw->naborts > TEXT_ABORTS)
      fprintf(out, "    ... %zu more (--json lists all)\n",
              vw->naborts - TEXT_ABORTS);
  }
  if (s->jit_off && vw->dispatch_off_at >= 0)
    fprintf(out,
            "  --jit-off: JIT_F_ON cleared; the VM switched to the "
            "non-counting dispatch by +%.2f s; %u traces compiled "
            "after that\n",
            vw->dispatch_off_at, vw->traces_at_off);
  else if (s->jit_off)
    fprintf(out, "  --jit-off: JIT_F_ON cleared; %s\n",
            c->dispatchmode & JIT_DISPMODE_JIT
                ? "the VM switches its dispatch at the next hot loop"
                : "the dispatch was already off");
  if (vw->failed) fprintf(out, "  (the VM could not be read any more)\n");
}

static int by_mmaps(const void *a, const void *b)
{
  const struct jit_mm_where *x = a, *y = b;
  return (x->n < y->n) - (x->n > y->n);
}

static void text_mm(FILE *out, const struct jit_session *s)
{
  const struct jit_mm_stats *m = s->mm;
  if (!m) {
    fprintf(out, "syscalls: not traced (%s)\n", s->mm_why);
    return;
  }
  fprintf(out,
          "syscalls: mmap %llu (%.1f/s), munmap %llu, mprotect %llu "
          "(%.1f/s)\n",
          (unsigned long long)m->n[JIT_MM_MMAP],
          rate(m->n[JIT_MM_MMAP], s->seconds),
          (unsigned long long)m->n[JIT_MM_MUNMAP],
          (unsigned long long)m->n[JIT_MM_MPROTECT],
          rate(m->n[JIT_MM_MPROTECT], s->seconds));
  if (m->n[JIT_MM_MMAP]) {
    fprintf(out, "  mmap by size:");
    for (int i = 0; i < JIT_MM_SIZES && m->sizes[i].n; i++)
      fprintf(out, " %llu KiB x%llu",
              (unsigned long long)(m->sizes[i].len >> 10),
              (unsigned long long)m->sizes[i].n);
    if (m->other_sizes)
      fprintf(out, " other x%llu", (unsigned long long)m->other_sizes);
    fputc('\n', out);
  }
  fprintf(out,
          "  while compiling: %llu mmap, %llu mprotect; misplaced mcode "
          "blocks unmapped: %llu; mmap errors: %llu\n",
          (unsigned long long)m->mcode_mmaps,
          (unsigned long long)m->compiling_mprotects,
          (unsigned long long)m->failed_placements,
          (unsigned long long)m->mmap_errors);
  /* the 5 traces being compiled most often */
  struct jit_mm_where top[JIT_MM_WHERE];
  int nt = 0;
  for (int i = 0; i < JIT_MM_WHERE && m->where[i].n; i++)
    top[nt++] = m->where[i];
  qsort(top, (size_t)nt, sizeof(*top), by_mmaps);
  for (int i = 0; i < nt && i < 5; i++)
    fprintf(out, "    %llu mmap while compiling the trace at %s\n",
            (unsigned long long)top[i].n,
            jit_loc_name(&s->w->locs, top[i].loc));
  for (int k = JIT_MM_MMAP; k <= JIT_MM_MPROTECT; k++) {
    size_t top[TOP_BACKTRACES], nt;
    if (!m->stacked[k]) continue;
    nt = btable_top(&m->bts, k, top, TOP_BACKTRACES);
    fprintf(out,
            "  %s backtraces (%llu of %llu calls sampled), innermost frame "
            "first:\n",
            mm_names[k], (unsigned long long)m->stacked[k],
            (unsigned long long)m->n[k]);
    for (size_t i = 0; i < nt; i++) {
      const struct bt *b = &m->bts.bts[top[i]];
      fprintf(out, "    %.0f%% (%llu):\n", 100.0 * b->count / m->stacked[k],
              (unsigned long long)b->count);
      bt_print(out, b, "      ", BT_DEPTH);
    }
  }
  if (s->jit_off)
    fprintf(out, "  after --jit-off: mmap %llu, mprotect %llu\n",
            (unsigned long long)m->after_mark[JIT_MM_MMAP],
            (unsigned long long)m->after_mark[JIT_MM_MPROTECT]);
  if (m->dropped)
    fprintf(out, "  (%llu events lost: ring buffer full)\n",
            (unsigned long long)m->dropped);
  if (m->stacks_lost)
    fprintf(out, "  (%llu backtraces lost)\n",
            (unsigned long long)m->stacks_lost);
}

void jit_report_text(FILE *out, const struct jit_session *s)
{
  char comm[64] = "?";
  proc_comm(s->pid, comm, sizeof(comm));
  fprintf(out,
          "pid %d (%s): %zu Lua VM%s with a readable JIT, watched %.1f s "
          "(%llu looks); warm-up ends %.1f s after process start\n",
          (int)s->pid, comm, s->w->nvms, s->w->nvms == 1 ? "" : "s", s->seconds,
          (unsigned long long)s->w->looks, s->warmup);
  for (size_t i = 0; i < s->w->nvms; i++) text_vm(out, s, &s->w->vms[i]);
  text_mm(out, s);
  if (s->decay > 0)
    fprintf(out,
            "decay every %.1f s: %llu rounds, %llu hot counters and "
            "%llu side-exit counters reset%s\n",
            s->decay, (unsigned long long)s->ds.rounds,
            (unsigned long long)s->ds.hot, (unsigned long long)s->ds.exits,
            s->ds.failed ? " (some writes failed)" : "");
  if (!s->nv) {
    fprintf(out, "verdict: none, the JIT compiler looks healthy\n");
    return;
  }
  fprintf(out, "verdicts:\n");
  for (int i = 0; i < s->nv; i++)
    fprintf(out, "  %s: %s\n", jit_verdict_name(s->v[i].kind), s->v[i].text);
}

/* -- JSON ------------------------------------------------------------------ */

static void jhex(struct json *j, const char *key, uint64_t v)
{
  char b[32];
  snprintf(b, sizeof(b), "0x%llx", (unsigned long long)v);
  json_key(j, key);
  json_str(j, b);
}

static void jnum(struct json *j, const char *key, double v)
{
  json_key(j, key);
  json_double(j, v);
}

static void juint(struct json *j, const char *key, uint64_t v)
{
  json_key(j, key);
  json_uint(j, v);
}

static void json_vm(struct json *j, const struct jit_session *s,
                    const struct jit_vmwatch *vw)
{
  const struct jit_state *c = &vw->cur;
  struct counts n = vm_counts(vw);
  json_begin_obj(j);
  jhex(j, "address", vw->vm->G);
  json_key(j, "flavor");
  json_str(j, lj_flavor_name(vw->vm->lay->flavor));
  json_key(j, "jit_on");
  json_bool(j, c->flags & JIT_FLAG_ON);
  json_key(j, "dispatch_jit");
  json_bool(j, c->dispatchmode & JIT_DISPMODE_JIT);
  json_key(j, "params");
  json_begin_obj(j);
  for (int i = 0; i < JIT_NPARAM; i++) juint(j, jit_param_name(i), c->param[i]);
  json_end_obj(j);
  json_key(j, "mcode");
  json_begin_obj(j);
  juint(j, "areas", vw->areas);
  juint(j, "bytes", c->szallmcarea);
  juint(j, "limit_bytes", (uint64_t)c->param[14] << 10);
  juint(j, "area_bytes", c->szmcarea);
  juint(j, "area_free_bytes", area_free(c));
  json_end_obj(j);
  json_key(j, "traces");
  json_begin_obj(j);
  juint(j, "alive", n.alive);
  juint(j, "compiled", n.compiled);
  juint(j, "aborted", n.aborts);
  juint(j, "freed", n.died);
  juint(j, "late", n.late);
  juint(j, "flushes", vw->nflushes);
  jnum(j, "compiled_per_s", rate(n.compiled, s->seconds));
  jnum(j, "aborted_per_s", rate(n.aborts, s->seconds));
  jnum(j, "freed_per_s", rate(n.died, s->seconds));
  json_end_obj(j);
  json_key(j, "vmstate_samples");
  json_begin_obj(j);
  juint(j, "total", vw->nsamples);
  for (int i = 0; i < JIT_VS_N; i++) juint(j, vs_names[i], vw->vs[i]);
  json_end_obj(j);
  json_key(j, "trace_list");
  json_begin_arr(j);
  for (size_t i = 0; i < vw->ntraces; i++) {
    const struct jit_trace *tr = &vw->traces[i];
    json_begin_obj(j);
    juint(j, "trace", tr->h.traceno);
    juint(j, "root", tr->h.root);
    juint(j, "link", tr->h.link);
    json_key(j, "linktype");
    json_str(j, jit_linktype_name(tr->h.linktype));
    juint(j, "mcode_bytes", tr->h.szmcode);
    json_key(j, "start");
    json_str(j, jit_loc_name(&s->w->locs, tr->loc));
    json_key(j, "compiled_s");
    if (tr->before)
      json_null(j);
    else
      json_double(j, tr->born);
    json_key(j, "freed_s");
    if (tr->died >= 0)
      json_double(j, tr->died);
    else
      json_null(j);
    json_key(j, "late");
    json_bool(j, tr->late);
    juint(j, "samples", tr->samples);
    json_end_obj(j);
  }
  json_end_arr(j);
  json_key(j, "aborts");
  json_begin_arr(j);
  for (size_t i = 0; i < vw->naborts; i++) {
    const struct jit_abort *a = &vw->aborts[i];
    char rb[128];
    json_begin_obj(j);
    json_key(j, "location");
    json_str(j, jit_loc_name(&s->w->locs, a->loc));
    json_key(j, "reason");
    json_str(j, reason_text(vw, a, rb, sizeof(rb)));
    juint(j, "reason_code", a->reason);
    juint(j, "count", a->count);
    json_key(j, "before");
    json_bool(j, a->before);
    juint(j, "penalty", a->val);
    json_key(j, "blacklisted");
    json_bool(j, a->blacklisted);
    json_end_obj(j);
  }
  json_end_arr(j);
  json_key(j, "flushes");
  json_begin_arr(j);
  for (size_t i = 0; i < vw->nflushes; i++) {
    static const char *const causes[] = {"unknown", "maxmcode", "maxtrace"};
    json_begin_obj(j);
    jnum(j, "t", vw->flushes[i].t);
    json_key(j, "cause");
    json_str(j, causes[vw->flushes[i].cause]);
    juint(j, "traces", vw->flushes[i].traces);
    juint(j, "mcode_bytes", vw->flushes[i].mcode);
    json_end_obj(j);
  }
  json_end_arr(j);
  json_end_obj(j);
}

static void json_mm(struct json *j, const struct jit_session *s)
{
  const struct jit_mm_stats *m = s->mm;
  json_key(j, "syscalls");
  json_begin_obj(j);
  json_key(j, "traced");
  json_bool(j, m != NULL);
  if (!m) {
    json_key(j, "why");
    json_str(j, s->mm_why);
    json_end_obj(j);
    return;
  }
  juint(j, "mmap", m->n[JIT_MM_MMAP]);
  juint(j, "munmap", m->n[JIT_MM_MUNMAP]);
  juint(j, "mprotect", m->n[JIT_MM_MPROTECT]);
  juint(j, "mapped_bytes", m->mapped_bytes);
  json_key(j, "mmap_sizes");
  json_begin_arr(j);
  for (int i = 0; i < JIT_MM_SIZES && m->sizes[i].n; i++) {
    json_begin_obj(j);
    juint(j, "bytes", m->sizes[i].len);
    juint(j, "count", m->sizes[i].n);
    json_end_obj(j);
  }
  json_end_arr(j);
  juint(j, "mcode_mmaps", m->mcode_mmaps);
  juint(j, "compiling_mprotects", m->compiling_mprotects);
  juint(j, "failed_placements", m->failed_placements);
  juint(j, "mmap_errors", m->mmap_errors);
  juint(j, "dropped", m->dropped);
  if (s->jit_off) {
    juint(j, "mmap_after_jit_off", m->after_mark[JIT_MM_MMAP]);
    juint(j, "mprotect_after_jit_off", m->after_mark[JIT_MM_MPROTECT]);
  }
  json_key(j, "compiling");
  json_begin_arr(j);
  for (int i = 0; i < JIT_MM_WHERE && m->where[i].n; i++) {
    json_begin_obj(j);
    json_key(j, "location");
    json_str(j, jit_loc_name(&s->w->locs, m->where[i].loc));
    juint(j, "mmaps", m->where[i].n);
    json_end_obj(j);
  }
  json_end_arr(j);
  json_key(j, "backtraces");
  json_begin_obj(j);
  for (int k = JIT_MM_MMAP; k <= JIT_MM_MPROTECT; k++) {
    size_t top[TOP_BACKTRACES],
        nt = btable_top(&m->bts, k, top, TOP_BACKTRACES);
    json_key(j, mm_names[k]);
    json_begin_obj(j);
    juint(j, "sampled", m->stacked[k]);
    json_key(j, "top");
    json_begin_arr(j);
    for (size_t i = 0; i < nt; i++) {
      const struct bt *b = &m->bts.bts[top[i]];
      const struct tframe *site = bt_lua_site(b);
      json_begin_obj(j);
      juint(j, "count", b->count);
      jnum(j, "share", (double)b->count / m->stacked[k]);
      json_key(j, "site");
      tframe_json_site(j, site);
      json_key(j, "frames");
      bt_json_frames(j, b);
      json_end_obj(j);
    }
    json_end_arr(j);
    json_end_obj(j);
  }
  json_end_obj(j);
  juint(j, "backtraces_lost", m->stacks_lost);
  json_end_obj(j);
}

int jit_report_json(FILE *out, const struct jit_session *s)
{
  struct json *j = json_new(out);
  int rc;
  if (!j) return -1;
  json_begin_obj(j);
  json_key(j, "pid");
  json_int(j, s->pid);
  jnum(j, "seconds", s->seconds);
  jnum(j, "warmup_s", s->warmup);
  jnum(j, "process_age_s", s->process_age);
  juint(j, "looks", s->w->looks);
  json_key(j, "vms");
  json_begin_arr(j);
  for (size_t i = 0; i < s->w->nvms; i++) json_vm(j, s, &s->w->vms[i]);
  json_end_arr(j);
  json_mm(j, s);
  json_key(j, "writes");
  json_begin_obj(j);
  jnum(j, "decay_s", s->decay);
  juint(j, "decay_rounds", s->ds.rounds);
  juint(j, "hot_counters_reset", s->ds.hot);
  juint(j, "exit_counters_reset", s->ds.exits);
  juint(j, "failed", s->ds.failed);
  json_key(j, "jit_off");
  json_bool(j, s->jit_off);
  json_end_obj(j);
  json_key(j, "verdicts");
  json_begin_arr(j);
  for (int i = 0; i < s->nv; i++) {
    json_begin_obj(j);
    json_key(j, "kind");
    json_str(j, jit_verdict_name(s->v[i].kind));
    json_key(j, "text");
    json_str(j, s->v[i].text);
    json_key(j, "locations");
    json_begin_arr(j);
    for (int k = 0; k < s->v[i].nlocs; k++)
      json_str(j, jit_loc_name(&s->w->locs, s->v[i].locs[k]));
    json_end_arr(j);
    json_end_obj(j);
  }
  json_end_arr(j);
  json_end_obj(j);
  rc = json_done(j);
  fputc('\n', out);
  json_free(j);
  return rc;
}
