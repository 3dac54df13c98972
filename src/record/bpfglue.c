/*
** libbpf glue shared by the BPF frontends.
*/
#include <errno.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bpf/sample.h"
#include "bpfglue.h"

int bpfglue_debug_level(void)
{
  const char *e = getenv("LUASPY_BPF_DEBUG");
  return e ? atoi(e) : 0;
}

/* libbpf explains failures at length on stderr; luaspy prints one line. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt,
                        va_list ap)
{
  if (bpfglue_debug_level() < (level == LIBBPF_DEBUG ? 2 : 1)) return 0;
  return vfprintf(stderr, fmt, ap);
}

void bpfglue_quiet_libbpf(void)
{
  libbpf_set_print(libbpf_print);
}

const char *bpfglue_hint(int err)
{
  if (err == EPERM || (err == EACCES && geteuid() != 0))
    return " (needs root or CAP_BPF+CAP_PERFMON)";
  if (err == ENOSYS)
    return " (this kernel has no bpf() system call: CONFIG_BPF_SYSCALL)";
  if (err == EACCES) /* root, so the verifier said no */
    return " (rejected by the kernel's verifier; LUASPY_BPF_DEBUG=1 shows why)";
  return "";
}

int bpfglue_push_target(int procs_fd, int vms_fd, const struct lj_target *t)
{
  struct ls_proc proc;
  __u32 pid = (__u32)t->pid;
  memset(&proc, 0, sizeof(proc));
  proc.nvms = (__u32)t->nvms;
  proc.nobjs = (__u32)t->nobjs;
  for (int i = 0; i < t->nobjs; i++) {
    proc.text_lo[i] = t->objs[i].text_lo;
    proc.text_hi[i] = t->objs[i].text_hi;
  }
  for (size_t i = 0; i < t->nvms; i++) {
    const struct lj_vm *v = &t->vms[i];
    struct ls_vmkey key = {.pid = pid, .dispatch = v->dispatch};
    struct ls_vm val = {.G = v->G,
                        .J = v->J,
                        .mainL = v->mainL,
                        .code_lo = v->code_lo,
                        .code_hi = v->code_hi,
                        .lay = *v->lay};
    if (bpf_map_update_elem(vms_fd, &key, &val, BPF_ANY)) return -1;
    proc.single_dispatch = v->dispatch;
  }
  return bpf_map_update_elem(procs_fd, &pid, &proc, BPF_ANY);
}
