/*
** The rules behind the verdicts. Each looks at one symptom; a healthy
** process (compiles its hot code early, then runs it) matches none.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verdict.h"

const char *jit_verdict_name(enum jit_verdict_kind k)
{
  static const char *const names[] = {"mcode-storm", "flush-loop",
                                      "late-compiles", "abort-storm",
                                      "blacklisted"};
  return names[k];
}

/* Counts per location, to name the top ones. */
struct tally {
  int loc;
  uint64_t n;
  double t;
};

/* Adds n at loc; locations with the same name (traces starting at
 * different bytecodes of one line) count as one. */
static void tally_add(const struct jit_watch *w, struct tally *t, int *nt,
                      int max, int loc, uint64_t n, double when)
{
  const char *name = jit_loc_name(&w->locs, loc);
  for (int i = 0; i < *nt; i++)
    if (t[i].loc == loc || !strcmp(jit_loc_name(&w->locs, t[i].loc), name)) {
      t[i].n += n;
      return;
    }
  if (*nt < max) t[(*nt)++] = (struct tally){loc, n, when};
}

static int by_count(const void *a, const void *b)
{
  const struct tally *x = a, *y = b;
  return x->n < y->n ? 1 : x->n > y->n ? -1 : (x->t > y->t) - (x->t < y->t);
}

#define TALLY_MAX 4096

/* Appends "loc (N what), ..." for the top locations and records them. */
static void name_locs(const struct jit_watch *w, struct jit_verdict *v,
                      struct tally *t, int nt, const char *what)
{
  size_t len = strlen(v->text);
  qsort(t, (size_t)nt, sizeof(*t), by_count);
  for (int i = 0; i < nt && i < 5; i++) {
    len += (size_t)snprintf(v->text + len, sizeof(v->text) - len, "%s%s",
                            i ? ", " : "", jit_loc_name(&w->locs, t[i].loc));
    if (len >= sizeof(v->text)) return;
    if (what)
      len += (size_t)snprintf(v->text + len, sizeof(v->text) - len,
                              " (%llu %s)", (unsigned long long)t[i].n, what);
    if (len >= sizeof(v->text)) return;
    if (v->nlocs < JIT_VERDICT_LOCS) v->locs[v->nlocs++] = t[i].loc;
  }
  if (nt > 5 && len < sizeof(v->text))
    snprintf(v->text + len, sizeof(v->text) - len, " and %d more", nt - 5);
}

static struct jit_verdict *add(struct jit_verdict *v, int *n, int max,
                               enum jit_verdict_kind k)
{
  if (*n >= max) return NULL;
  memset(&v[*n], 0, sizeof(v[*n]));
  v[*n].kind = k;
  return &v[(*n)++];
}

/* Appends where the Lua code stood when the process called mmap: the
 * innermost Lua frame of the commonest sampled backtrace that has one. */
static void storm_site(const struct jit_mm_stats *mm, struct jit_verdict *v)
{
  size_t top[4], nt = btable_top(&mm->bts, JIT_MM_MMAP, top, 4), len;
  for (size_t i = 0; i < nt; i++) {
    const struct bt *b = &mm->bts.bts[top[i]];
    const struct tframe *site = bt_lua_site(b);
    if (!site) continue;
    len = strlen(v->text);
    snprintf(v->text + len, sizeof(v->text) - len,
             "; the mmap calls are made from Lua at %s (%.0f%% of %llu "
             "sampled backtraces)",
             site->str, 100.0 * b->count / mm->stacked[JIT_MM_MMAP],
             (unsigned long long)mm->stacked[JIT_MM_MMAP]);
    return;
  }
}

