/*
** The in-kernel Lua stack walker, shared by every BPF program of luaspy
** that names Lua frames (record, offcpu, syscalls): one walker, so that
** all of them unwind and name stacks alike.
**
** This is the twin of src/luajit/walk.c (same link decoding, same raw
** frames), so that user space names BPF frames exactly as `dump` names
** its own. Differences are only in how memory is read: here every read is
** a checked bpf_probe_read_user and every loop is bounded; garbage gives
** a partial stack, never a hang.
**
** The including program defines nothing of this; it calls walk_sample()
** with the current task's user registers, in the task's own context.
** User space fills luaspy_procs and luaspy_vms (struct ls_proc, ls_vm).
*/
#ifndef LUASPY_BPF_LUAWALK_H
#define LUASPY_BPF_LUAWALK_H

#include "sample.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, LS_MAX_PROCS);
  __type(key, __u32);
  __type(value, struct ls_proc);
} luaspy_procs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, LS_MAX_VMS);
  __type(key, struct ls_vmkey);
  __type(value, struct ls_vm);
} luaspy_vms SEC(".maps");

/* The user registers the walk needs. */
struct uregs {
  __u64 ip, r14, dx, bx;
  __u64 sp, bp; /* for native unwinding (not the walk) */
};

/* A deep stack costs what is paid per frame. On a KVM guest whose kernel
 * returns through a thunk (SRSO), a bpf_probe_read_user costs ~80 ns for
 * 16 bytes and ~140 ns for 4 KiB, a bpf_loop iteration ~7 ns: reading the
 * frame links and call instructions one by one cost ~125 us for 1200
 * frames of one call site, ~250 us for three. So the walk reads the stack
 * LS_STACK_WIN bytes at a time, each call instruction once per walk, and
 * takes LS_FRAMES_PER_STEP frames per iteration: ~25 us either way. */
#define LS_STACK_WIN 4096
/* Call sites remembered during one walk (only: the target runs between
 * walks and may free the bytecode), direct-mapped by address; a deep
 * stack recurses through a few. */
#define LS_CALL_CACHE 16
#define LS_FRAMES_PER_STEP 2

/* State of one walk. One loop walks the running coroutine, then the
 * coroutines that resumed it, so the frame callback is verified once. The
 * state lives in a map, not on the stack: the verifier does not track map
 * values, which keeps it from exploring every combination of flags. */
struct wstate {
  __u64 L, stack, cf; /* thread walked, its stack, C frame cursor */
  __u64 fi;           /* frame slot index (base-1) of the current frame */
  __u64 pc;           /* PC of the current frame, 0 if unknown */
  __u32 need_cfpc;    /* the current frame's PC is in the C frame chain */
  __u32 skip_dup;     /* the current frame is a vararg duplicate */
  /* The resume chain, mainL first, curL last (walk.c's chain[]). */
  __u64 chain[LS_MAX_CHAIN];
  __u32 nchain;     /* entries in chain */
  __u32 next;       /* chain[next] is walked after the current thread... */
  __u32 chain_loop; /* ... unless the chain loops (walk.c: LJ_PARTIAL_LOOP) */
  /* Call instructions read during this walk, by the PC after them (a
   * Lua frame's link); call_pc 0 is an empty entry. */
  __u64 call_pc[LS_CALL_CACHE];
  __u32 call_ins[LS_CALL_CACHE];
  /* Target memory [win_lo, win_hi) as read during this walk: the stack
   * slots below the current frame, read once. The margin keeps a read at
   * any masked offset inside the buffer. */
  __u64 win_lo, win_hi;
  __u8 win[LS_STACK_WIN + 16];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct wstate);
} luaspy_walks SEC(".maps");

/* What the bpf_loop callbacks get. */
struct walk {
  struct ls_sample *s;
  const struct lj_layout *lay;
  struct wstate *st;
};

static __always_inline int rd64(__u64 addr, __u64 *v)
{
  return bpf_probe_read_user(v, 8, (const void *)addr);
}

static __always_inline __u64 gcptr(__u64 tv)
{
  return tv & LJ_GC64_PTRMASK;
}

static __always_inline __u32 itype(__u64 tv)
{
  return (__u32)((__s64)tv >> 47) & 0x1ffff;
}

