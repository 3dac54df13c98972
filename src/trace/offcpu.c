/*
** luaspy offcpu (see offcpu.h and src/bpf/offcpu.bpf.c).
**
** The kernel sends a thread's stacks at every switch-out and the time it
** was out when it comes back, if long enough: the stacks wait here, one
** set per thread, for their time. A state names why the thread was out,
** from prev_state and the kernel functions on its stack; it is the root
** frame of the flame graph, so waits of one kind add up.
**
** With wakers, the waker's stacks of a wait come before its end and wait
** by the wakee too; the folded stack is then, as bcc's offwaketime has
** it: state; the wakee, root first; "--"; the waker, innermost first;
** "[waker: NAME]". The waker's leaf meets the wakee's leaf at "--".
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../cmd/common.h"
#include "../output/profile.h"
#include "offcpu.h"
#include "offcpu.skel.h"
#include "../record/bpfglue.h"
#include "session.h"
#include "topstacks.h"

#define TOP_STACKS 3
#define TOP_DEPTH 16
#define WAKER_SEP "--"

/* A copy of an event with stacks. */
struct evcopy {
  struct ls_event *ev;
  size_t cap;
};

/* The stacks of a thread that is off CPU, and of who woke it. */
struct pending {
  uint32_t tid;
  uint64_t ts, waker_ts; /* switch-out times the two were sent for */
  struct evcopy off, waker;
};

/* Off-CPU time by state. */
struct state_total {
  const char *name;
  uint64_t ns, count;
};

struct offcpu {
  const struct offcpu_opts *o;
  struct tsession s;
  struct pending *pend;
  size_t npend;
  struct profile *prof;
  const char **names;
  struct state_total states[16];
  int nstates;
  uint64_t waits, unmatched;
  struct topstacks *lock_waits, *lock_holds;
  struct topstacks *wakers; /* waker stacks by the time their wakees waited */
  struct tframe *wframes;   /* the waker's, while the wakee is named */
  uint64_t woken, woken_ns; /* waits with a waker, and their time */
  uint64_t nlock_waits, lock_wait_ns, lock_wait_max;
  uint64_t nlock_holds, lock_hold_ns, lock_hold_max;
  int failed;
};

/* Does some kernel frame's name contain one of words (NULL-ended)? */
static int kernel_has(const struct tframe *f, size_t n,
                      const char *const *words)
{
  for (size_t i = 0; i < n; i++) {
    if (strcmp(f[i].kind, "kernel")) continue;
    for (const char *const *w = words; *w; w++)
      if (strstr(f[i].name, *w)) return 1;
  }
  return 0;
}

/* Why the thread was off CPU. The kernel stack says more than the task
 * state, so it is asked first; then TASK_INTERRUPTIBLE (1) is sleeping,
 * TASK_UNINTERRUPTIBLE (2) blocked. */
static const char *state_of(uint64_t prev_state, const struct tframe *f,
                            size_t n)
{
  static const char *const fault[] = {"exc_page_fault", "do_user_addr_fault",
                                      "handle_mm_fault", NULL};
  static const char *const mmlock[] = {"rwsem_down", "lock_mm_and_find_vma",
                                       "mmap_read_lock", "mmap_write_lock",
                                       NULL};
  static const char *const futex[] = {"futex", NULL};
  static const char *const io[] = {"io_schedule", "folio_wait",   "blk_",
                                   "filemap_",    "ext4_",        "xfs_",
                                   "nfs_",        "wait_on_page", NULL};
  static const char *const sleep[] = {"nanosleep", NULL};
  static const char *const child[] = {"do_wait", "wait4", NULL};
  /* vfork's wait for the child is inlined in kernel_clone on some builds */
  static const char *const vfork[] = {"wait_for_vfork_done", NULL};
  static const char *const clone[] = {"kernel_clone", NULL};
  static const char *const completion[] = {"wait_for_completion",
                                           "__wait_for_common", NULL};
  static const char *const poll[] = {"epoll_wait", "ep_poll",     "do_poll",
                                     "do_select",  "do_sys_poll", NULL};
  static const char *const net[] = {"pipe_", "unix_", "sock_",
                                    "tcp_",  "inet_", NULL};
  if (prev_state == 0) return "runnable (preempted)";
  if (kernel_has(f, n, mmlock))
    return kernel_has(f, n, fault) ? "page fault: mmap_lock" : "mmap_lock";
  if (kernel_has(f, n, fault)) return "page fault";
  if (kernel_has(f, n, futex)) return "lock (futex)";
  if (kernel_has(f, n, io)) return "file I/O";
  if (kernel_has(f, n, sleep)) return "sleep";
  if (kernel_has(f, n, vfork) ||
      (kernel_has(f, n, clone) && kernel_has(f, n, completion)))
    return "vfork (waiting for the child)";
  if (kernel_has(f, n, child)) return "waiting for a child";
  if (kernel_has(f, n, poll)) return "poll";
  if (kernel_has(f, n, net)) return "pipe or socket I/O";
  if (prev_state & 2) return "blocked (D)";
  if (prev_state & 1) return "sleeping (S)";
  return "other";
}

