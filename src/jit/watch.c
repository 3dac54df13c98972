/*
** The look-and-compare loop behind `luaspy jit`.
**
** What a look can and cannot see: a trace that is compiled and freed
** between two looks (10 ms) is missed, and so is an abort whose penalty
** slot is bumped twice in between; a flush clears the penalty cache and
** frees every trace at once, which is seen as such. Side-trace aborts
** leave no penalty and are not counted.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "watch.h"

#define BLACKLIST_CHECK_VAL 16000 /* penalties this high are close to it */

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
  void *nv;
  size_t ncap;
  if (n < *cap) return 0;
  ncap = *cap ? 2 * *cap : 64;
  if (!(nv = realloc(*v, ncap * size))) return -1;
  *v = nv;
  *cap = ncap;
  return 0;
}

static uint64_t area_bytes(const struct jit_state *st)
{
  uint64_t sz = (uint64_t)st->param[13] << 10; /* sizemcode, page-rounded */
  return (sz + 4095) & ~4095ull;
}

/* Did LuaJIT flush everything (lj_trace_flushall) since the last look? */
static void check_flush(struct jit_vmwatch *vw, double now)
{
  const struct jit_state *p = &vw->prev, *c = &vw->cur;
  uint32_t alive = jit_alive(vw->vm, p), kept = 0;
  int mcode_reset, all_gone, pen_before = 0, pen_now = 0;
  for (uint32_t i = 1; i < p->sizetrace && i < c->sizetrace; i++)
    if (p->trace[i] && p->trace[i] != vw->vm->J && c->trace[i] == p->trace[i])
      kept++;
  for (int i = 0; i < JIT_PENALTY_SLOTS; i++) {
    pen_before += p->penalty[i].pc != 0;
    pen_now += c->penalty[i].pc != 0;
  }
  /* lj_mcode_free zeroes szallmcarea; the next trace maps a new area. */
  mcode_reset =
      c->szallmcarea < p->szallmcarea ||
      (p->mcarea && c->mcarea != p->mcarea && c->szallmcarea <= p->szallmcarea);
  all_gone = alive > 0 && kept == 0 && ((pen_before && !pen_now) || alive >= 2);
  if (!mcode_reset && !all_gone) return;
  if (grow((void **)&vw->flushes, &vw->capflushes, vw->nflushes,
           sizeof(*vw->flushes)))
    return;
  struct jit_flush *f = &vw->flushes[vw->nflushes++];
  f->t = now;
  f->traces = alive;
  f->mcode = p->szallmcarea;
  if (p->szallmcarea + area_bytes(p) > ((uint64_t)p->param[14] << 10))
    f->cause = JIT_FLUSH_MCODE;
  else if (alive + 1 >= p->param[0])
    f->cause = JIT_FLUSH_TRACES;
  else
    f->cause = JIT_FLUSH_UNKNOWN;
}

static int seen_loc(const struct jit_vmwatch *vw, int loc, size_t upto)
{
  for (size_t i = 0; i < upto; i++)
    if (vw->traces[i].loc == loc) return 1;
  return 0;
}

static void look_traces(struct jit_watch *w, struct jit_vmwatch *vw, double now,
                        int initial)
{
  const struct jit_state *c = &vw->cur;
  if (c->sizetrace > vw->nslot) {
    int32_t *s = realloc(vw->slot, c->sizetrace * sizeof(*s));
    if (!s) return;
    for (uint32_t i = vw->nslot; i < c->sizetrace; i++) s[i] = -1;
    vw->slot = s;
    vw->nslot = c->sizetrace;
  }
  for (uint32_t i = 1; i < c->sizetrace; i++) {
    uint64_t T = c->trace[i] == vw->vm->J ? 0 : c->trace[i];
    int32_t old = vw->slot[i];
    struct jit_trace *tr;
    if (old >= 0 && vw->traces[old].T != T) {
      vw->traces[old].died = now;
      vw->slot[i] = -1;
    }
    if (!T || vw->slot[i] >= 0) continue;
    if (grow((void **)&vw->traces, &vw->captraces, vw->ntraces,
             sizeof(*vw->traces)))
      return;
    tr = &vw->traces[vw->ntraces];
    memset(tr, 0, sizeof(*tr));
    if (jit_trace_read(w->pid, vw->vm, T, &tr->h)) continue;
    tr->T = T;
    tr->born = now;
    tr->died = -1;
    tr->before = initial;
    tr->loc = jit_loc(&w->locs, vw->idx, tr->h.startpt, tr->h.startpc);
    tr->late =
        !initial && now >= w->warmup_at && !seen_loc(vw, tr->loc, vw->ntraces);
    if (vw->dispatch_off_at >= 0) vw->traces_at_off++;
    vw->slot[i] = (int32_t)vw->ntraces++;
  }
}

