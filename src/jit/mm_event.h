/*
** What the syscall tracer src/bpf/jit_mm.bpf.c and `luaspy jit` share:
** its configuration and one event per mmap, munmap or mprotect call of
** the target. Fixed-size integers only, so both sides agree.
*/
#ifndef LUASPY_MM_EVENT_H
#define LUASPY_MM_EVENT_H

#include <linux/types.h>

#define JIT_MM_MAX_VMS 8 /* VMs whose compiler state is read per call */

enum jit_mm_kind { JIT_MM_MMAP = 1, JIT_MM_MUNMAP = 2, JIT_MM_MPROTECT = 3 };

/* x86-64 syscall numbers, as the stack events (trace.h) carry them. */
#define JIT_MM_NR_MMAP 9
#define JIT_MM_NR_MPROTECT 10
#define JIT_MM_NR_MUNMAP 11

/* Calls of each kind sent with stacks: at most this many per tick. */
#define JIT_MM_STACKS_PER_TICK 20
#define JIT_MM_TICK_NS 100000000ull

struct jit_mm_config {
  __u32 tgid;
  __u32 nvms;
  __u32 g_vmstate, tr_startpt, tr_startpc;
  __u32 pad;
  __u64 G[JIT_MM_MAX_VMS], J[JIT_MM_MAX_VMS];
};

struct jit_mm_event {
  __u64 ts;   /* bpf_ktime_get_ns() at entry */
  __u64 addr; /* mmap: the hint; else the address */
  __u64 len;
  __s64 ret;              /* mmap: its result (an address or -errno); else 0 */
  __u64 startpt, startpc; /* J->cur of the VM that is compiling */
  __u32 tid, kind, prot, flags;
  __s32 vmstate; /* of that VM (or of VM 0 when none compiles) */
  __u8 vm;       /* index in jit_mm_config, 0xff: no VM readable */
  __u8 pad[3];
};

#endif
