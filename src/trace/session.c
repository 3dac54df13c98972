/*
** The event loop of offcpu and syscalls (see session.h).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../cmd/common.h"
#include "../proc/proc.h"
#include "session.h"

#define POLL_MS 100
#define DRAIN_S 0.5 /* at most, for what is left at the end */

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int tevent_ok(const void *data, size_t size)
{
  const struct ls_event *ev = data;
  size_t head =
      offsetof(struct ls_event, lua) + offsetof(struct ls_sample, frames);
  if (size < sizeof(struct ls_evhead)) return 0;
  /* Events with stacks carry the whole header and their frames. */
  return ev->h.type == LS_EV_ONCPU ||
         (size >= head &&
          size >= head + (size_t)ev->lua.nframes * sizeof(struct ls_frame));
}

/* A target that makes events as fast as they are read would keep one
 * ring_buffer__poll() going for ever: the handler ends it when the run is
 * due (Ctrl-C, the duration, the bounded final drain). */
#define DUE (-ECANCELED)

static int on_ring(void *ctx, void *data, size_t size)
{
  struct tsession *s = ctx;
  if (tevent_ok(data, size)) s->fn(data, size, s->arg);
  if (++s->handled % 64 == 0 && now_s() >= s->due) return DUE;
  return 0;
}

int tsession_run(struct tsession *s, const char *cmd)
{
  struct ring_buffer *rb = ring_buffer__new(s->events_fd, on_ring, s, NULL);
  double start = now_s();
  int rc = 0;
  if (ttarget_push(&s->tt, s->procs_fd, s->vms_fd)) {
    die_msg("%s: cannot pass the Lua VMs to the kernel: %s", cmd,
            strerror(errno));
    ring_buffer__free(rb);
    return 1;
  }
  if (!rb) {
    die_msg("%s: cannot read the ring buffer: %s", cmd, strerror(errno));
    return 1;
  }
  while (!*s->stop && (s->duration <= 0 || now_s() - start < s->duration)) {
    int n;
    s->due = now_s() + POLL_MS / 1e3;
    if (s->duration > 0 && start + s->duration < s->due)
      s->due = start + s->duration;
    n = ring_buffer__poll(rb, POLL_MS);
    if (n < 0 && n != -EINTR && n != DUE) {
      die_msg("%s: reading events failed: %s", cmd, strerror(-n));
      rc = 1;
      break;
    }
    if (!proc_alive(s->tt.pid)) break;
  }
  /* What is still in the ring buffer belongs to the recording, within
   * reason: the programs are still attached. */
  s->due = now_s() + DRAIN_S;
  while (ring_buffer__poll(rb, 0) > 0 && now_s() < s->due) continue;
  ring_buffer__free(rb);
  return rc;
}

void tcounts(int counts_fd, uint64_t c[LS_NTCOUNTERS])
{
  int ncpus = libbpf_num_possible_cpus();
  __u64 *v = ncpus > 0 ? calloc((size_t)ncpus, sizeof(*v)) : NULL;
  for (__u32 i = 0; i < LS_NTCOUNTERS; i++) {
    c[i] = 0;
    if (v && !bpf_map_lookup_elem(counts_fd, &i, v))
      for (int k = 0; k < ncpus; k++) c[i] += v[k];
  }
  free(v);
}

void tsession_counts(const struct tsession *s, uint64_t c[LS_NTCOUNTERS])
{
  tcounts(s->counts_fd, c);
}
