/*
** Raw Lua stack walk: frame links and PCs only, no names.
**
** A coroutine's stack is copied with one read, then walked locally, so
** the time the target may be stopped does not grow with its depth. The
** link decoding follows lj_frame.h for LJ_FR2 (two slots per frame
** header: function at base-2, ftsz/PC at base-1).
*/
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "luajit.h"

/* LJ_STACK_MAX is 65500 slots; anything bigger is garbage. */
#define STACK_SLOTS_MAX (1u << 17)
/* Coroutines resumed by coroutines, outermost first. */
#define CHAIN_MAX 64

struct lstate {
  uint64_t L, base, top, stack, cframe;
  uint32_t stacksize;
};

const char *lj_partial_name(enum lj_partial why)
{
  switch (why) {
  case LJ_OK: return "complete";
  case LJ_PARTIAL_READ: return "target memory unreadable";
  case LJ_PARTIAL_BADLINK: return "frame link outside the stack";
  case LJ_PARTIAL_BADFUNC: return "frame without a function";
  case LJ_PARTIAL_DEPTH: return "too many frames";
  case LJ_PARTIAL_LOOP: return "coroutine chain loops";
  }
  return "?";
}

static int read_lstate(pid_t pid, const struct lj_layout *lay, uint64_t L,
                       struct lstate *ls)
{
  ls->L = L;
  if (proc_read_u64(pid, L + lay->L_base, &ls->base) ||
      proc_read_u64(pid, L + lay->L_top, &ls->top) ||
      proc_read_u64(pid, L + lay->L_stack, &ls->stack) ||
      proc_read_u64(pid, L + lay->L_cframe, &ls->cframe) ||
      proc_read_u32(pid, L + lay->L_stacksize, &ls->stacksize))
    return -1;
  return 0;
}

static int push(struct lj_walk *w, const struct lj_rawframe *f)
{
  if (w->n == w->max) {
    w->partial = LJ_PARTIAL_DEPTH;
    return -1;
  }
  w->frames[w->n++] = *f;
  return 0;
}

static uint64_t gcptr(uint64_t tv)
{
  return tv & LJ_GC64_PTRMASK;
}

static uint32_t itype(uint64_t tv)
{
  return (uint32_t)((int64_t)tv >> 47) & 0x1ffff;
}

/* PC of a Lua frame whose upper neighbour is a C-type frame: the VM saved
 * it in the C frame that called into that neighbour (lj_debug.c,
 * debug_framepc). fi: the Lua frame's slot index, next: the neighbour's. */
static uint64_t cframe_pc(pid_t pid, const struct lj_layout *lay,
                          const struct lstate *ls, const uint64_t *S,
                          size_t topfi, size_t next)
{
  uint64_t cf = ls->cframe & ~3ull, pc;
  size_t f = topfi;
  for (int guard = 0; guard < 4096; guard++) {
    int32_t nres;
    if (!cf) return 0;
    for (int g2 = 0; g2 < 4096; g2++) {
      uint64_t prev;
      if (proc_read(pid, cf + lay->cf_nres, &nres, 4)) return 0;
      if (nres >= 0) break;
      /* A pcall-protected C frame: skip it once f is below its stack. */
      if (ls->stack + 8 * f >= ls->stack + (uint64_t)(-(int64_t)nres)) break;
      if (proc_read_u64(pid, cf + lay->cf_prev, &prev)) return 0;
      cf = prev & ~3ull;
      if (!cf) return 0;
    }
    if (f < next) break;
    uint64_t ftsz = S[f];
    if ((ftsz & 3) == 0) {
      uint32_t ins;
      if (proc_read_u32(pid, ftsz - 4, &ins)) return 0;
      size_t d = 2 + ((ins >> 8) & 0xff);
      if (d > f) return 0;
      f -= d;
    } else {
      int type = ftsz & 7;
      size_t d = (ftsz & ~7ull) / 8;
      /* FFI callback continuations also own a C frame; not handled. */
      if (type == LJ_FRAME_C) {
        uint64_t prev;
        if (proc_read_u64(pid, cf + lay->cf_prev, &prev)) return 0;
        cf = prev & ~3ull;
      }
      if (d == 0 || d > f) return 0;
      f -= d;
    }
  }
  if (proc_read_u64(pid, cf + lay->cf_pc, &pc)) return 0;
  return pc;
}

