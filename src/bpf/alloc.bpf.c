// SPDX-License-Identifier: GPL-2.0
/*
** luaspy alloc and leaks: the Lua stack of allocations, from a uprobe on
** the VM's allocator (the lua_Alloc function G->allocf points to, found
** without symbols) and, for leaks, a uretprobe for the block it returned.
**
** lua_Alloc(ud, ptr, osize, nsize) is malloc, realloc and free in one:
** nsize 0 frees ptr, ptr NULL allocates. For leaks, a free is sent too,
** without a stack: a sampled block freed while the probes are on is
** known dead. Whether the others are still alive is decided later from
** the heap itself, which costs the target nothing.
**
** Every probe hit is a trap into the kernel (microseconds), whatever this
** program does. User space therefore keeps the probes attached only for
** short windows (src/alloc/window.c), so this program records every
** allocation it sees: the window is the sample.
*/
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* vmlinux.h already has the __u32 family that layout.h takes from here. */
#define _LINUX_TYPES_H
#include "alloc.h"
#include "luawalk.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* 1: the return probe sends the events (with the block returned). */
const volatile __u32 with_returns = 0;

/* The VM of each allocator ud of the targets: its dispatch table. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, LS_MAX_VMS);
  __type(key, struct ls_allockey);
  __type(value, __u64);
} luaspy_allocators SEC(".maps");

/* An allocator call in progress, by thread, until its return. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct ls_alloccall);
} luaspy_calls SEC(".maps");

/* One event under construction per CPU (sized by user space). */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ls_allocev);
} luaspy_scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 32 << 20);
} luaspy_events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, LS_NACOUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} luaspy_counts SEC(".maps");

static __always_inline void count(__u32 idx, __u64 n)
{
  __u64 *c = bpf_map_lookup_elem(&luaspy_counts, &idx);
  if (c) *c += n;
}

static __always_inline struct ls_allocev *scratch(void)
{
  __u32 cpu = bpf_get_smp_processor_id(), zero = 0;
  struct ls_allocev *ev = bpf_map_lookup_elem(&luaspy_scratch, &cpu);
  return ev ? ev : bpf_map_lookup_elem(&luaspy_scratch, &zero);
}

/* Stack words searched for a return address into a trace. */
#define RET_SCAN 48

/* In compiled code, the allocator was called (through a helper or two)
 * from the running trace: the innermost return address into the trace's
 * machine code is where, and gives the trace frame its line (the
 * snapshot there) as a sample's instruction pointer would. */
static __always_inline void trace_caller(struct uregs *regs, __u64 id,
                                         __u64 dispatch)
{
  struct ls_vmkey key = {.pid = id >> 32, .dispatch = dispatch};
  const struct ls_vm *vm = bpf_map_lookup_elem(&luaspy_vms, &key);
  __u64 T, lo, w;
  __u32 sz;
  __s32 vmstate;
  if (!vm ||
      bpf_probe_read_user(&vmstate, 4,
                          (const void *)(vm->G + vm->lay.g_vmstate)) ||
      vmstate <= 0 || !(T = trace_of(vm, vmstate)) ||
      rd64(T + vm->lay.tr_mcode, &lo) ||
      bpf_probe_read_user(&sz, 4, (const void *)(T + vm->lay.tr_szmcode)))
    return;
  for (int i = 0; i < RET_SCAN; i++) {
    if (rd64(regs->sp + 8 * (__u64)i, &w)) return;
    if (w > lo && w < lo + sz) {
      regs->ip = w;
      return;
    }
  }
}

/* Walks the Lua stack of the current thread into ev and sends it. The
 * allocator runs in C code called from the VM, where r14 need not hold
 * the dispatch table any more: the ud argument names the VM instead. */
static __always_inline void send(struct ls_allocev *ev, __u64 id,
                                 const struct ls_proc *p)
{
  struct ls_allockey key = {.pid = id >> 32, .ud = ev->call.ud};
  const __u64 *dispatch = bpf_map_lookup_elem(&luaspy_allocators, &key);
  struct uregs regs = {};
  __u64 size;
  saved_uregs(&regs);
  if (dispatch) {
    regs.r14 = *dispatch;
    trace_caller(&regs, id, *dispatch);
  }
  walk_sample(&ev->lua, id, p, &regs);
  ev->lua.flags = 0;
  size = __builtin_offsetof(struct ls_allocev, lua) + sample_size(&ev->lua);
  if (size > sizeof(*ev)) size = sizeof(*ev);
  count(LS_AC_EVENTS, 1);
  if (bpf_ringbuf_output(&luaspy_events, ev, size, 0)) count(LS_AC_LOST, 1);
}

/* A free: the call alone, a sample of no frames. */
static __always_inline void send_free(struct ls_allocev *ev, __u64 id)
{
  if (!ev->call.ptr) return;
  ev->lua.pid = id >> 32;
  ev->lua.tid = (__u32)id;
  ev->lua.nframes = 0;
  if (bpf_ringbuf_output(&luaspy_events, ev,
                         __builtin_offsetof(struct ls_allocev, lua.frames), 0))
    count(LS_AC_LOST, 1);
}

SEC("uprobe")
int BPF_KPROBE(luaspy_alloc_call, __u64 ud, __u64 ptr, __u64 osize, __u64 nsize)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u32 pid = id >> 32, tid = (__u32)id;
  const struct ls_proc *p = bpf_map_lookup_elem(&luaspy_procs, &pid);
  struct ls_alloccall call = {.ts = bpf_ktime_get_ns(),
                              .ud = ud,
                              .ptr = ptr,
                              .osize = osize,
                              .nsize = nsize};
  struct ls_allocev *ev;
  (void)ctx;
  if (!p) return 0;
  count(LS_AC_CALLS, 1);
  if (with_returns) {
    /* The stack is walked at the return: the same, and the block known
     * (a free is sent there, after it is done). */
    bpf_map_update_elem(&luaspy_calls, &tid, &call, BPF_ANY);
  }
  if (!nsize) return 0; /* a free */
  count(LS_AC_ALLOCS, 1);
  count(LS_AC_BYTES, nsize);
  if (with_returns) return 0;
  if (!(ev = scratch())) return 0;
  ev->call = call;
  ev->ret = 0;
  send(ev, id, p);
  return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(luaspy_alloc_return, __u64 ret)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u32 pid = id >> 32, tid = (__u32)id;
  const struct ls_proc *p = bpf_map_lookup_elem(&luaspy_procs, &pid);
  struct ls_alloccall *call;
  struct ls_allocev *ev;
  (void)ctx;
  if (!p) return 0;
  if (!(call = bpf_map_lookup_elem(&luaspy_calls, &tid))) {
    count(LS_AC_NOCALL, 1);
    return 0;
  }
  if (!(ev = scratch())) return 0;
  ev->call = *call;
  ev->ret = ret;
  bpf_map_delete_elem(&luaspy_calls, &tid);
  if (!ev->call.nsize)
    send_free(ev, id);
  else if (ret)
    send(ev, id, p);
  return 0;
}