static __always_inline int push(struct ls_sample *s, __u8 kind, __u8 ftype,
                                __s32 aux, __u64 fn, __u64 pc, __u64 L)
{
  __u32 n = s->nframes;
  if (n >= LS_MAX_FRAMES) {
    s->partial = LS_PARTIAL_DEPTH;
    return -1;
  }
  struct ls_frame *f = &s->frames[n];
  f->fn = fn;
  f->pc = pc;
  f->L = L;
  f->aux = aux;
  f->kind = kind;
  f->ftype = ftype;
  f->pad = 0;
  s->nframes = n + 1;
  return 0;
}

/* Reads n (8 or 16) bytes of the current thread's stack at addr, through
 * the window. The stack is walked downwards, so a miss reads the window
 * ending at addr + n: the frames below, never below the stack's start (its
 * allocation's). If that fails, addr alone, as a walk without it would. */
static __always_inline int rd_stack(struct walk *w, __u64 addr, void *dst,
                                    __u32 n)
{
  struct wstate *st = w->st;
  __u64 end = addr + n, lo, size, off;
  if (addr < st->win_lo || end > st->win_hi) {
    lo = end - LS_STACK_WIN;
    if (end < LS_STACK_WIN || lo < st->stack) lo = st->stack;
    size = end - lo;
    if (size > LS_STACK_WIN) size = LS_STACK_WIN; /* for the verifier */
    if (lo > addr || end < addr ||
        bpf_probe_read_user(st->win, size, (const void *)lo)) {
      st->win_lo = st->win_hi = 0;
      return bpf_probe_read_user(dst, n, (const void *)addr);
    }
    st->win_lo = lo;
    st->win_hi = end;
  }
  off = (addr - st->win_lo) & (LS_STACK_WIN - 1);
  if (n == 16)
    __builtin_memcpy(dst, &st->win[off], 16);
  else
    __builtin_memcpy(dst, &st->win[off], 8);
  return 0;
}

/* The call instruction before pc, the return PC of a Lua frame, whose A
 * operand gives the caller's frame size; through the walk's cache. */
static __always_inline int rd_call_ins(struct wstate *st, __u64 pc, __u32 *ins)
{
  __u32 i = (pc >> 2) & (LS_CALL_CACHE - 1);
  if (!pc || st->call_pc[i] != pc) {
    st->call_pc[i] = 0; /* a failed read leaves call_ins[i] zeroed */
    if (bpf_probe_read_user(&st->call_ins[i], 4, (const void *)(pc - 4)))
      return -1;
    st->call_pc[i] = pc;
  }
  *ins = st->call_ins[i];
  return 0;
}

/* lj_debug.c's debug_framepc walks the C frame chain down in step with
 * the Lua frames; pcall-protected C frames (nres < 0) are skipped while
 * the frame slot fi lies below the stack position they protect. Skips
 * between two steps of the chain collapse into one, so it is enough to
 * skip right before the cursor is used or moved. */
static long cf_skip_step(__u32 idx, void *ctx)
{
  struct walk *w = ctx;
  const struct lj_layout *lay = w->lay;
  __s32 nres;
  __u64 prev;
  (void)idx;
  if (!w->st->cf) return 1;
  if (bpf_probe_read_user(&nres, 4, (const void *)(w->st->cf + lay->cf_nres))) {
    w->st->cf = 0;
    return 1;
  }
  if (nres >= 0 || 8 * w->st->fi >= (__u64)(-(__s64)nres)) return 1;
  if (rd64(w->st->cf + lay->cf_prev, &prev)) prev = 0;
  w->st->cf = prev & ~3ull;
  return 0;
}

/* The C frame cursor, after skipping; then one of its fields (at off),
 * or 0. */
static __noinline __u64 cf_field(struct walk *w, __u32 off)
{
  __u64 v = 0;
  bpf_loop(LS_MAX_CFSKIP, cf_skip_step, w, 0);
  if (w->st->cf && rd64(w->st->cf + off, &v)) v = 0;
  return v;
}

struct lstate {
  __u64 base, top, stack, cframe;
  __u32 stacksize;
};

