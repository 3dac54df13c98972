/*
** What the event-tracing BPF programs (offcpu.bpf.c, syscalls.bpf.c) and
** src/trace/ share: one record per event, holding the stacks of the
** thread it happened to. Fixed-size integers only.
*/
#ifndef LUASPY_BPF_TRACE_H
#define LUASPY_BPF_TRACE_H

#include "sample.h"

#define LS_KSTACK_MAX 64
/* User stack copied from rsp for unwinding in user space (as perf does):
 * enough for the C frames between a system call and the Lua VM. */
#define LS_USTACK_BYTES 16384

enum ls_evtype {
  LS_EV_OFFCPU = 1,    /* switched out: value = 0, arg = prev_state */
  LS_EV_ONCPU = 2,     /* back on CPU: value = ns off CPU (no stacks) */
  LS_EV_MMAP_WAIT = 3, /* got mmap_lock: value = ns waited, arg = write */
  LS_EV_MMAP_HOLD = 4, /* released mmap_lock for write: value = ns held */
  LS_EV_SYSCALL = 5,   /* returned: value = ns, arg = nr, arg2 = size arg */
  LS_EV_EXEC = 6,      /* entering execve/execveat (stacks of the caller) */
  LS_EV_WAKER = 7,     /* a target thread off CPU is woken: the stacks are
                          the waker's; ts = when the wakee switched out,
                          arg = the wakee's tid, arg2 = enum ls_waker */
};

/* Who woke a thread, and which of its stacks LS_EV_WAKER holds. */
enum ls_waker {
  LS_WAKER_OTHER = 0,  /* a thread of another process: kernel stack */
  LS_WAKER_TARGET = 1, /* a target thread: kernel, native, Lua */
};

/* The native side of the thread: user registers and stack, kernel stack. */
struct ls_native {
  __u64 ip, sp, bp;
  __u32 kdepth;  /* kernel frames in kstack, innermost first */
  __u32 ulen;    /* bytes of user stack copied from sp */
  char comm[16]; /* LS_EV_WAKER: the waker's task name */
  __u64 kstack[LS_KSTACK_MAX];
  __u8 ustack[LS_USTACK_BYTES];
};

/* What every event has; LS_EV_ONCPU sends only this. */
struct ls_evhead {
  __u32 type; /* enum ls_evtype */
  __u32 tid;
  __u64 ts;    /* ns, CLOCK_MONOTONIC: the start of what value measures */
  __u64 value; /* ns */
  __s64 arg, arg2, ret;
};

struct ls_event {
  struct ls_evhead h;
  struct ls_native nat;
  struct ls_sample lua; /* last: only its nframes frames are sent */
};

/* counters: per-CPU array indices. */
enum ls_tcounter {
  LS_TC_EVENTS, /* events with stacks produced */
  LS_TC_LOST,   /* ... that did not fit in the ring buffer */
  LS_NTCOUNTERS
};

/* Per-syscall totals counted in the kernel (exact, whatever the ring
 * buffer drops): key = syscall number. */
struct ls_scstat {
  __u64 count, total_ns, max_ns;
};

#define LS_MAX_SYSCALLS 512

#endif