static struct pending *pending_of(struct offcpu *oc, uint32_t tid, int make)
{
  struct pending *np;
  for (size_t i = 0; i < oc->npend; i++)
    if (oc->pend[i].tid == tid) return &oc->pend[i];
  if (!make || !(np = realloc(oc->pend, (oc->npend + 1) * sizeof(*np))))
    return NULL;
  oc->pend = np;
  np = &oc->pend[oc->npend++];
  memset(np, 0, sizeof(*np));
  np->tid = tid;
  return np;
}

static int copy_event(struct evcopy *c, const struct ls_event *ev, size_t size)
{
  if (size > c->cap) {
    struct ls_event *nb = realloc(c->ev, size);
    if (!nb) return -1;
    c->ev = nb;
    c->cap = size;
  }
  memcpy(c->ev, ev, size);
  return 0;
}

static void on_offcpu(struct offcpu *oc, const struct ls_event *ev, size_t size)
{
  struct pending *p = pending_of(oc, ev->h.tid, 1);
  if (!p || copy_event(&p->off, ev, size)) {
    oc->failed = 1;
    return;
  }
  p->ts = ev->h.ts;
}

/* The first waker of a wait is the one that woke it. */
static void on_waker(struct offcpu *oc, const struct ls_event *ev, size_t size)
{
  struct pending *p = pending_of(oc, (uint32_t)ev->h.arg, 1);
  if (!p) {
    oc->failed = 1;
    return;
  }
  if (p->waker_ts == ev->h.ts) return;
  if (copy_event(&p->waker, ev, size)) {
    oc->failed = 1;
    return;
  }
  p->waker_ts = ev->h.ts;
}

/* Names the waker of ev into oc->wframes, root first, then its name as
 * if it were the innermost frame. Returns how many. */
static size_t name_waker(struct offcpu *oc, struct ls_event *ev)
{
  static const char *const irq[] = {"asm_sysvec_",     "asm_common_interrupt",
                                    "handle_softirqs", "__do_softirq",
                                    "irq_exit",        NULL};
  const struct tframe *f = oc->s.tt.frames;
  struct tframe *w = oc->wframes, *name;
  size_t n = ttarget_stack(&oc->s.tt, ev, 1), k = 0, from = 0;
  char comm[sizeof(ev->nat.comm) + 1];
  int in_irq = kernel_has(f, n, irq);
  /* The task an interrupt came upon did not wake anyone: its stacks are
   * not the waker's. The waker starts at the outermost interrupt frame. */
  if (in_irq && ev->h.arg2 == LS_WAKER_TARGET) {
    ev->nat.ip = 0;
    ev->lua.status = LS_NO_VM;
    n = ttarget_stack(&oc->s.tt, ev, 1);
  }
  while (in_irq && from < n && !kernel_has(&f[from], 1, irq)) from++;
  for (size_t i = from; i < n; i++) w[k++] = f[i];
  /* comm is whatever the task set (prctl): printable and no ';' */
  for (size_t i = 0; i < sizeof(ev->nat.comm); i++) {
    char c = ev->nat.comm[i];
    comm[i] = c;
    if (!c) break;
    if (c < 0x20 || c > 0x7e || c == ';') comm[i] = '?';
  }
  comm[sizeof(ev->nat.comm)] = 0;
  name = &w[k++];
  name->kind = "vm";
  name->chunk[0] = 0;
  name->line = -1;
  snprintf(name->name, sizeof(name->name), "[waker: %s]",
           in_irq ? "interrupt" : comm);
  snprintf(name->str, sizeof(name->str), "%s", name->name);
  return k;
}

static void add_state(struct offcpu *oc, const char *state, uint64_t ns)
{
  int i;
  for (i = 0; i < oc->nstates; i++)
    if (!strcmp(oc->states[i].name, state)) break;
  if (i == oc->nstates) {
    if (i == (int)(sizeof(oc->states) / sizeof(oc->states[0]))) return;
    oc->states[oc->nstates++].name = state;
  }
  oc->states[i].ns += ns;
  oc->states[i].count++;
}