/* The detail LuaJIT keeps in J->errinfo for the last abort. */
static void abort_detail(struct jit_watch *w, struct jit_vmwatch *vw,
                         struct jit_abort *a)
{
  const struct lj_layout *lay = vw->vm->lay;
  uint64_t v = vw->cur.errinfo;
  uint32_t itype = (uint32_t)((int64_t)v >> 47) & 0x1ffff;
  if (jit_reason_is_nyibc(lay, a->reason) && itype < 0x1fff2) {
    double d;
    memcpy(&d, &v, 8);
    if (d >= 0 && d < lay->bc_max && d == (int)d)
      snprintf(a->detail, sizeof(a->detail), "NYI: bytecode %d (%s)", (int)d,
               jit_bc_name(lay, (unsigned)d));
  } else if (jit_reason_is_nyiffu(lay, a->reason) && itype == LJ_TAG_FUNC) {
    struct lj_rawframe rf = {.kind = LJ_RAW_FUNC, .fn = v & LJ_GC64_PTRMASK};
    struct lj_frame f;
    lj_symbolize(w->locs.sym, vw->vm, &rf, 0, &f);
    snprintf(a->detail, sizeof(a->detail),
             "NYI: unsupported variant of FastFunc %s", f.name);
  }
}

static struct jit_abort *abort_entry(struct jit_watch *w,
                                     struct jit_vmwatch *vw,
                                     const struct jit_penalty *p)
{
  for (size_t i = 0; i < vw->naborts; i++)
    if (vw->aborts[i].pc == p->pc && vw->aborts[i].reason == p->reason)
      return &vw->aborts[i];
  if (grow((void **)&vw->aborts, &vw->capaborts, vw->naborts,
           sizeof(*vw->aborts)))
    return NULL;
  struct jit_abort *a = &vw->aborts[vw->naborts++];
  memset(a, 0, sizeof(*a));
  a->pc = p->pc;
  a->reason = p->reason;
  a->loc = jit_loc(&w->locs, vw->idx, 0, p->pc);
  a->first = -1;
  return a;
}

static void look_penalties(struct jit_watch *w, struct jit_vmwatch *vw,
                           double now, int initial)
{
  struct jit_abort *fresh = NULL;
  int nfresh = 0;
  for (int i = 0; i < JIT_PENALTY_SLOTS; i++) {
    const struct jit_penalty *c = &vw->cur.penalty[i],
                             *p = &vw->prev.penalty[i];
    struct jit_abort *a;
    if (!c->pc) continue;
    if (!initial && c->pc == p->pc && c->val == p->val &&
        c->reason == p->reason)
      continue;
    if (!(a = abort_entry(w, vw, c))) return;
    a->val = c->val;
    if (initial) {
      a->before = 1;
    } else {
      a->count++;
      if (a->first < 0) a->first = now;
      a->last = now;
    }
    fresh = a;
    nfresh++;
  }
  /* errinfo belongs to the newest abort: only trust it when one changed,
   * or at the first look, for the slot assigned last. */
  if (initial) {
    const struct jit_penalty *last =
        &vw->cur.penalty[(vw->cur.penaltyslot - 1) & (JIT_PENALTY_SLOTS - 1)];
    fresh = NULL;
    for (size_t i = 0; last->pc && i < vw->naborts; i++)
      if (vw->aborts[i].pc == last->pc) fresh = &vw->aborts[i];
    nfresh = fresh != NULL;
  }
  if (nfresh == 1 && !fresh->detail[0]) abort_detail(w, vw, fresh);
  for (size_t i = 0; i < vw->naborts; i++) {
    struct jit_abort *a = &vw->aborts[i];
    if (!a->blacklisted && a->val >= BLACKLIST_CHECK_VAL)
      a->blacklisted =
          a->loc >= 0 && jit_pc_blacklisted(w->pid, vw->vm->lay,
                                            w->locs.v[a->loc].pt, a->pc) == 1;
  }
}