static __always_inline int read_lstate(const struct lj_layout *lay, __u64 L,
                                       struct lstate *ls)
{
  return rd64(L + lay->L_base, &ls->base) || rd64(L + lay->L_top, &ls->top) ||
         rd64(L + lay->L_stack, &ls->stack) ||
         rd64(L + lay->L_cframe, &ls->cframe) ||
         bpf_probe_read_user(&ls->stacksize, 4,
                             (const void *)(L + lay->L_stacksize));
}

/* Starts walking coroutine L from its top frame (base, pc). */
static __always_inline int thread_begin(struct walk *w, __u64 L,
                                        const struct lstate *ls, __u64 base,
                                        __u64 pc)
{
  __u64 off = base - ls->stack;
  /* off, not stack + 16: a garbage stack near 2^64 must not wrap. */
  if (base < ls->stack || off < 16 || off % 8 ||
      off / 8 > (__u64)ls->stacksize + 256) {
    w->s->partial = LS_PARTIAL_BADLINK;
    return -1;
  }
  w->st->L = L;
  w->st->stack = ls->stack;
  w->st->cf = ls->cframe & ~3ull;
  w->st->fi = off / 8 - 1;
  w->st->pc = pc;
  w->st->need_cfpc = 0;
  w->st->skip_dup = 0;
  return 0;
}

/* The current coroutine is done: go on with the one that resumed it, from
 * its L->base (it is suspended in coroutine.resume). Returns 1 to stop. */
static __always_inline long next_thread(struct walk *w)
{
  struct lstate ls;
  __u32 i = w->st->next;
  __u64 L;
  if (w->st->chain_loop) {
    w->s->partial = LS_PARTIAL_LOOP;
    return 1;
  }
  if (i >= LS_MAX_CHAIN || i + 1 >= w->st->nchain) return 1;
  barrier_var(i); /* keep the mask: the verifier needs it */
  L = w->st->chain[i & (LS_MAX_CHAIN - 1)];
  w->st->next = i - 1;
  if (read_lstate(w->lay, L, &ls)) {
    w->s->partial = LS_PARTIAL_READ;
    return 1;
  }
  return thread_begin(w, L, &ls, ls.base, 0) ? 1 : 0;
}

/* One frame of walk.c's walk_thread. Returns 1 to stop. */
static __always_inline long walk_frame(struct walk *w)
{
  struct ls_sample *s = w->s;
  const struct lj_layout *lay = w->lay;
  __u64 slot[2], fn, ftsz, nextpc = 0, d;
  __u32 ins;
  int ftype;
  if (w->st->fi <= 1)
    return next_thread(w); /* slot 1: the bottom dummy frame */
  if (rd_stack(w, w->st->stack + 8 * (w->st->fi - 1), slot, 16)) {
    s->partial = LS_PARTIAL_READ;
    return 1;
  }
  fn = gcptr(slot[0]);
  ftsz = slot[1];
  ftype = (ftsz & 3) == 0 ? LJ_FRAME_LUA : (int)(ftsz & 7);
  if (w->st->need_cfpc) {
    w->st->pc = cf_field(w, lay->cf_pc);
    w->st->need_cfpc = 0;
  }
  if (fn == w->st->L) {
    /* Dummy frame of a C call into Lua with L as the function. */
  } else if (itype(slot[0]) != LJ_TAG_FUNC) {
    s->partial = LS_PARTIAL_BADFUNC;
    return 1;
  } else if (!w->st->skip_dup) {
    if (push(s, LS_RAW_FUNC, (__u8)ftype, 0, fn, w->st->pc, w->st->L)) return 1;
  }
  w->st->skip_dup = ftype == LJ_FRAME_VARG;
  if (ftype == LJ_FRAME_LUA) {
    if (rd_call_ins(w->st, ftsz, &ins)) {
      s->partial = LS_PARTIAL_READ;
      return 1;
    }
    d = 2 + ((ins >> 8) & 0xff);
    nextpc = ftsz;
  } else {
    d = (ftsz & ~7ull) / 8;
    if (ftype == LJ_FRAME_CONT && w->st->fi >= 2) {
      if (rd_stack(w, w->st->stack + 8 * (w->st->fi - 2), &nextpc, 8)) {
        s->partial = LS_PARTIAL_READ;
        return 1;
      }
    } else if (ftype == LJ_FRAME_VARG) {
      nextpc = w->st->pc;
    } else if (d && d <= w->st->fi) {
      w->st->need_cfpc = 1;
    }
    if (ftype == LJ_FRAME_C) /* leaving this C frame's Lua frames */
      w->st->cf = cf_field(w, lay->cf_prev) & ~3ull;
  }
  if (d == 0 || d >= w->st->fi) { /* reaching slot 1 (d == fi-1) ends it */
    s->partial = LS_PARTIAL_BADLINK;
    return 1;
  }
  w->st->fi -= d;
  w->st->pc = nextpc;
  return 0;
}

