/*
** The run of alloc and leaks (see alloc.h): the probe windows, the events
** they bring, and the outputs.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "../cmd/common.h"
#include "../output/profile.h"
#include "../record/summary.h"
#include "alloc.h"
#include "leaks.h"
#include "probe.h"
#include "window.h"

#define POLL_MS 100
#define RECHECK_S 0.5 /* between leaks' two heap walks */
#define TOP_FUNCTIONS 10
/* What one allocator call costs the target while a probe is attached: a
 * trap into the kernel and back, single-stepping the probed instruction:
 * about 22 us on this machine when quiet, several times that when busy
 * (bench/README.md). The budget takes the high figure, capped by the time
 * the probes were in place. The uretprobe of leaks adds one more trap. */
#define TRAP_S 100e-6

struct arun {
  const struct alloc_opts *o;
  struct ttarget tt;
  struct allocprobe ap;
  struct window win;
  struct profile *prof; /* alloc */
  struct leakset *ls;   /* leaks */
  struct rec_stats st;
  const char **names;
  double attaching;    /* when the current window's probes began to attach */
  uint64_t closing_ns; /* leaks: events from then on wait (see births) */
  int failed;
};

/* While probes are attached, events may come as fast as they are named:
 * the ring buffer's poll would then never return to close the window.
 * So the handler stops it when the window is due (or on Ctrl-C). */
#define DUE (-ECANCELED)
static int due(const struct arun *ar, uint64_t ts)
{
  if (ar->closing_ns) /* births(): up to the window's close, no further */
    return ts >= ar->closing_ns ? DUE : 0;
  return *ar->o->stop || (ar->win.on && mono_now() >= ar->win.next) ? DUE : 0;
}

static int on_event(void *ctx, void *data, size_t size)
{
  struct arun *ar = ctx;
  const struct ls_allocev *ev = data;
  size_t head = offsetof(struct ls_allocev, lua) +
                offsetof(struct ls_sample, frames),
         n;
  if (size < head ||
      size < head + (size_t)ev->lua.nframes * sizeof(struct ls_frame))
    return 0;
  if (ar->ls && (!ev->call.nsize || (ev->call.ptr && ev->call.ptr != ev->ret)))
    leaks_freed(ar->ls, ev->call.ptr); /* a free, or a realloc that moved */
  if (!ev->call.nsize) return due(ar, ev->call.ts);
  ar->st.received++;
  stats_tally(&ar->st, &ev->lua);
  n = ttarget_lua_stack(&ar->tt, &ev->lua, ar->o->line_mode);
  if (ar->ls) {
    int vm = allocprobe_vm(&ar->ap, ar->tt.t.nvms, ev->call.ud);
    if (leaks_add(ar->ls, vm, ev->ret, ev->call.nsize, ev->call.ts,
                  ar->tt.frames, n))
      goto fail;
    return due(ar, ev->call.ts);
  }
  for (size_t i = 0; i < n; i++) ar->names[i] = ar->tt.frames[i].str;
  if (profile_add(ar->prof, ar->names, n, ar->o->count ? 1 : ev->call.nsize))
    goto fail;
  return due(ar, ev->call.ts);
fail:
  die_msg("%s: out of memory", ar->o->leaks ? "leaks" : "alloc");
  ar->failed = 1;
  *ar->o->stop = 1;
  return -1;
}

static uint64_t gc_total(const struct ttarget *tt)
{
  uint64_t sum = 0, v;
  for (size_t i = 0; i < tt->t.nvms; i++)
    if (!proc_read_u64(tt->pid, tt->t.vms[i].G + tt->t.vms[i].lay->g_gc_total,
                       &v))
      sum += v;
  return sum;
}

/* leaks: the birth marks of the window's blocks, read while the probes
 * are still on, so that a block freed and handed out again before it is
 * read cannot go unseen (its free comes as an event, later). The target
 * makes more events all the while: each round reads those made before
 * it began, a few rounds while there are any, but for no longer than a
 * window (the probes stay on meanwhile: the target pays). */
