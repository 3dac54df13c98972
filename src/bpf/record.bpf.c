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
** space can read at leisure (prototypes, strings). But most samples
** repeat a stack seen before, except for the top frame's PC: the frames
** below the top one are hashed (struct ls_stackkey), sent whole the first
** time and as the key afterwards, so that a sample costs a few dozen
** bytes whatever its depth. User space keeps the frames by key.
**
** Samples wake user space only when the ring buffer fills up: it reads
** them in batches, on its own clock, instead of once per sample.
*/
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* vmlinux.h already has the __u32 family that layout.h takes from here. */
#define _LINUX_TYPES_H
#include "sample.h"
#include "luawalk.bpf.h"
#include "ustack.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before loading: send the user stack for unwinding
 * native frames (record --native). Off, the verifier drops that code. */
const volatile __u32 native_stack = 0;
/* User space's stack cache generation (struct ls_stackkey.gen). */
volatile __u32 stack_gen = 0;

/* What is sent: with native_stack, from nat; else from r. */
struct nrecord {
  struct ls_native nat;
  struct ls_record r;
};
_Static_assert(__builtin_offsetof(struct nrecord, r) == sizeof(struct ls_native),
               "nat and r are sent as one");

/* One record under construction per CPU: too big for a per-CPU array
 * (32 KiB per value at most), so an array indexed by CPU number, sized
 * by user space before loading. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct nrecord);
} luaspy_scratch SEC(".maps");

/* Stack keys sent whole. The least recently used are forgotten, and
 * sent whole again when they come back. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192);
  __type(key, struct ls_stackkey);
  __type(value, __u8);
} luaspy_sent SEC(".maps");

#define RINGBUF_BYTES (8 << 20)
/* Unread bytes past which a sample wakes user space up. */
#define WAKEUP_BYTES (RINGBUF_BYTES / 4)

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, RINGBUF_BYTES);
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

/* Frames hashed per bpf_loop iteration: an iteration costs a call and a
 * return, more than hashing a frame. */
#define HASH_FRAMES_PER_STEP 4

struct hashing {
  const struct ls_record *r;
  __u64 lane[4];
};

static long hash_step(__u32 i, void *ctx)
{
  struct hashing *h = ctx;
  const struct ls_sample *s = &h->r->s;
  __u32 n = 1 + i * HASH_FRAMES_PER_STEP; /* frames[1..nframes) */
  __u64 lane[4];
  long stop = 0;
  __builtin_memcpy(lane, h->lane, sizeof(lane)); /* in registers */
  for (int k = 0; k < HASH_FRAMES_PER_STEP; k++, n++) {
    if (n >= s->nframes || n >= LS_MAX_FRAMES) {
      stop = 1;
      break;
    }
    barrier_var(n); /* keep the mask: the verifier needs it */
    ls_hash_frame(lane, &s->frames[n & (LS_MAX_FRAMES - 1)]);
  }
  __builtin_memcpy(h->lane, lane, sizeof(lane));
  return stop;
}

/* Fills r's stack key; returns 1 if the stack was sent whole before. */
static __always_inline int key_stack(struct ls_record *r)
{
  struct hashing h = {.r = r};
  r->key.hash = 0;
  if (r->s.nframes < 2 || r->s.status != LS_WALKED) return 0;
  ls_hash_begin(h.lane);
  bpf_loop(LS_MAX_FRAMES / HASH_FRAMES_PER_STEP, hash_step, &h, 0);
  r->key.hash = ls_hash_end(h.lane, r->s.nframes);
  if (!r->key.hash) r->key.hash = 1; /* 0 means no key */
  r->key.dispatch = r->s.dispatch;
  r->key.pid = r->s.pid;
  r->key.nframes = r->s.nframes;
  r->key.gen = (__u16)stack_gen;
  return bpf_map_lookup_elem(&luaspy_sent, &r->key) != NULL;
}

SEC("perf_event")
int luaspy_sample(struct bpf_perf_event_data *ctx)
{
  __u64 id = bpf_get_current_pid_tgid(), size, wake;
  __u32 pid = id >> 32, zero = 0, cpu;
  const struct ls_proc *p = bpf_map_lookup_elem(&luaspy_procs, &pid);
  struct nrecord *nr;
  struct ls_record *r;
  struct uregs regs = {};
  __u32 flags = 0;
  __u8 one = 1;
  void *from;
  int repeat;
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
    regs.sp = ctx->regs.sp;
    regs.bp = ctx->regs.bp;
  }
  cpu = bpf_get_smp_processor_id();
  nr = bpf_map_lookup_elem(&luaspy_scratch, &cpu);
  if (!nr) nr = bpf_map_lookup_elem(&luaspy_scratch, &zero);
  if (!nr) return 0;
  r = &nr->r;
  walk_sample(&r->s, id, p, &regs);
  r->s.flags = flags;
  r->s.time_ns = bpf_ktime_get_ns();
  repeat = key_stack(r);
  if (repeat) {
    r->s.flags |= LS_F_REPEAT;
    size = sizeof(r->key) + __builtin_offsetof(struct ls_sample, frames) +
           sizeof(struct ls_frame);
  } else {
    size = sizeof(r->key) + sample_size(&r->s);
  }
  from = r;
  if (native_stack) {
    nr->nat.ip = regs.ip;
    nr->nat.sp = regs.sp;
    nr->nat.bp = regs.bp;
    nr->nat.kdepth = 0;
    nr->nat.ulen = copy_ustack(&nr->nat);
    size += sizeof(nr->nat);
    from = nr;
  }
  if (size > sizeof(*nr)) size = sizeof(*nr);
  wake = bpf_ringbuf_query(&luaspy_events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES
             ? BPF_RB_FORCE_WAKEUP
             : BPF_RB_NO_WAKEUP;
  if (bpf_ringbuf_output(&luaspy_events, from, size, wake))
    count(LS_CNT_LOST);
  else if (r->key.hash && !repeat) /* sent: later samples send the key */
    bpf_map_update_elem(&luaspy_sent, &r->key, &one, BPF_ANY);
  return 0;
}