static long frame_step(__u32 idx, void *ctx)
{
  (void)idx;
  for (int i = 0; i < LS_FRAMES_PER_STEP; i++)
    if (walk_frame(ctx)) return 1;
  return 0;
}

/* Next coroutine of a resume chain: the one that ls's top frame
 * (coroutine.resume, or a coroutine.wrap function) is running. */
static __always_inline __u64 resumed_thread(const struct lj_layout *lay,
                                            const struct lstate *ls)
{
  __u64 fnv, arg0, uv0;
  __u8 ffid = 0, nuv = 0;
  if (rd64(ls->base - 16, &fnv) || itype(fnv) != LJ_TAG_FUNC ||
      bpf_probe_read_user(&ffid, 1,
                          (const void *)(gcptr(fnv) + lay->fn_ffid)) ||
      ffid < 2)
    return 0;
  if (ls->top > ls->base && !rd64(ls->base, &arg0) &&
      itype(arg0) == LJ_TAG_THREAD)
    return gcptr(arg0);
  if (!bpf_probe_read_user(&nuv, 1,
                           (const void *)(gcptr(fnv) + lay->fn_nupvalues)) &&
      nuv >= 1 && !rd64(gcptr(fnv) + lay->fn_cf + 8, &uv0) &&
      itype(uv0) == LJ_TAG_THREAD)
    return gcptr(uv0);
  return 0;
}

/* Finds the next coroutine of the resume chain. Returns 1 to stop. */
static long chain_step(__u32 idx, void *ctx)
{
  struct walk *w = ctx;
  struct lstate ls;
  __u32 n = w->st->nchain;
  __u64 next, last;
  (void)idx;
  if (n == 0 || n >= LS_MAX_CHAIN) return 1;
  last = w->st->chain[(n - 1) & (LS_MAX_CHAIN - 1)];
  if (last == w->st->L) return 1; /* reached the running coroutine */
  if (read_lstate(w->lay, last, &ls) || !(next = resumed_thread(w->lay, &ls))) {
    w->st->nchain = 0; /* resumed from C: nothing below it in Lua */
    return 1;
  }
  for (int i = 0; i < LS_MAX_CHAIN; i++)
    if ((__u32)i < n && w->st->chain[i] == next) {
      w->st->chain_loop = 1;
      return 1;
    }
  w->st->chain[n & (LS_MAX_CHAIN - 1)] = next;
  w->st->nchain = n + 1;
  return 0;
}

/* The coroutines that resumed curL from Lua (w->st->L): mainL ... curL, to be
 * walked after curL, innermost first. */
static __always_inline void find_chain(struct walk *w, __u64 mainL)
{
  w->st->chain[0] = mainL;
  w->st->nchain = 1;
  bpf_loop(LS_MAX_CHAIN, chain_step, w, 0);
  if (!w->st->chain_loop &&
      (w->st->nchain < 2 ||
       w->st->chain[(w->st->nchain - 1) & (LS_MAX_CHAIN - 1)] != w->st->L))
    w->st->nchain = 0; /* ran out of links before reaching curL */
  w->st->next = w->st->nchain - 2;
}

static __always_inline int in_text(const struct ls_proc *p, __u64 addr)
{
  for (int i = 0; i < LS_MAX_OBJS; i++)
    if ((__u32)i < p->nobjs && addr >= p->text_lo[i] && addr < p->text_hi[i])
      return 1;
  return 0;
}