static void on_oncpu(struct offcpu *oc, const struct ls_evhead *h)
{
  struct pending *p = pending_of(oc, h->tid, 0);
  char root[96];
  const char *state;
  size_t n;
  uint64_t us = (h->value + 500) / 1000;
  size_t nw = 0, k;
  if (!p || !p->off.ev || p->ts != h->ts) {
    oc->unmatched++; /* its stacks were lost (ring buffer full) */
    return;
  }
  if (oc->o->wakers && p->waker.ev && p->waker_ts == h->ts) {
    nw = name_waker(oc, p->waker.ev);
    /* by the time waited; topstacks prints the name, then the innermost */
    if (topstacks_add(oc->wakers, oc->wframes, nw, h->value)) oc->failed = 1;
    oc->woken++;
    oc->woken_ns += h->value;
  }
  n = ttarget_stack(&oc->s.tt, p->off.ev, 1);
  state = state_of((uint64_t)p->off.ev->h.arg, oc->s.tt.frames, n);
  add_state(oc, state, h->value);
  oc->waits++;
  snprintf(root, sizeof(root), "[off-cpu: %s]", state);
  oc->names[0] = root;
  for (k = 0; k < n; k++) oc->names[k + 1] = oc->s.tt.frames[k].str;
  k = n + 1;
  if (nw) { /* the waker innermost first, then its name */
    oc->names[k++] = WAKER_SEP;
    for (size_t i = nw - 1; i-- > 0;) oc->names[k++] = oc->wframes[i].str;
    oc->names[k++] = oc->wframes[nw - 1].str;
  }
  if (us && profile_add(oc->prof, oc->names, k, us)) oc->failed = 1;
  p->ts = 0;
}

static void on_lock(struct offcpu *oc, const struct ls_event *ev)
{
  size_t n = ttarget_stack(&oc->s.tt, ev, 1);
  uint64_t ns = ev->h.value;
  if (ev->h.type == LS_EV_MMAP_WAIT) {
    oc->nlock_waits++;
    oc->lock_wait_ns += ns;
    if (ns > oc->lock_wait_max) oc->lock_wait_max = ns;
    if (topstacks_add(oc->lock_waits, oc->s.tt.frames, n, ns)) oc->failed = 1;
  } else {
    oc->nlock_holds++;
    oc->lock_hold_ns += ns;
    if (ns > oc->lock_hold_max) oc->lock_hold_max = ns;
    if (topstacks_add(oc->lock_holds, oc->s.tt.frames, n, ns)) oc->failed = 1;
  }
}

static void on_event(const struct ls_event *ev, size_t size, void *arg)
{
  struct offcpu *oc = arg;
  switch (ev->h.type) {
  case LS_EV_OFFCPU: on_offcpu(oc, ev, size); break;
  case LS_EV_ONCPU: on_oncpu(oc, &ev->h); break;
  case LS_EV_MMAP_WAIT:
  case LS_EV_MMAP_HOLD: on_lock(oc, ev); break;
  case LS_EV_WAKER: on_waker(oc, ev, size); break;
  }
  if (oc->failed) *oc->o->stop = 1;
}