static void mcode_storm(const struct jit_watch *w,
                        const struct jit_mm_stats *mm, double secs,
                        struct jit_verdict *out, int *n, int max)
{
  struct tally t[JIT_MM_WHERE];
  int nt = 0;
  struct jit_verdict *v;
  /* Many mcode mmaps alone can be a flush loop (new areas after every
   * flush); misplaced blocks are what only a crowded address space gives. */
  if (!mm || (mm->failed_placements < JIT_STORM_FAILED &&
              mm->mmap_errors < JIT_STORM_FAILED))
    return;
  if (!(v = add(out, n, max, JIT_V_MCODE_STORM))) return;
  for (int i = 0; i < JIT_MM_WHERE && mm->where[i].n; i++)
    tally_add(w, t, &nt, JIT_MM_WHERE, mm->where[i].loc, mm->where[i].n, 0);
  snprintf(v->text, sizeof(v->text),
           "%llu mmap calls for machine code in %.1f s (%.0f/s), %llu of "
           "them placed out of jump range and unmapped again, %llu failed: "
           "LuaJIT cannot find room for its machine code within +-1 GiB of "
           "the VM, so traces end in \"failed to allocate mcode memory\" and "
           "a flush, and the hot code is compiled again. Compiling when it "
           "happened: ",
           (unsigned long long)mm->mcode_mmaps, secs, mm->mcode_mmaps / secs,
           (unsigned long long)mm->failed_placements,
           (unsigned long long)mm->mmap_errors);
  if (nt)
    name_locs(w, v, t, nt, "mmaps");
  else
    strncat(v->text, "unknown", sizeof(v->text) - strlen(v->text) - 1);
  storm_site(mm, v);
  if (mm->marked) {
    /* one attempt under way may finish: up to 32 hints, each unmapped */
    uint64_t after = mm->after_mark[JIT_MM_MMAP];
    size_t len = strlen(v->text);
    snprintf(v->text + len, sizeof(v->text) - len,
             after <= JIT_MCODE_TRIES
                 ? ". --jit-off stopped it: %llu mmap calls after the write, "
                   "from the attempt under way."
                 : ". --jit-off did not stop it: %llu mmap calls after the "
                   "write.",
             (unsigned long long)after);
    return;
  }
  strncat(v->text,
          ". Turn the compiler off for this process (jit.off() in its Lua "
          "code, or luaspy jit --write --jit-off) or free address space near "
          "the executable.",
          sizeof(v->text) - strlen(v->text) - 1);
}

static const char *flush_cause(const struct jit_vmwatch *vw)
{
  int c[3] = {0, 0, 0};
  for (size_t i = 0; i < vw->nflushes; i++) c[vw->flushes[i].cause]++;
  if (c[JIT_FLUSH_MCODE] >= c[JIT_FLUSH_TRACES] &&
      c[JIT_FLUSH_MCODE] >= c[JIT_FLUSH_UNKNOWN])
    return "the machine code reached maxmcode";
  if (c[JIT_FLUSH_TRACES] >= c[JIT_FLUSH_UNKNOWN])
    return "the trace count reached maxtrace";
  return "jit.flush() or a failed mcode allocation";
}

static void flush_loop(const struct jit_watch *w, const struct jit_vmwatch *vw,
                       double secs, struct jit_verdict *out, int *n, int max)
{
  static struct tally t[TALLY_MAX];
  int nt = 0;
  struct jit_verdict *v;
  size_t compiled = 0;
  if (vw->nflushes < JIT_FLUSH_LOOP_MIN ||
      !(v = add(out, n, max, JIT_V_FLUSH_LOOP)))
    return;
  for (size_t i = 0; i < vw->ntraces; i++)
    if (!vw->traces[i].before) {
      compiled++;
      tally_add(w, t, &nt, TALLY_MAX, vw->traces[i].loc, 1, vw->traces[i].born);
    }
  snprintf(v->text, sizeof(v->text),
           "VM 0x%llx flushed all its traces %zu times in %.1f s (%s: "
           "maxmcode=%u KiB in areas of sizemcode=%u KiB, maxtrace=%u) and "
           "compiled %zu traces again and again, starting at: ",
           (unsigned long long)vw->vm->G, vw->nflushes, secs, flush_cause(vw),
           vw->cur.param[14], vw->cur.param[13], vw->cur.param[0], compiled);
  name_locs(w, v, t, nt, "compiles");
  strncat(v->text,
          ". Raise the limit (jit.opt.start(\"maxmcode=...\", "
          "\"maxtrace=...\")) or keep rarely run code out of the JIT.",
          sizeof(v->text) - strlen(v->text) - 1);
}

static void late_compiles(const struct jit_watch *w,
                          const struct jit_vmwatch *vw, struct jit_verdict *out,
                          int *n, int max)
{
  static struct tally t[TALLY_MAX], all[TALLY_MAX];
  int nt = 0, nall = 0, nlate = 0;
  struct jit_verdict *v;
  for (size_t i = 0; i < vw->ntraces; i++)
    tally_add(w, all, &nall, TALLY_MAX, vw->traces[i].loc, 1, 0);
  for (size_t i = 0; i < vw->ntraces; i++) {
    const struct jit_trace *tr = &vw->traces[i];
    int churn = 0;
    if (!tr->late) continue;
    /* code compiled over and over is a flush loop, not a late path */
    for (int j = 0; j < nall; j++)
      if (all[j].loc == tr->loc && all[j].n > 1) churn = 1;
    if (churn) continue;
    tally_add(w, t, &nt, TALLY_MAX, tr->loc, 1, tr->born);
    nlate++;
  }
  if (!nt || !(v = add(out, n, max, JIT_V_LATE_COMPILES))) return;
  snprintf(v->text, sizeof(v->text),
           "VM 0x%llx compiled %d new trace%s after the warm-up, each a stall "
           "of the VM and 2 mprotect calls; code that only becomes hot late "
           "is usually a rarely taken path (timers, error handling): ",
           (unsigned long long)vw->vm->G, nlate, nlate == 1 ? "" : "s");
  qsort(t, (size_t)nt, sizeof(*t), by_count);
  for (int i = 0; i < nt && i < 5; i++) {
    size_t len = strlen(v->text);
    snprintf(v->text + len, sizeof(v->text) - len, "%s%s (%s %.1f s)",
             i ? ", " : "", jit_loc_name(&w->locs, t[i].loc),
             w->age0 >= 0 ? "compiled at process age" : "compiled at +",
             t[i].t + (w->age0 >= 0 ? w->age0 : 0));
    if (v->nlocs < JIT_VERDICT_LOCS) v->locs[v->nlocs++] = t[i].loc;
  }
  strncat(v->text,
          ". luaspy jit --write --decay 1 keeps code that is not hot within "
          "one second interpreted.",
          sizeof(v->text) - strlen(v->text) - 1);
}

