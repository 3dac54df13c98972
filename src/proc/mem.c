/*
** Bounded reads of target memory with process_vm_readv: no ptrace stop,
** no signal to the target, and a fault in the target's address space is an
** error return, never a crash of ours.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <sys/uio.h>

#include "proc.h"

int proc_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
  struct iovec local = {buf, len};
  struct iovec remote = {(void *)(uintptr_t)addr, len};
  ssize_t n;
  if (len == 0) return 0;
  if (addr == 0 || addr + len < addr) {
    errno = EFAULT;
    return -1;
  }
  n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n == (ssize_t)len) return 0;
  if (n >= 0) errno = EFAULT;
  return -1;
}

int proc_read_u64(pid_t pid, uint64_t addr, uint64_t *v)
{
  return proc_read(pid, addr, v, sizeof(*v));
}

int proc_read_u32(pid_t pid, uint64_t addr, uint32_t *v)
{
  return proc_read(pid, addr, v, sizeof(*v));
}