#define BIRTH_ROUNDS 4
static int births(struct arun *ar, struct ring_buffer *rb)
{
  double until = mono_now() + ar->win.on_s;
  int rc = 0;
  for (int k = 0, more = 1; k < BIRTH_ROUNDS && more && !rc; k++) {
    ar->closing_ns = (uint64_t)(mono_now() * 1e9);
    more = ring_buffer__consume(rb) != 0;
    rc = leaks_births(ar->ls, &ar->tt, (uint64_t)(ar->attaching * 1e9));
    if (mono_now() >= until) break;
  }
  ar->closing_ns = 0;
  return rc;
}

/* Opens and closes windows until the end; events go to on_event. Returns
 * 0, or 1 after an error line. */
static int sample(struct arun *ar, const char *cmd, double start)
{
  const struct alloc_opts *o = ar->o;
  struct ring_buffer *rb =
      ring_buffer__new(allocprobe_events_fd(&ar->ap), on_event, ar, NULL);
  double end = o->duration > 0 ? start + o->duration : 0, t;
  uint64_t c[LS_NACOUNTERS];
  int rc = 0;
  if (!rb) {
    die_msg("%s: cannot read the ring buffer: %s", cmd, strerror(errno));
    return 1;
  }
  window_init(&ar->win, o->window_ms / 1e3, o->budget_pct / 100,
              TRAP_S * (o->leaks ? 2 : 1),
              end > 0 && o->leaks ? end - o->grace : end, start);
  while (!*o->stop && (end <= 0 || (t = mono_now()) < end)) {
    double wait;
    int n;
    t = mono_now();
    /* Before the window's cost is counted: the probes are on meanwhile. */
    if (ar->ls && ar->win.on && t >= ar->win.next) {
      if (births(ar, rb)) rc = 1;
      t = mono_now();
    }
    allocprobe_counts(&ar->ap, c);
    switch (window_tick(&ar->win, t, c[LS_AC_CALLS])) {
    case WINDOW_ATTACH:
      ar->attaching = t;
      if (allocprobe_attach(&ar->ap, cmd)) rc = 1;
      window_attached(&ar->win, t = mono_now());
      break;
    case WINDOW_DETACH: allocprobe_detach(&ar->ap); break;
    case WINDOW_STAY: break;
    }
    if (rc) break;
    wait = window_wait(&ar->win, t);
    if (end > 0 && end - t < wait) wait = end - t;
    if (wait > POLL_MS / 1e3) wait = POLL_MS / 1e3;
    /* Attaching may have taken us past the end: a negative timeout would
     * make epoll wait for ever, or until the target allocates. */
    if (wait < 0) wait = 0;
    n = ring_buffer__poll(rb, (int)(wait * 1e3) + 1);
    if (n < 0 && n != -EINTR && n != DUE && !ar->failed) {
      die_msg("%s: reading events failed: %s", cmd, strerror(-n));
      rc = 1;
      break;
    }
    if (!proc_alive(o->pid)) break;
  }
  if (ar->ap.attached) {
    if (ar->ls && births(ar, rb)) rc = 1;
    allocprobe_detach(&ar->ap);
    ar->win.on_total += mono_now() - ar->win.opened;
  }
  while (ring_buffer__poll(rb, 0) > 0) continue;
  ring_buffer__free(rb);
  return rc || ar->failed;
}

