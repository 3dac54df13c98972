/*
** Capturing the stacks of the current thread into a struct ls_event
** (trace.h): kernel stack, user registers and a copy of the user stack
** for unwinding in user space, and the Lua stack (luawalk.bpf.h). Shared
** by offcpu.bpf.c and syscalls.bpf.c, with the maps below.
*/
#ifndef LUASPY_BPF_CAPTURE_H
#define LUASPY_BPF_CAPTURE_H

#include "luawalk.bpf.h"
#include "trace.h"
#include "ustack.bpf.h"

/* One event under construction per CPU (user space sets the size to the
 * number of CPUs). */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ls_event);
} luaspy_scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 64 << 20);
} luaspy_events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, LS_NTCOUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} luaspy_counts SEC(".maps");

/* Counters by enum ls_tcounter. */
static __always_inline void tcount(__u32 idx)
{
  __u64 *c = bpf_map_lookup_elem(&luaspy_counts, &idx);
  if (c) *c += 1;
}

/* This CPU's event under construction. */
static __always_inline struct ls_event *scratch(void)
{
  __u32 cpu = bpf_get_smp_processor_id(), zero = 0;
  struct ls_event *ev = bpf_map_lookup_elem(&luaspy_scratch, &cpu);
  return ev ? ev : bpf_map_lookup_elem(&luaspy_scratch, &zero);
}

struct vmscan {
  const struct ls_native *nat;
  __u32 pid, words;
  __u64 found;
};

static long vmscan_step(__u32 i, void *ctx)
{
  struct vmscan *vs = ctx;
  struct ls_vmkey key = {.pid = vs->pid};
  if (i >= vs->words) return 1;
  key.dispatch =
      ((const __u64 *)vs->nat->ustack)[i & (LS_USTACK_BYTES / 8 - 1)];
  if (!bpf_map_lookup_elem(&luaspy_vms, &key)) return 0;
  vs->found = key.dispatch;
  return 1;
}

/* The VM the thread runs when r14 does not say (C code called from Lua
 * reused it): r14 is callee-saved, so whoever reused it saved DISPATCH on
 * the stack first. The innermost saved copy names the innermost VM. */
static __always_inline __u64 dispatch_on_stack(const struct ls_native *nat,
                                               __u32 pid)
{
  struct vmscan vs = {.nat = nat, .pid = pid, .words = nat->ulen / 8};
  bpf_loop(LS_USTACK_BYTES / 8, vmscan_step, &vs, 0);
  return vs.found;
}

/* Fills ev's stacks for the current thread, of process p. with_kernel:
 * take the kernel stack too (ctx is the program's context). */
static __always_inline void capture(void *ctx, struct ls_event *ev, __u64 id,
                                    const struct ls_proc *p, int with_kernel)
{
  struct uregs regs = {};
  long n;
  saved_uregs(&regs);
  ev->h.tid = (__u32)id;
  ev->nat.ip = regs.ip;
  ev->nat.sp = regs.sp;
  ev->nat.bp = regs.bp;
  ev->nat.kdepth = 0;
  if (with_kernel &&
      (n = bpf_get_stack(ctx, ev->nat.kstack, sizeof(ev->nat.kstack), 0)) > 0)
    ev->nat.kdepth = (__u32)n / 8;
  ev->nat.ulen = copy_ustack(&ev->nat);
  if (p->nvms > 1) {
    struct ls_vmkey key = {.pid = id >> 32, .dispatch = regs.r14};
    __u64 d;
    if (!bpf_map_lookup_elem(&luaspy_vms, &key) &&
        (d = dispatch_on_stack(&ev->nat, id >> 32)))
      regs.r14 = d;
  }
  walk_sample(&ev->lua, id, p, &regs);
  ev->lua.flags = LS_F_KERNEL;
}

/* Sends ev with its stacks. */
static __always_inline void send(struct ls_event *ev)
{
  __u64 size = __builtin_offsetof(struct ls_event, lua) + sample_size(&ev->lua);
  tcount(LS_TC_EVENTS);
  if (size > sizeof(*ev)) size = sizeof(*ev);
  if (bpf_ringbuf_output(&luaspy_events, ev, size, 0)) tcount(LS_TC_LOST);
}

#endif