static void look_vm(struct jit_watch *w, struct jit_vmwatch *vw, double now,
                    int initial)
{
  struct jit_state tmp = vw->prev;
  vw->prev = vw->cur;
  vw->cur = tmp;
  if (jit_state_read(w->pid, vw->vm, &vw->cur)) {
    /* keep the last good look as the current one */
    tmp = vw->prev;
    vw->prev = vw->cur;
    vw->cur = tmp;
    vw->failed = 1;
    return;
  }
  if (!initial) {
    check_flush(vw, now);
    if ((vw->prev.dispatchmode & JIT_DISPMODE_JIT) &&
        !(vw->cur.dispatchmode & JIT_DISPMODE_JIT) && vw->dispatch_off_at < 0)
      vw->dispatch_off_at = now;
  }
  look_traces(w, vw, now, initial);
  look_penalties(w, vw, now, initial);
}

int jit_watch_init(struct jit_watch *w, pid_t pid, const struct lj_target *t,
                   double warmup_at)
{
  memset(w, 0, sizeof(*w));
  w->pid = pid;
  w->t = t;
  w->warmup_at = warmup_at;
  w->age0 = -1;
  if (jit_locs_init(&w->locs, pid, t)) return -1;
  if (!(w->vms = calloc(t->nvms, sizeof(*w->vms)))) return -1;
  for (size_t i = 0; i < t->nvms; i++) {
    struct jit_vmwatch *vw;
    if (!jit_supported(&t->vms[i])) continue;
    vw = &w->vms[w->nvms++];
    vw->idx = (int)i;
    vw->vm = &t->vms[i];
    vw->dispatch_off_at = -1;
    look_vm(w, vw, 0, 1);
  }
  return 0;
}

void jit_watch_free(struct jit_watch *w)
{
  for (size_t i = 0; i < w->nvms; i++) {
    struct jit_vmwatch *vw = &w->vms[i];
    jit_state_free(&vw->cur);
    jit_state_free(&vw->prev);
    free(vw->slot);
    free(vw->traces);
    free(vw->aborts);
    free(vw->flushes);
  }
  free(w->vms);
  jit_locs_free(&w->locs);
}

void jit_watch_look(struct jit_watch *w, double now)
{
  w->now = now;
  w->looks++;
  for (size_t i = 0; i < w->nvms; i++)
    if (!w->vms[i].failed) look_vm(w, &w->vms[i], now, 0);
}

void jit_watch_finish(struct jit_watch *w)
{
  for (size_t i = 0; i < w->nvms; i++)
    w->vms[i].areas = jit_mcode_areas(w->pid, &w->vms[i].cur);
}

void jit_watch_sample(struct jit_watch *w)
{
  for (size_t i = 0; i < w->nvms; i++) {
    struct jit_vmwatch *vw = &w->vms[i];
    int32_t st = jit_vmstate(w->pid, vw->vm);
    int b;
    if (vw->failed || st == INT32_MIN) continue;
    if (st > 0) {
      b = JIT_VS_TRACE;
      if ((uint32_t)st < vw->nslot && vw->slot[st] >= 0)
        vw->traces[vw->slot[st]].samples++;
    } else if (st < 0 && st >= -7) {
      b = -st - 1; /* ~LJ_VMST_*: -1 INTERP ... -7 ASM */
    } else {
      b = JIT_VS_OTHER;
    }
    vw->vs[b]++;
    vw->nsamples++;
  }
}