static int by_ns(const void *a, const void *b)
{
  const struct state_total *x = a, *y = b;
  return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

static void summary(struct offcpu *oc, const uint64_t c[LS_NTCOUNTERS])
{
  FILE *f = stderr;
  qsort(oc->states, (size_t)oc->nstates, sizeof(oc->states[0]), by_ns);
  fprintf(f, "luaspy: %llu waits of %llu us or more in process %d",
          (unsigned long long)oc->waits, (unsigned long long)oc->o->min_us,
          (int)oc->o->pid);
  if (c[LS_TC_LOST] || oc->unmatched)
    fprintf(f, " (%llu stacks lost: ring buffer full)",
            (unsigned long long)c[LS_TC_LOST]);
  fprintf(f, "\n  %-32s %8s %12s\n", "state", "waits", "ms");
  for (int i = 0; i < oc->nstates; i++)
    fprintf(f, "  %-32s %8llu %12.3f\n", oc->states[i].name,
            (unsigned long long)oc->states[i].count, oc->states[i].ns / 1e6);
  fprintf(f, "mmap_lock: %llu waits, %.3f ms in all, longest %.3f ms\n",
          (unsigned long long)oc->nlock_waits, oc->lock_wait_ns / 1e6,
          oc->lock_wait_max / 1e6);
  if (oc->nlock_waits) {
    fprintf(f, "  waiters, innermost frame first:\n");
    topstacks_print(oc->lock_waits, f, TOP_STACKS, TOP_DEPTH);
  }
  fprintf(f,
          "mmap_lock held for write: %llu times, %.3f ms in all, longest "
          "%.3f ms\n",
          (unsigned long long)oc->nlock_holds, oc->lock_hold_ns / 1e6,
          oc->lock_hold_max / 1e6);
  if (oc->nlock_holds) {
    fprintf(f, "  holders, innermost frame first:\n");
    topstacks_print(oc->lock_holds, f, TOP_STACKS, TOP_DEPTH);
  }
  if (!oc->o->wakers) return;
  fprintf(f, "wakers: %llu waits with their waker, %.3f ms in all\n",
          (unsigned long long)oc->woken, oc->woken_ns / 1e6);
  if (oc->woken) {
    fprintf(f, "  top wakers by the time the threads they woke had waited, "
               "the waker's innermost frame first:\n");
    topstacks_print(oc->wakers, f, TOP_STACKS, TOP_DEPTH);
  }
}

/* Loads and attaches the programs. NULL after an error line. */
static struct luaspy_offcpu *load(struct offcpu *oc)
{
  struct luaspy_offcpu *skel;
  int ncpus = libbpf_num_possible_cpus(), err;
  bpfglue_quiet_libbpf();
  if (!(skel = luaspy_offcpu__open())) {
    die_msg("offcpu: cannot open the BPF programs: %s", strerror(errno));
    return NULL;
  }
  skel->rodata->min_ns = oc->o->min_us * 1000;
  /* without --wakers, wakeups are not traced at all */
  bpf_program__set_autoload(skel->progs.luaspy_waking, oc->o->wakers);
  bpf_map__set_max_entries(skel->maps.luaspy_scratch,
                           ncpus > 0 ? (__u32)ncpus : 1);
  if ((err = -luaspy_offcpu__load(skel)) ||
      (err = -luaspy_offcpu__attach(skel))) {
    die_msg("offcpu: cannot load the BPF programs: %s%s", strerror(err),
            bpfglue_hint(err));
    luaspy_offcpu__destroy(skel);
    return NULL;
  }
  return skel;
}

int offcpu_run(const struct offcpu_opts *o)
{
  struct offcpu oc = {.o = o};
  struct luaspy_offcpu *skel = NULL;
  struct render_opts ro = {.title = "luaspy offcpu"};
  uint64_t c[LS_NTCOUNTERS];
  char sub[160];
  int rc = 1;
  if (ttarget_open(&oc.s.tt, o->pid, 1)) return 1;
  if (!(oc.prof = profile_new("us")) ||
      /* state, wakee, "--", waker and its name */
      !(oc.names = calloc(2 * TSTACK_MAX + 3, sizeof(*oc.names))) ||
      !(oc.wakers = topstacks_new()) ||
      !(oc.wframes = calloc(TSTACK_MAX + 1, sizeof(*oc.wframes))) ||
      !(oc.lock_waits = topstacks_new()) ||
      !(oc.lock_holds = topstacks_new())) {
    die_msg("out of memory");
    goto out;
  }
  if (!(skel = load(&oc))) goto out;
  oc.s.procs_fd = bpf_map__fd(skel->maps.luaspy_procs);
  oc.s.vms_fd = bpf_map__fd(skel->maps.luaspy_vms);
  oc.s.events_fd = bpf_map__fd(skel->maps.luaspy_events);
  oc.s.counts_fd = bpf_map__fd(skel->maps.luaspy_counts);
  oc.s.duration = o->duration;
  oc.s.stop = o->stop;
  oc.s.fn = on_event;
  oc.s.arg = &oc;
  if (tsession_run(&oc.s, "offcpu")) goto out;
  if (oc.failed) {
    die_msg("out of memory");
    goto out;
  }
  tsession_counts(&oc.s, c);
  snprintf(sub, sizeof(sub),
           "process %d: %llu waits of %llu us or more, "
           "microseconds off CPU",
           (int)o->pid, (unsigned long long)oc.waits,
           (unsigned long long)o->min_us);
  ro.subtitle = sub;
  if (profile_write(oc.prof, o->output, o->format, &ro)) goto out;
  summary(&oc, c);
  if (strcmp(o->output, "-")) fprintf(stderr, "luaspy: wrote %s\n", o->output);
  rc = 0;
out:
  luaspy_offcpu__destroy(skel);
  for (size_t i = 0; i < oc.npend; i++) {
    free(oc.pend[i].off.ev);
    free(oc.pend[i].waker.ev);
  }
  free(oc.pend);
  free(oc.names);
  topstacks_free(oc.lock_waits);
  topstacks_free(oc.lock_holds);
  topstacks_free(oc.wakers);
  free(oc.wframes);
  profile_free(oc.prof);
  ttarget_close(&oc.s.tt);
  return rc;
}