/* The trace that vmstate names, or 0. */
static __always_inline __u64 trace_of(const struct ls_vm *vm, __s32 vmstate)
{
  const struct lj_layout *lay = &vm->lay;
  __u64 traces, T;
  __u32 sizetrace;
  if (vmstate <= 0 || rd64(vm->J + lay->J_trace, &traces) ||
      bpf_probe_read_user(&sizetrace, 4,
                          (const void *)(vm->J + lay->J_sizetrace)) ||
      (__u32)vmstate >= sizetrace || rd64(traces + 8 * (__u64)vmstate, &T))
    return 0;
  return T;
}

/* Is rip in LuaJIT's machine code: the running trace, or the current
 * mcode area? */
static __always_inline int in_mcode(const struct ls_vm *vm, __u64 T, __u64 rip)
{
  const struct lj_layout *lay = &vm->lay;
  __u64 lo;
  __u32 sz;
  if (T && !rd64(T + lay->tr_mcode, &lo) &&
      !bpf_probe_read_user(&sz, 4, (const void *)(T + lay->tr_szmcode)) &&
      rip >= lo && rip < lo + sz)
    return 1;
  __u64 area, asz;
  return !rd64(vm->J + lay->J_mcarea, &area) &&
         !rd64(vm->J + lay->J_szmcarea, &asz) && rip >= area &&
         rip < area + asz;
}

/* In a trace, the function at jit_base has no saved PC. When it is the
 * function the trace started in, its start PC is the best line we have. */
static __always_inline void trace_frame_pc(struct ls_sample *s,
                                           const struct lj_layout *lay,
                                           __u32 at, __u64 T)
{
  __u64 startpt, startpc, fnpc;
  if (at >= LS_MAX_FRAMES || at >= s->nframes) return;
  struct ls_frame *f = &s->frames[at];
  if (f->kind != LS_RAW_FUNC || f->pc || !T ||
      rd64(T + lay->tr_startpt, &startpt) ||
      rd64(T + lay->tr_startpc, &startpc) || rd64(f->fn + lay->fn_pc, &fnpc))
    return;
  if (gcptr(startpt) + lay->pt_size == fnpc)
    f->pc = startpc + 4; /* PCs point past the current instruction */
}

