// SPDX-License-Identifier: GPL-2.0
/*
** luaspy offcpu: the time target threads spend off CPU, with the stacks
** they left it with (kernel, native, Lua), and the waits for and holds of
** mmap_lock (the mmap_lock tracepoints).
**
** A thread's stacks can only be read in its own context, which is when it
** switches out: so every switch-out of a target thread sends its stacks
** (LS_EV_OFFCPU), and the switch back in sends only the time it was out
** (LS_EV_ONCPU), if at least min_ns. User space pairs the two by thread.
** The user stack does not change while a thread is in the kernel, so what
** is captured at switch-out is what it blocked in.
**
** With wakers (luaspy_waking loaded only then), the wakeup of a target
** thread that is off CPU sends the waker's stacks (LS_EV_WAKER), keyed
** by the wakee and its switch-out time, for user space to join with the
** wakee's interval: the kernel stack always, native and Lua too when the
** waker is a target thread (user space drops them when the kernel stack
** shows an interrupt: the interrupted task is not the waker).
*/
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* vmlinux.h already has the __u32 family that layout.h takes from here. */
#define _LINUX_TYPES_H
#include "luawalk.bpf.h"
#include "trace.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 min_ns = 0;

/* When a thread (key: tid) switched out, took mmap_lock, began waiting. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u64);
} luaspy_offstart SEC(".maps"), luaspy_waitstart SEC(".maps"),
    luaspy_holdstart SEC(".maps");

#include "capture.bpf.h"

SEC("tp_btf/sched_switch")
int BPF_PROG(luaspy_switch, bool preempt, struct task_struct *prev,
             struct task_struct *next, unsigned int prev_state)
{
  (void)preempt;
  __u64 now = bpf_ktime_get_ns(), *start;
  __u32 tgid = prev->tgid, tid = prev->pid;
  const struct ls_proc *p = bpf_map_lookup_elem(&luaspy_procs, &tgid);
  struct ls_event *ev;
  if (p && (ev = scratch())) { /* prev is still the current task */
    ev->h =
        (struct ls_evhead){.type = LS_EV_OFFCPU, .ts = now, .arg = prev_state};
    capture(ctx, ev, bpf_get_current_pid_tgid(), p, 1);
    send(ev);
    bpf_map_update_elem(&luaspy_offstart, &tid, &now, BPF_ANY);
  }
  tgid = next->tgid;
  tid = next->pid;
  if (!bpf_map_lookup_elem(&luaspy_procs, &tgid) ||
      !(start = bpf_map_lookup_elem(&luaspy_offstart, &tid)))
    return 0;
  struct ls_evhead on = {
      .type = LS_EV_ONCPU, .tid = tid, .ts = *start, .value = now - *start};
  bpf_map_delete_elem(&luaspy_offstart, &tid);
  if (on.value >= min_ns)
    bpf_ringbuf_output(&luaspy_events, &on, sizeof(on), 0);
  return 0;
}

/* A target thread, or NULL. */
static __always_inline const struct ls_proc *target(__u64 id)
{
  __u32 tgid = id >> 32;
  return bpf_map_lookup_elem(&luaspy_procs, &tgid);
}

SEC("tp_btf/mmap_lock_start_locking")
int BPF_PROG(luaspy_lock_start, struct mm_struct *mm, bool write)
{
  (void)ctx, (void)mm, (void)write;
  __u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();
  __u32 tid = (__u32)id;
  if (target(id)) bpf_map_update_elem(&luaspy_waitstart, &tid, &now, BPF_ANY);
  return 0;
}

/* Sends an mmap_lock event of the current thread with its stacks. */
static __always_inline void lock_event(void *ctx, __u32 type, __u64 id,
                                       __u64 start, __u64 now, bool write)
{
  const struct ls_proc *p = target(id);
  struct ls_event *ev;
  if (!p || now - start < min_ns || !(ev = scratch())) return;
  ev->h = (struct ls_evhead){
      .type = type, .ts = start, .value = now - start, .arg = write};
  capture(ctx, ev, id, p, 1);
  send(ev);
}

SEC("tp_btf/mmap_lock_acquire_returned")
int BPF_PROG(luaspy_lock_acquired, struct mm_struct *mm, bool write,
             bool success)
{
  (void)mm;
  __u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns(), *start;
  __u32 tid = (__u32)id;
  if (!(start = bpf_map_lookup_elem(&luaspy_waitstart, &tid))) return 0;
  __u64 t0 = *start;
  bpf_map_delete_elem(&luaspy_waitstart, &tid);
  if (success && write)
    bpf_map_update_elem(&luaspy_holdstart, &tid, &now, BPF_ANY);
  lock_event(ctx, LS_EV_MMAP_WAIT, id, t0, now, write);
  return 0;
}

SEC("tp_btf/mmap_lock_released")
int BPF_PROG(luaspy_lock_released, struct mm_struct *mm, bool write)
{
  (void)mm;
  __u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns(), *start;
  __u32 tid = (__u32)id;
  if (!write || !(start = bpf_map_lookup_elem(&luaspy_holdstart, &tid)))
    return 0;
  __u64 t0 = *start;
  bpf_map_delete_elem(&luaspy_holdstart, &tid);
  lock_event(ctx, LS_EV_MMAP_HOLD, id, t0, now, write);
  return 0;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(luaspy_waking, struct task_struct *p)
{
  __u64 id = bpf_get_current_pid_tgid(), *start;
  __u32 tgid = p->tgid, tid = p->pid, wtgid = id >> 32;
  const struct ls_proc *wp;
  struct ls_event *ev;
  long n;
  if (!bpf_map_lookup_elem(&luaspy_procs, &tgid) ||
      !(start = bpf_map_lookup_elem(&luaspy_offstart, &tid)) ||
      bpf_ktime_get_ns() - *start < min_ns || !(ev = scratch()))
    return 0;
  ev->h = (struct ls_evhead){.type = LS_EV_WAKER,
                             .tid = (__u32)id,
                             .ts = *start,
                             .arg = tid,
                             .arg2 = LS_WAKER_OTHER};
  bpf_get_current_comm(ev->nat.comm, sizeof(ev->nat.comm));
  /* In an interrupt the current task is not the waker: user space tells
   * by the kernel stack (the per-CPU preempt count is not readable by
   * BPF on every kernel). */
  if ((wp = bpf_map_lookup_elem(&luaspy_procs, &wtgid))) {
    ev->h.arg2 = LS_WAKER_TARGET;
    capture(ctx, ev, id, wp, 1);
    send(ev);
    return 0;
  }
  /* Kernel stack only: no user registers, no Lua. */
  ev->nat.ip = ev->nat.sp = ev->nat.bp = 0;
  ev->nat.ulen = 0;
  ev->nat.kdepth = 0;
  if ((n = bpf_get_stack(ctx, ev->nat.kstack, sizeof(ev->nat.kstack), 0)) > 0)
    ev->nat.kdepth = (__u32)n / 8;
  ev->lua.nframes = 0;
  ev->lua.status = LS_NO_VM;
  send(ev);
  return 0;
}
