/*
** Copying the user stack of the current thread for unwinding in user
** space (src/unwind/), as perf does: shared by capture.bpf.h (offcpu,
** syscalls) and record.bpf.c (record --native).
*/
#ifndef LUASPY_BPF_USTACK_H
#define LUASPY_BPF_USTACK_H

#include "trace.h"

/* The user stack from sp: LS_USTACK_BYTES, or what there is up to the
 * main thread's stack top (mm->start_stack: argv and the environment lie
 * just above it), or less. */
static __always_inline __u32 copy_ustack(struct ls_native *nat)
{
  const void *sp = (const void *)nat->sp;
  struct task_struct *task = bpf_get_current_task_btf();
  __u64 top = BPF_CORE_READ(task, mm, start_stack), n;
  if (!bpf_probe_read_user(nat->ustack, LS_USTACK_BYTES, sp))
    return LS_USTACK_BYTES;
  if (top > nat->sp && top - nat->sp < LS_USTACK_BYTES) {
    n = (top - nat->sp) & (LS_USTACK_BYTES - 8);
    if (n && !bpf_probe_read_user(nat->ustack, n, sp)) return (__u32)n;
  }
  if (!bpf_probe_read_user(nat->ustack, LS_USTACK_BYTES / 4, sp))
    return LS_USTACK_BYTES / 4;
  if (!bpf_probe_read_user(nat->ustack, LS_USTACK_BYTES / 16, sp))
    return LS_USTACK_BYTES / 16;
  return 0;
}

#endif