static int finish_alloc(struct arun *ar, double seconds)
{
  const struct alloc_opts *o = ar->o;
  char sub[160];
  uint64_t c[LS_NACOUNTERS];
  allocprobe_counts(&ar->ap, c);
  ar->st.lost = c[LS_AC_LOST];
  snprintf(sub, sizeof(sub),
           "process %d, %.1f s; probes attached %.3f s in %u windows",
           (int)o->pid, seconds, ar->win.on_total, ar->win.count);
  if (!profile_total(ar->prof)) {
    const char *none = "[no allocation sampled]";
    if (profile_add(ar->prof, &none, 1, 1)) return 1;
  }
  if (profile_write(ar->prof, o->output, o->format,
                    &(struct render_opts){
                        .title = o->count ? "Lua allocations (sampled count)"
                                          : "Lua allocations (sampled bytes)",
                        .subtitle = sub}))
    return 1;
  fprintf(stderr,
          "luaspy: %s; %llu allocator calls seen, %llu bytes in %llu "
          "allocations\n",
          sub, (unsigned long long)c[LS_AC_CALLS],
          (unsigned long long)c[LS_AC_BYTES],
          (unsigned long long)c[LS_AC_ALLOCS]);
  summary_print(stderr, ar->prof, &ar->st, TOP_FUNCTIONS);
  if (strcmp(o->output, "-")) fprintf(stderr, "luaspy: wrote %s\n", o->output);
  return 0;
}

static int finish_leaks(struct arun *ar, double seconds, uint64_t gc_before)
{
  const struct alloc_opts *o = ar->o;
  struct leakrun r = {.pid = o->pid,
                      .seconds = seconds,
                      .probed_s = ar->win.on_total,
                      .windows = ar->win.count,
                      .gc_before = gc_before,
                      .alloc_path = ar->ap.sites[0].path,
                      .alloc_offset = ar->ap.sites[0].offset,
                      .top = o->top};
  uint64_t c[LS_NACOUNTERS];
  struct timespec now;
  allocprobe_counts(&ar->ap, c);
  r.lost = c[LS_AC_LOST];
  if (!proc_alive(o->pid)) {
    die_msg("leaks: process %d exited before its heap could be read",
            (int)o->pid);
    return 1;
  }
  r.gc_after = gc_total(&ar->tt);
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (leaks_judge(ar->ls, &ar->tt,
                  (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec,
                  RECHECK_S, &r))
    return 1;
  if (o->confirm > 0 && leaks_confirm(ar->ls, o->pid, o->confirm)) return 1;
  if (o->output && leaks_flame(ar->ls, o->output, o->format)) return 1;
  if (o->json) return leaks_report_json(ar->ls, &r, stdout) ? 1 : 0;
  leaks_report_text(ar->ls, &r,
                    o->output && !strcmp(o->output, "-") ? stderr : stdout);
  return 0;
}

int alloc_run(const struct alloc_opts *o)
{
  const char *cmd = o->leaks ? "leaks" : "alloc";
  struct arun ar = {.o = o};
  uint64_t gc_before;
  double start;
  int rc = 1;
  if (ttarget_open(&ar.tt, o->pid, 0)) return 1;
  if (!(ar.names = malloc(TSTACK_MAX * sizeof(*ar.names))) ||
      (o->leaks
           ? !(ar.ls = leaks_new())
           : !(ar.prof = profile_new(o->count ? "allocations" : "bytes")))) {
    die_msg("out of memory");
    goto out;
  }
  if (allocprobe_open(&ar.ap, &ar.tt, o->leaks, cmd)) goto out;
  gc_before = gc_total(&ar.tt);
  start = mono_now();
  rc = sample(&ar, cmd, start);
  if (rc) goto out;
  if (o->leaks) {
    /* Requests still in flight when the last window closed are done by
     * now: what they allocated is garbage, not alive. */
    double idle = mono_now() - (ar.win.opened + o->window_ms / 1e3);
    if (idle < o->grace && proc_alive(o->pid)) sleep_s(o->grace - idle);
    rc = finish_leaks(&ar, mono_now() - start, gc_before);
  } else {
    rc = finish_alloc(&ar, mono_now() - start);
  }
out:
  allocprobe_close(&ar.ap);
  profile_free(ar.prof);
  leaks_free(ar.ls);
  free(ar.names);
  ttarget_close(&ar.tt);
  return rc;
}