static __always_inline void walk_vm(struct ls_sample *s,
                                    const struct ls_proc *p,
                                    const struct ls_vm *vm,
                                    const struct uregs *regs)
{
  const struct lj_layout *lay = &vm->lay;
  __u32 zero = 0;
  struct walk w = {
      .s = s, .lay = lay, .st = bpf_map_lookup_elem(&luaspy_walks, &zero)};
  __u64 rip = regs->ip, curL = 0, base, pc = 0, T = 0, cf = 0;
  __s32 vmstate;
  struct lstate cur;
  __u32 trace_at = 0;

  if (bpf_probe_read_user(&vmstate, 4,
                          (const void *)(vm->G + lay->g_vmstate)) ||
      rd64(vm->G + lay->g_cur_L, &curL)) {
    s->partial = LS_PARTIAL_READ;
    return;
  }
  s->vmstate = vmstate;
  if (!curL) curL = vm->mainL;
  if (read_lstate(lay, curL, &cur)) {
    s->partial = LS_PARTIAL_READ;
    return;
  }
  /* Host C code with no Lua call active: nothing of Lua is running. */
  if (vmstate == LJ_VMST_C && !(cur.cframe & ~3ull)) {
    s->status = LS_IDLE;
    push(s, LS_RAW_NATIVE, 0, 0, 0, rip, 0);
    return;
  }
  T = trace_of(vm, vmstate);
  /* A C function (FFI, lua_CFunction or libc below the VM) on top. */
  if (!in_text(p, rip) && !in_mcode(vm, T, rip))
    push(s, LS_RAW_NATIVE, 0, 0, 0, rip, curL);
  base = cur.base;
  /* In the VM's own code, not in a C helper it called. */
  if (vmstate == LJ_VMST_INTERP && rip >= vm->code_lo && rip < vm->code_hi &&
      regs->r14 == s->dispatch) {
    base = regs->dx; /* L->base is stale while interpreting */
    pc = regs->bx;
  } else if (vmstate > 0) {
    __u64 jb = 0;
    trace_at = s->nframes + 1;
    if (push(s, LS_RAW_TRACE, 0, vmstate, 0, rip, curL)) return;
    if (!rd64(vm->G + lay->g_jit_base, &jb) && jb) base = jb;
  } else {
    if (vmstate == LJ_VMST_GC || vmstate == LJ_VMST_RECORD ||
        vmstate == LJ_VMST_OPT || vmstate == LJ_VMST_ASM ||
        vmstate == LJ_VMST_EXIT)
      push(s, LS_RAW_VM, 0, vmstate, 0, 0, 0);
    /* A C helper or the host saved the PC in the innermost C frame. */
    if (cur.cframe && rd64((cur.cframe & ~3ull) + lay->cf_pc, &pc)) pc = 0;
    /* The compiler runs under lj_vm_cpcall (trace_state), which saves L
     * as its PC and pushes no Lua frame: the PC is in the C frame below. */
    if (vmstate <= LJ_VMST_RECORD && vmstate >= LJ_VMST_ASM && pc == curL &&
        cur.cframe &&
        (rd64((cur.cframe & ~3ull) + lay->cf_prev, &cf) ||
         rd64((cf & ~3ull) + lay->cf_pc, &pc)))
      pc = 0;
  }
  if (!w.st) return;
  w.st->nchain = 0;
  w.st->chain_loop = 0;
  /* The target ran since the last walk: nothing read then holds. */
  __builtin_memset(w.st->call_pc, 0, sizeof(w.st->call_pc));
  w.st->win_lo = w.st->win_hi = 0;
  if (thread_begin(&w, curL, &cur, base, pc)) return;
  if (curL != vm->mainL) find_chain(&w, vm->mainL);
  /* Dummy frames push nothing, hence the margin over LS_MAX_FRAMES. */
  bpf_loop((LS_MAX_FRAMES + 256) / LS_FRAMES_PER_STEP, frame_step, &w, 0);
  if (trace_at) trace_frame_pc(s, lay, trace_at, T);
}

/* Walks the Lua stack of the current thread of process pid (which p
 * describes) into s: pid, tid and the frames, status and partial. */
static __always_inline void walk_sample(struct ls_sample *s, __u64 id,
                                        const struct ls_proc *p,
                                        const struct uregs *regs)
{
  struct ls_vmkey key = {.pid = id >> 32};
  const struct ls_vm *vm;
  s->pid = id >> 32;
  s->tid = (__u32)id;
  s->vmstate = 0;
  s->nframes = 0;
  s->status = LS_WALKED;
  s->partial = LS_OK;
  /* Which VM: r14 holds DISPATCH in the VM and survives calls into C
   * (callee-saved); with one VM in the process, that one. */
  key.dispatch = regs->r14;
  vm = bpf_map_lookup_elem(&luaspy_vms, &key);
  if (!vm && p->nvms == 1) {
    key.dispatch = p->single_dispatch;
    vm = bpf_map_lookup_elem(&luaspy_vms, &key);
  }
  if (!vm) {
    s->status = LS_NO_VM;
    s->dispatch = 0;
  } else {
    s->dispatch = key.dispatch;
    walk_vm(s, p, vm, regs);
  }
}

/* The user registers of the current task, saved on kernel entry. */
static __always_inline void saved_uregs(struct uregs *regs)
{
  const struct pt_regs *r =
      (const struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
  regs->ip = BPF_CORE_READ(r, ip);
  regs->r14 = BPF_CORE_READ(r, r14);
  regs->dx = BPF_CORE_READ(r, dx);
  regs->bx = BPF_CORE_READ(r, bx);
  regs->sp = BPF_CORE_READ(r, sp);
  regs->bp = BPF_CORE_READ(r, bp);
}

/* The bytes of a sample worth sending: its header and nframes frames. */
static __always_inline __u64 sample_size(const struct ls_sample *s)
{
  __u64 size =
      sizeof(*s) - sizeof(s->frames) +
      (__u64)(s->nframes & (LS_MAX_FRAMES * 2 - 1)) * sizeof(struct ls_frame);
  return size > sizeof(*s) ? sizeof(*s) : size;
}

#endif