static void abort_storm(const struct jit_watch *w, const struct jit_vmwatch *vw,
                        double secs, struct jit_verdict *out, int *n, int max)
{
  static struct tally t[TALLY_MAX];
  int nt = 0;
  uint64_t total = 0;
  struct jit_verdict *v;
  for (size_t i = 0; i < vw->naborts; i++) total += vw->aborts[i].count;
  if (total < JIT_ABORT_STORM_MIN || total / secs < JIT_ABORT_STORM_RATE ||
      !(v = add(out, n, max, JIT_V_ABORT_STORM)))
    return;
  for (size_t i = 0; i < vw->naborts; i++)
    if (vw->aborts[i].count)
      tally_add(w, t, &nt, TALLY_MAX, vw->aborts[i].loc, vw->aborts[i].count,
                vw->aborts[i].first);
  snprintf(v->text, sizeof(v->text),
           "VM 0x%llx aborted %llu trace recordings in %.1f s (%.1f/s); each "
           "is compiler work thrown away. Starting at: ",
           (unsigned long long)vw->vm->G, (unsigned long long)total, secs,
           total / secs);
  name_locs(w, v, t, nt, "aborts");
  /* the commonest reason */
  const struct jit_abort *top = NULL;
  for (size_t i = 0; i < vw->naborts; i++)
    if (!top || vw->aborts[i].count > top->count) top = &vw->aborts[i];
  if (top) {
    char rb[128];
    size_t len = strlen(v->text);
    snprintf(
        v->text + len, sizeof(v->text) - len, ". Most frequent reason: %s.",
        jit_abort_text(vw->vm->lay, top->reason, top->detail, rb, sizeof(rb)));
  }
}

static void blacklisted(const struct jit_watch *w, const struct jit_vmwatch *vw,
                        struct jit_verdict *out, int *n, int max)
{
  static struct tally t[TALLY_MAX];
  int nt = 0;
  struct jit_verdict *v;
  const struct jit_abort *first = NULL;
  for (size_t i = 0; i < vw->naborts; i++)
    if (vw->aborts[i].blacklisted) {
      tally_add(w, t, &nt, TALLY_MAX, vw->aborts[i].loc, 1, 0);
      if (!first) first = &vw->aborts[i];
    }
  if (!nt || !(v = add(out, n, max, JIT_V_BLACKLISTED))) return;
  char rb[128];
  snprintf(
      v->text, sizeof(v->text),
      "VM 0x%llx gave up compiling %d loop%s or function%s after "
      "repeated aborts (e.g. %s) and only interprets %s now: ",
      (unsigned long long)vw->vm->G, nt, nt == 1 ? "" : "s", nt == 1 ? "" : "s",
      jit_abort_text(vw->vm->lay, first->reason, first->detail, rb, sizeof(rb)),
      nt == 1 ? "it" : "them");
  name_locs(w, v, t, nt, NULL);
  strncat(v->text,
          ". If that code is hot, rewrite the part LuaJIT cannot compile "
          "(see the abort reasons).",
          sizeof(v->text) - strlen(v->text) - 1);
}

int jit_verdicts(const struct jit_watch *w, const struct jit_mm_stats *mm,
                 double seconds, struct jit_verdict *v, int max)
{
  int n = 0;
  if (seconds <= 0) seconds = 1e-3;
  mcode_storm(w, mm, seconds, v, &n, max);
  for (size_t i = 0; i < w->nvms; i++) {
    const struct jit_vmwatch *vw = &w->vms[i];
    flush_loop(w, vw, seconds, v, &n, max);
    late_compiles(w, vw, v, &n, max);
    abort_storm(w, vw, seconds, v, &n, max);
    blacklisted(w, vw, v, &n, max);
  }
  return n;
}
