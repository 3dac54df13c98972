/*
** Write watchpoints through perf hardware breakpoints (see hwwatch.h).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../cmd/common.h"
#include "../proc/proc.h"
#include "hwwatch.h"

#define MAX_THREADS 4096

static int watch_open(pid_t tid, uint64_t addr)
{
  struct perf_event_attr a;
  memset(&a, 0, sizeof(a));
  a.type = PERF_TYPE_BREAKPOINT;
  a.size = sizeof(a);
  a.bp_type = HW_BREAKPOINT_W;
  a.bp_addr = addr;
  a.bp_len = HW_BREAKPOINT_LEN_1;
  a.exclude_kernel = 1;
  a.exclude_hv = 1;
  return (int)syscall(SYS_perf_event_open, &a, tid, -1, -1,
                      PERF_FLAG_FD_CLOEXEC);
}

static const char *why_not(int err)
{
  switch (err) {
  case ENOSPC: return "its debug registers are in use (a debugger?)";
  case ENOENT:
  case EOPNOTSUPP:
  case EINVAL: return "this kernel or CPU has no hardware breakpoints";
  case EACCES:
  case EPERM: return "no permission (needs CAP_PERFMON or root)";
  default: return strerror(err);
  }
}

int hwwatch_run(pid_t pid, const uint64_t *addrs, size_t n, double seconds,
                uint64_t *hits, char *why, size_t len)
{
  pid_t *tids = malloc(MAX_THREADS * sizeof(*tids));
  int *fds = NULL, watched = 0, err = ESRCH;
  size_t nt = 0, nfd = 0;
  if (n > HWWATCH_SLOTS) n = HWWATCH_SLOTS;
  if (!tids || !(fds = malloc(MAX_THREADS * HWWATCH_SLOTS * sizeof(*fds)))) {
    snprintf(why, len, "out of memory");
    free(tids);
    return -1;
  }
  nt = proc_threads(pid, tids, MAX_THREADS);
  for (size_t i = 0; i < n; i++) hits[i] = UINT64_MAX;
  /* fds[t * n + i]: thread t, address i; -1 where it did not open (a
   * thread that exited meanwhile, or no slot left on it). */
  for (size_t t = 0; t < nt; t++)
    for (size_t i = 0; i < n; i++) {
      int fd = watch_open(tids[t], addrs[i]);
      if (fd < 0) err = errno;
      fds[nfd++] = fd;
    }
  sleep_s(seconds);
  for (size_t k = 0; k < nfd; k++) {
    uint64_t c;
    if (fds[k] < 0) continue;
    if (read(fds[k], &c, sizeof(c)) == sizeof(c)) {
      size_t i = k % n;
      hits[i] = (hits[i] == UINT64_MAX ? 0 : hits[i]) + c;
    }
    close(fds[k]);
  }
  for (size_t i = 0; i < n; i++) watched += hits[i] != UINT64_MAX;
  if (!watched)
    snprintf(why, len, "cannot watch process %d: %s", (int)pid, why_not(err));
  free(fds);
  free(tids);
  return watched ? watched : -1;
}
