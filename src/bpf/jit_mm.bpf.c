// SPDX-License-Identifier: GPL-2.0
/*
** luaspy jit: every mmap, munmap and mprotect of one process, with what
** its LuaJIT compiler was doing at that moment.
**
** LuaJIT maps machine-code areas with mmap(hint near the VM, sizemcode)
** and unmaps misplaced ones right away; it flips an area RW/RX with
** mprotect around every trace it assembles. So these three calls, with
** the VM state and the trace being compiled (J->cur), tell how much the
** compiler costs in system calls and which Lua code it was compiling.
** Syscall tracepoints, because this kernel has no kprobes; user memory
** is readable there since we run in the caller's context.
**
** Some calls also send the caller's stacks (native and Lua), as `luaspy
** syscalls` does (capture.bpf.h): at most JIT_MM_STACKS_PER_TICK of each
** kind per tick, since a storm makes tens of thousands of calls a second
** and each stack is a 16 KiB copy. Counts come from every call.
*/
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define _LINUX_TYPES_H /* vmlinux.h has the __u32 family */
#include "../jit/mm_event.h"
#include "luawalk.bpf.h"
#include "trace.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct jit_mm_config cfg = {};
__u64 dropped = 0; /* events lost to a full ring buffer */

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4 << 20);
} jit_mm_events SEC(".maps");

/* mmap arguments between sys_enter and sys_exit, by thread. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);
  __type(value, struct jit_mm_event);
} jit_mm_pending SEC(".maps");

#include "capture.bpf.h"

/* Stacks sent in the current tick, by enum jit_mm_kind. */
__u64 stack_tick[4] = {};
__u32 stack_n[4] = {};

static __always_inline int ours(void)
{
  return (bpf_get_current_pid_tgid() >> 32) == cfg.tgid;
}

/* Which VM compiles now (vmstate RECORD, OPT or ASM), and its J->cur. */
static __always_inline void vm_state(struct jit_mm_event *e)
{
  e->vm = 0xff;
  for (__u32 i = 0; i < JIT_MM_MAX_VMS && i < cfg.nvms; i++) {
    __s32 st;
    if (bpf_probe_read_user(&st, sizeof(st),
                            (void *)(cfg.G[i] + cfg.g_vmstate)))
      continue;
    if (e->vm == 0xff) { /* the first readable VM, unless one compiles */
      e->vm = i;
      e->vmstate = st;
    }
    if (st <= -5 && st >= -7) {
      __u64 J = cfg.J[i];
      e->vm = i;
      e->vmstate = st;
      bpf_probe_read_user(&e->startpt, 8, (void *)(J + cfg.tr_startpt));
      bpf_probe_read_user(&e->startpc, 8, (void *)(J + cfg.tr_startpc));
      break;
    }
  }
}

static __always_inline void emit(const struct jit_mm_event *src)
{
  struct jit_mm_event *e = bpf_ringbuf_reserve(&jit_mm_events, sizeof(*e), 0);
  if (!e) {
    __sync_fetch_and_add(&dropped, 1);
    return;
  }
  __builtin_memcpy(e, src, sizeof(*e));
  bpf_ringbuf_submit(e, 0);
}

/* Sends the caller's stacks with syscall nr, if this tick has room. */
static __always_inline void stacks(void *ctx, __u32 kind, long nr,
                                   const struct jit_mm_event *e)
{
  __u64 id = bpf_get_current_pid_tgid(), tick = e->ts / JIT_MM_TICK_NS;
  __u32 tgid = id >> 32;
  const struct ls_proc *p = bpf_map_lookup_elem(&luaspy_procs, &tgid);
  struct ls_event *ev;
  if (!p || kind > 3) return;
  if (stack_tick[kind] != tick) { /* racing CPUs may send a few more */
    stack_tick[kind] = tick;
    stack_n[kind] = 0;
  }
  if (stack_n[kind] >= JIT_MM_STACKS_PER_TICK || !(ev = scratch())) return;
  stack_n[kind]++;
  ev->h = (struct ls_evhead){.type = LS_EV_SYSCALL,
                             .ts = e->ts,
                             .arg = nr,
                             .arg2 = (__s64)e->len,
                             .ret = e->ret};
  capture(ctx, ev, id, p, 0);
  send(ev);
}

static __always_inline void fill(struct jit_mm_event *e, __u32 kind,
                                 struct trace_event_raw_sys_enter *ctx)
{
  __builtin_memset(e, 0, sizeof(*e));
  e->ts = bpf_ktime_get_ns();
  e->tid = (__u32)bpf_get_current_pid_tgid();
  e->kind = kind;
  /* munmap has two arguments: reading a third would make the kernel
   * refuse to attach (the context is smaller). */
  e->addr = ctx->args[0];
  e->len = ctx->args[1];
  vm_state(e);
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int jit_mm_enter_mmap(struct trace_event_raw_sys_enter *ctx)
{
  struct jit_mm_event e;
  __u32 tid;
  if (!ours()) return 0;
  fill(&e, JIT_MM_MMAP, ctx);
  e.prot = (__u32)ctx->args[2];
  e.flags = (__u32)ctx->args[3];
  tid = e.tid;
  bpf_map_update_elem(&jit_mm_pending, &tid, &e, BPF_ANY);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int jit_mm_exit_mmap(struct trace_event_raw_sys_exit *ctx)
{
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct jit_mm_event *e;
  if (!ours() || !(e = bpf_map_lookup_elem(&jit_mm_pending, &tid))) return 0;
  e->ret = ctx->ret;
  emit(e);
  stacks(ctx, JIT_MM_MMAP, JIT_MM_NR_MMAP, e);
  bpf_map_delete_elem(&jit_mm_pending, &tid);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_munmap")
int jit_mm_enter_munmap(struct trace_event_raw_sys_enter *ctx)
{
  struct jit_mm_event e;
  if (!ours()) return 0;
  fill(&e, JIT_MM_MUNMAP, ctx);
  emit(&e);
  stacks(ctx, JIT_MM_MUNMAP, JIT_MM_NR_MUNMAP, &e);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_mprotect")
int jit_mm_enter_mprotect(struct trace_event_raw_sys_enter *ctx)
{
  struct jit_mm_event e;
  if (!ours()) return 0;
  fill(&e, JIT_MM_MPROTECT, ctx);
  e.prot = (__u32)ctx->args[2];
  emit(&e);
  stacks(ctx, JIT_MM_MPROTECT, JIT_MM_NR_MPROTECT, &e);
  return 0;
}
