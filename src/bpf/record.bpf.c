// SPDX-License-Identifier: GPL-2.0
/*
** luaspy record: walks the Lua stack of a sampled LuaJIT thread in the
** kernel, on every cpu-clock perf event.
**
** The walker itself is luawalk.bpf.h, shared with offcpu and syscalls.
**
** Why raw frames go to a ring buffer instead of stack ids in a hash map:
** a Lua stack is up to LS_MAX_FRAMES (fn, pc) pairs, far too big for a
** map key, and a frame's name depends on target memory that only user
** space can read at leisure (prototypes, strings). User space hashes the
** stacks it receives instead; a sample costs 32 bytes per frame.
*/
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* vmlinux.h already has the __u32 family that layout.h takes from here. */
#define _LINUX_TYPES_H
#include "sample.h"
#include "luawalk.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* One sample under construction per CPU: too big for a per-CPU array
 * (32 KiB per value at most), so an array indexed by CPU number, sized
 * by user space before loading. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ls_sample);
} luaspy_scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 8 << 20);
} luaspy_events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, LS_NCOUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} luaspy_counts SEC(".maps");

static __always_inline void count(__u32 idx)
{
  __u64 *c = bpf_map_lookup_elem(&luaspy_counts, &idx);
  if (c) *c += 1;
}

SEC("perf_event")
int luaspy_sample(struct bpf_perf_event_data *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u32 pid = id >> 32, zero = 0, cpu;
  const struct ls_proc *p = bpf_map_lookup_elem(&luaspy_procs, &pid);
  struct ls_sample *s;
  struct uregs regs = {};
  __u32 flags = 0;
  if (!p) return 0;
  count(LS_CNT_SAMPLES);
  if (ctx->regs.ip >> 47) { /* in the kernel: the user registers are saved */
    saved_uregs(&regs);
    flags = LS_F_KERNEL;
  } else {
    regs.ip = ctx->regs.ip;
    regs.r14 = ctx->regs.r14;
    regs.dx = ctx->regs.dx;
    regs.bx = ctx->regs.bx;
  }
  cpu = bpf_get_smp_processor_id();
  s = bpf_map_lookup_elem(&luaspy_scratch, &cpu);
  if (!s) s = bpf_map_lookup_elem(&luaspy_scratch, &zero);
  if (!s) return 0;
  walk_sample(s, id, p, &regs);
  s->flags = flags;
  s->time_ns = bpf_ktime_get_ns();
  if (bpf_ringbuf_output(&luaspy_events, s, sample_size(s), 0))
    count(LS_CNT_LOST);
  return 0;
}