/* Walks one coroutine from its top frame (base, pc) to its bottom. */
static void walk_thread(pid_t pid, const struct lj_layout *lay,
                        const struct lstate *ls, uint64_t base, uint64_t pc,
                        struct lj_walk *w)
{
  size_t nslots, fi, topfi;
  uint64_t *S;
  int skip_dup = 0;
  /* (base - stack, not stack + 16: a stack pointer near 2^64 must not
   * wrap around and pass as a stack of no slots) */
  if (base < ls->stack || base - ls->stack < 16 || (base - ls->stack) % 8 ||
      (base - ls->stack) / 8 > STACK_SLOTS_MAX ||
      (base - ls->stack) / 8 > (uint64_t)ls->stacksize + 256) {
    w->partial = LJ_PARTIAL_BADLINK;
    return;
  }
  nslots = (base - ls->stack) / 8;
  if (!(S = malloc(nslots * 8))) {
    w->partial = LJ_PARTIAL_READ;
    return;
  }
  if (proc_read(pid, ls->stack, S, nslots * 8)) {
    w->partial = LJ_PARTIAL_READ;
    free(S);
    return;
  }
  topfi = fi = nslots - 1; /* the frame slot of the top frame: base-1 */
  while (fi > 1) {         /* slot 1 is the bottom dummy frame */
    uint64_t fnv = S[fi - 1], ftsz = S[fi], fn = gcptr(fnv), nextpc = 0;
    int ftype = (ftsz & 3) == 0 ? LJ_FRAME_LUA : (int)(ftsz & 7);
    size_t d;
    if (fn == ls->L) {
      /* Dummy frame of a C call into Lua with L as the function. */
    } else if (itype(fnv) != LJ_TAG_FUNC) {
      w->partial = LJ_PARTIAL_BADFUNC;
      break;
    } else if (!skip_dup) {
      struct lj_rawframe f = {.kind = LJ_RAW_FUNC,
                              .ftype = (uint8_t)ftype,
                              .fn = fn,
                              .pc = pc,
                              .L = ls->L};
      if (push(w, &f)) break;
    }
    skip_dup = ftype == LJ_FRAME_VARG;
    if (ftype == LJ_FRAME_LUA) {
      uint32_t ins;
      if (proc_read_u32(pid, ftsz - 4, &ins)) {
        w->partial = LJ_PARTIAL_READ;
        break;
      }
      d = 2 + ((ins >> 8) & 0xff);
      nextpc = ftsz;
    } else {
      d = (ftsz & ~7ull) / 8;
      if (ftype == LJ_FRAME_CONT && fi >= 2)
        nextpc = S[fi - 2];
      else if (ftype == LJ_FRAME_VARG)
        nextpc = pc;
      else if (d && d <= fi)
        nextpc = cframe_pc(pid, lay, ls, S, topfi, fi);
    }
    if (d == 0 || d >= fi) { /* reaching slot 1 (d == fi-1) ends it */
      w->partial = LJ_PARTIAL_BADLINK;
      break;
    }
    fi -= d;
    pc = nextpc;
  }
  free(S);
}

/* Next coroutine in a resume chain: the thread that th's top frame
 * (coroutine.resume, or a coroutine.wrap function) is running. */
static uint64_t resumed_thread(pid_t pid, const struct lj_layout *lay,
                               const struct lstate *ls)
{
  uint64_t fnv, arg0, uv0;
  uint8_t ffid, nuv;
  if (proc_read_u64(pid, ls->base - 16, &fnv) || itype(fnv) != LJ_TAG_FUNC)
    return 0;
  if (proc_read(pid, gcptr(fnv) + lay->fn_ffid, &ffid, 1) || ffid < 2) return 0;
  if (ls->top > ls->base && !proc_read_u64(pid, ls->base, &arg0) &&
      itype(arg0) == LJ_TAG_THREAD)
    return gcptr(arg0);
  if (!proc_read(pid, gcptr(fnv) + lay->fn_nupvalues, &nuv, 1) && nuv >= 1 &&
      !proc_read_u64(pid, gcptr(fnv) + lay->fn_cf + 8, &uv0) &&
      itype(uv0) == LJ_TAG_THREAD)
    return gcptr(uv0);
  return 0;
}

const struct proc_regs *lj_vm_thread(const struct lj_vm *vm,
                                     const struct proc_stop *st)
{
  for (size_t i = 0; st && i < st->n; i++)
    if (st->threads[i].r14 == vm->dispatch) return &st->threads[i];
  return NULL;
}

static void push_vm(struct lj_walk *w, int32_t vmstate)
{
  struct lj_rawframe f = {.kind = LJ_RAW_VM, .aux = vmstate};
  push(w, &f);
}

/* In a trace, the function at jit_base has no saved PC. When it is the
 * function the trace started in, its start PC is the best line we have. */
