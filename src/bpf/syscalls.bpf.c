// SPDX-License-Identifier: GPL-2.0
/*
** luaspy syscalls: the system calls of target processes (raw_syscalls
** sys_enter/sys_exit), counted and timed in the kernel per syscall
** number, and each sent with the caller's stacks (native and Lua) so that
** user space can give latencies and backtraces.
**
** Stacks are captured at sys_exit: the user stack and registers do not
** change during a system call, and the latency is known by then. A
** successful execve replaces them, so exec is captured at sys_enter.
** Counts are exact even when the ring buffer drops events.
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

/* Only the syscalls set in luaspy_wanted, if set. */
const volatile __u32 filtered = 0;

#define NR_READ 0
#define NR_WRITE 1
#define NR_MMAP 9
#define NR_MPROTECT 10
#define NR_MUNMAP 11
#define NR_MREMAP 25
#define NR_MADVISE 28
#define NR_EXECVE 59
#define NR_EXECVEAT 322

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, LS_MAX_SYSCALLS);
  __type(key, __u32);
  __type(value, __u8);
} luaspy_wanted SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, LS_MAX_SYSCALLS);
  __type(key, __u32);
  __type(value, struct ls_scstat);
} luaspy_scstats SEC(".maps");

/* The system call a thread (key: tid) is in. */
struct scstart {
  __u64 ts;
  __s64 nr, size;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct scstart);
} luaspy_scstart SEC(".maps");

#include "capture.bpf.h"

/* The size argument worth a histogram, or 0. */
static __always_inline __s64 size_arg(struct pt_regs *regs, long nr)
{
  switch (nr) {
  case NR_MMAP:
  case NR_MPROTECT:
  case NR_MUNMAP:
  case NR_MREMAP:
  case NR_MADVISE: return BPF_CORE_READ(regs, si);
  case NR_READ:
  case NR_WRITE: return BPF_CORE_READ(regs, dx);
  }
  return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(luaspy_sys_enter, struct pt_regs *regs, long nr)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32, tid = (__u32)id, key = (__u32)nr;
  const struct ls_proc *p = bpf_map_lookup_elem(&luaspy_procs, &tgid);
  struct scstart st;
  struct ls_event *ev;
  __u8 *want;
  if (!p || nr < 0 || nr >= LS_MAX_SYSCALLS) return 0;
  if (filtered &&
      (!(want = bpf_map_lookup_elem(&luaspy_wanted, &key)) || !*want))
    return 0;
  st.ts = bpf_ktime_get_ns();
  st.nr = nr;
  st.size = size_arg(regs, nr);
  bpf_map_update_elem(&luaspy_scstart, &tid, &st, BPF_ANY);
  if ((nr == NR_EXECVE || nr == NR_EXECVEAT) && (ev = scratch())) {
    ev->h = (struct ls_evhead){.type = LS_EV_EXEC, .ts = st.ts, .arg = nr};
    capture(ctx, ev, id, p, 0);
    send(ev);
  }
  return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(luaspy_sys_exit, struct pt_regs *regs, long ret)
{
  __u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();
  __u32 tgid = id >> 32, tid = (__u32)id, key;
  const struct ls_proc *p = bpf_map_lookup_elem(&luaspy_procs, &tgid);
  struct scstart *sp, st;
  struct ls_scstat *stat;
  struct ls_event *ev;
  (void)regs;
  if (!p || !(sp = bpf_map_lookup_elem(&luaspy_scstart, &tid))) return 0;
  st = *sp;
  bpf_map_delete_elem(&luaspy_scstart, &tid);
  key = (__u32)st.nr;
  if ((stat = bpf_map_lookup_elem(&luaspy_scstats, &key))) {
    __u64 d = now - st.ts;
    __sync_fetch_and_add(&stat->count, 1);
    __sync_fetch_and_add(&stat->total_ns, d);
    if (d > stat->max_ns) stat->max_ns = d; /* a lost race costs a max */
  }
  if (st.nr == NR_EXECVE || st.nr == NR_EXECVEAT || !(ev = scratch())) return 0;
  ev->h = (struct ls_evhead){.type = LS_EV_SYSCALL,
                             .ts = st.ts,
                             .value = now - st.ts,
                             .arg = st.nr,
                             .arg2 = st.size,
                             .ret = ret};
  capture(ctx, ev, id, p, 0);
  send(ev);
  return 0;
}