static void trace_frame_pc(pid_t pid, const struct lj_vm *vm, struct lj_walk *w)
{
  const struct lj_layout *lay = vm->lay;
  struct lj_rawframe *f = &w->frames[1];
  uint64_t traces, T, startpt, startpc, fnpc;
  uint32_t sizetrace;
  if (w->n < 2 || f->kind != LJ_RAW_FUNC || f->pc ||
      proc_read_u64(pid, vm->J + lay->J_trace, &traces) ||
      proc_read_u32(pid, vm->J + lay->J_sizetrace, &sizetrace) ||
      (uint32_t)w->vmstate >= sizetrace ||
      proc_read_u64(pid, traces + 8 * (uint64_t)w->vmstate, &T) || !T ||
      proc_read_u64(pid, T + lay->tr_startpt, &startpt) ||
      proc_read_u64(pid, T + lay->tr_startpc, &startpc) ||
      proc_read_u64(pid, f->fn + lay->fn_pc, &fnpc))
    return;
  if ((startpt & LJ_GC64_PTRMASK) + lay->pt_size == fnpc)
    f->pc = startpc + 4; /* PCs point past the current instruction */
}

static void walk_all(pid_t pid, const struct lj_vm *vm,
                     const struct proc_regs *regs, struct lj_walk *w)
{
  const struct lj_layout *lay = vm->lay;
  uint64_t chain[CHAIN_MAX], base, pc = 0;
  struct lstate cur;
  int nchain = 0;
  w->n = 0;
  w->partial = LJ_OK;
  if (proc_read(pid, vm->G + lay->g_vmstate, &w->vmstate, 4) ||
      proc_read_u64(pid, vm->G + lay->g_cur_L, &w->curL) ||
      read_lstate(pid, lay, w->curL ? w->curL : vm->mainL, &cur)) {
    w->partial = LJ_PARTIAL_READ;
    return;
  }
  if (!w->curL) w->curL = vm->mainL;
  base = cur.base;
  if (w->vmstate == LJ_VMST_INTERP && regs && lj_in_vm_code(vm, regs->rip) &&
      regs->r14 == vm->dispatch) {
    base = regs->rdx; /* L->base is stale while interpreting */
    pc = regs->rbx;
  } else if (w->vmstate > 0) {
    uint64_t jb = 0;
    struct lj_rawframe f = {.kind = LJ_RAW_TRACE,
                            .aux = w->vmstate,
                            .pc = regs ? regs->rip : 0,
                            .L = w->curL};
    if (push(w, &f)) return;
    if (!proc_read_u64(pid, vm->G + lay->g_jit_base, &jb) && jb) base = jb;
  } else {
    if (w->vmstate == LJ_VMST_GC || w->vmstate == LJ_VMST_RECORD ||
        w->vmstate == LJ_VMST_OPT || w->vmstate == LJ_VMST_ASM ||
        w->vmstate == LJ_VMST_EXIT)
      push_vm(w, w->vmstate);
    /* A C helper or the host saved the PC in the innermost C frame. */
    if (cur.cframe) proc_read_u64(pid, (cur.cframe & ~3ull) + lay->cf_pc, &pc);
  }
  walk_thread(pid, lay, &cur, base, pc, w);
  if (w->vmstate > 0) trace_frame_pc(pid, vm, w);
  if (w->partial != LJ_OK || w->curL == vm->mainL) return;

  /* The coroutines that resumed this one, if it was resumed from Lua. */
  chain[nchain++] = vm->mainL;
  while (chain[nchain - 1] != w->curL) {
    struct lstate ls;
    uint64_t next;
    if (read_lstate(pid, lay, chain[nchain - 1], &ls) ||
        !(next = resumed_thread(pid, lay, &ls)))
      return; /* resumed from C: nothing below it in Lua */
    for (int i = 0; i < nchain; i++)
      if (chain[i] == next) {
        w->partial = LJ_PARTIAL_LOOP;
        return;
      }
    if (nchain == CHAIN_MAX) return;
    chain[nchain++] = next;
  }
  for (int i = nchain - 2; i >= 0 && w->partial == LJ_OK; i--) {
    struct lstate ls;
    if (read_lstate(pid, lay, chain[i], &ls)) {
      w->partial = LJ_PARTIAL_READ;
      return;
    }
    walk_thread(pid, lay, &ls, ls.base, 0, w);
  }
}

/* A function is named after the instruction that called it: the PC of the
 * frame below it, when that frame is a Lua function of the same thread. */
static void fill_callers(struct lj_walk *w)
{
  for (size_t i = 0; i + 1 < w->n; i++) {
    const struct lj_rawframe *below = &w->frames[i + 1];
    if (w->frames[i].kind == LJ_RAW_FUNC && below->kind == LJ_RAW_FUNC &&
        below->L == w->frames[i].L) {
      w->frames[i].callfn = below->fn;
      w->frames[i].callpc = below->pc;
    }
  }
}

void lj_walk_vm(pid_t pid, const struct lj_vm *vm, const struct proc_regs *regs,
                struct lj_walk *w)
{
  walk_all(pid, vm, regs, w);
  fill_callers(w);
}
