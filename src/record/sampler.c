/*
** Loading, attaching and feeding the sampling BPF program (libbpf
** skeleton of src/bpf/record.bpf.c).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "record.skel.h"
#include "bpfglue.h"
#include "sampler.h"

/* The BPF side spells luajit.h's enums as plain numbers. */
_Static_assert(LS_RAW_FUNC == LJ_RAW_FUNC && LS_RAW_TRACE == LJ_RAW_TRACE &&
                   LS_RAW_VM == LJ_RAW_VM && LS_RAW_NATIVE == LJ_RAW_NATIVE,
               "raw frame kinds differ");
_Static_assert(LS_OK == LJ_OK && LS_PARTIAL_READ == LJ_PARTIAL_READ &&
                   LS_PARTIAL_BADLINK == LJ_PARTIAL_BADLINK &&
                   LS_PARTIAL_BADFUNC == LJ_PARTIAL_BADFUNC &&
                   LS_PARTIAL_DEPTH == LJ_PARTIAL_DEPTH &&
                   LS_PARTIAL_LOOP == LJ_PARTIAL_LOOP,
               "partial reasons differ");
_Static_assert(LJ_MAX_OBJECTS <= LS_MAX_OBJS, "too many LuaJIT objects");

/* The stack cache: frames below the top one, by the key the kernel sends
 * them under (record.bpf.c). When full, the kernel is told to key stacks
 * with the next generation, which sends each one whole again, in a fresh
 * table: the last generation's table stays for the samples already in
 * the ring buffer that name it. */
#define CACHE_SLOTS 8192 /* a power of 2; half of it used at most */
#define CACHE_FRAMES_MAX (512 * 1024) /* 16 MiB of frames */

struct cached {
  struct ls_stackkey key;  /* hash 0: a free slot */
  struct ls_frame *frames; /* key.nframes - 1 */
};

struct sampler {
  struct luaspy_record *skel;
  struct bpf_link **links; /* per CPU; each owns its perf event */
  int *pfds;               /* perf events not owned by a link yet */
  int ncpus;
  int native; /* records start with a struct ls_native */
  struct ring_buffer *rb;
  sampler_fn fn;
  void *arg;
  int handled;
  struct cached *cache[2];         /* CACHE_SLOTS each, by generation parity */
  size_t cache_used, cache_frames; /* of the current generation's */
  uint16_t gen;
  uint64_t uncached;
  struct ls_sample *whole;           /* a sample sent as a key, filled in */
  const struct ls_stackkey *cur_key; /* of the sample being handled */
  const struct ls_native *cur_nat;
};

static int open_cpu_clock(int cpu, int hz)
{
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  /* cpu-clock counts nanoseconds: a fixed period is exact from the first
   * sample, where frequency mode needs time to converge. */
  attr.sample_period = 1000000000ull / (uint64_t)hz;
  return (int)syscall(SYS_perf_event_open, &attr, -1, cpu, -1,
                      PERF_FLAG_FD_CLOEXEC);
}

static int attach_all(struct sampler *s, int hz, char *why, size_t len)
{
  int attached = 0;
  for (int cpu = 0; cpu < s->ncpus; cpu++) {
    int fd = open_cpu_clock(cpu, hz);
    if (fd < 0) {
      if (errno == ENODEV) continue; /* a possible CPU that is offline */
      int err = errno;
      snprintf(why, len, "cannot open a cpu-clock perf event at %d Hz: %s%s",
               hz, strerror(err),
               err == EINVAL
                   ? " (see /proc/sys/kernel/perf_event_max_sample_rate)"
                   : bpfglue_hint(err));
      return -1;
    }
    s->pfds[cpu] = fd;
    s->links[cpu] =
        bpf_program__attach_perf_event(s->skel->progs.luaspy_sample, fd);
    if (!s->links[cpu]) {
      int err = errno;
      snprintf(why, len, "cannot attach the BPF program to CPU %d: %s%s", cpu,
               strerror(err), bpfglue_hint(err));
      return -1;
    }
    s->pfds[cpu] = -1; /* the link owns it now: destroying it closes it */
    attached++;
  }
  if (!attached) {
    snprintf(why, len, "no online CPU to sample");
    return -1;
  }
  return 0;
}

struct sampler *sampler_open(int hz, int native, char *why, size_t len)
{
  struct sampler *s = calloc(1, sizeof(*s));
  int err;
  bpfglue_quiet_libbpf();
  if (!s) {
    snprintf(why, len, "out of memory");
    return NULL;
  }
  s->ncpus = libbpf_num_possible_cpus();
  if (s->ncpus <= 0) {
    snprintf(why, len, "cannot count the CPUs: %s", strerror(-s->ncpus));
    free(s);
    return NULL;
  }
  s->native = native;
  s->links = calloc((size_t)s->ncpus, sizeof(*s->links));
  s->pfds = calloc((size_t)s->ncpus, sizeof(*s->pfds));
  s->cache[0] = calloc(CACHE_SLOTS, sizeof(*s->cache[0]));
  s->cache[1] = calloc(CACHE_SLOTS, sizeof(*s->cache[1]));
  s->whole = malloc(sizeof(*s->whole));
  if (!s->links || !s->pfds || !s->cache[0] || !s->cache[1] || !s->whole) {
    snprintf(why, len, "out of memory");
    goto fail;
  }
  for (int i = 0; i < s->ncpus; i++) s->pfds[i] = -1;
  if (!(s->skel = luaspy_record__open())) {
    err = errno;
    snprintf(why, len, "cannot open the BPF programs: %s", strerror(err));
    goto fail;
  }
  bpf_map__set_max_entries(s->skel->maps.luaspy_scratch, (__u32)s->ncpus);
  s->skel->rodata->native_stack = (__u32)native;
  if (bpfglue_debug_level() >= 2)
    bpf_program__set_log_level(s->skel->progs.luaspy_sample, 4 /* stats */);
  if ((err = luaspy_record__load(s->skel))) {
    err = -err;
    snprintf(why, len, "cannot load BPF programs: %s%s", strerror(err),
             bpfglue_hint(err));
    goto fail;
  }
  if (attach_all(s, hz, why, len)) goto fail;
  return s;
fail:
  sampler_close(s);
  return NULL;
}

void sampler_close(struct sampler *s)
{
  if (!s) return;
  ring_buffer__free(s->rb);
  for (int i = 0; s->links && i < s->ncpus; i++) bpf_link__destroy(s->links[i]);
  for (int i = 0; s->pfds && i < s->ncpus; i++)
    if (s->pfds[i] >= 0) close(s->pfds[i]);
  luaspy_record__destroy(s->skel);
  for (int g = 0; g < 2; g++) {
    for (size_t i = 0; s->cache[g] && i < CACHE_SLOTS; i++)
      free(s->cache[g][i].frames);
    free(s->cache[g]);
  }
  free(s->whole);
  free(s->links);
  free(s->pfds);
  free(s);
}

/* Is dispatch one of t's VMs? */
static int has_vm(const struct lj_target *t, __u64 dispatch)
{
  for (size_t i = 0; t && i < t->nvms; i++)
    if (t->vms[i].dispatch == dispatch) return 1;
  return 0;
}

/* Forgets the VMs of pid that are not in keep (all of them if NULL). */
static void drop_vms(struct sampler *s, __u32 pid, const struct lj_target *keep)
{
  int vms = bpf_map__fd(s->skel->maps.luaspy_vms);
  struct ls_vmkey key, next;
  int first = 1;
  /* A deleted key cannot be the cursor of the next get_next_key: start
   * over after each deletion (a process has few VMs). */
  while (!bpf_map_get_next_key(vms, first ? NULL : &key, &next)) {
    first = 0;
    key = next;
    if (next.pid == pid && !has_vm(keep, next.dispatch)) {
      bpf_map_delete_elem(vms, &next);
      first = 1;
    }
  }
}

int sampler_set_target(struct sampler *s, const struct lj_target *t)
{
  if (bpfglue_push_target(bpf_map__fd(s->skel->maps.luaspy_procs),
                          bpf_map__fd(s->skel->maps.luaspy_vms), t))
    return -1;
  drop_vms(s, (__u32)t->pid, t); /* closed since the last discovery */
  return 0;
}

void sampler_drop_target(struct sampler *s, pid_t pid)
{
  __u32 p = (__u32)pid;
  bpf_map_delete_elem(bpf_map__fd(s->skel->maps.luaspy_procs), &p);
  drop_vms(s, p, NULL);
}

static size_t slot_of(const struct ls_stackkey *k)
{
  return (size_t)(k->hash ^ (k->dispatch * 0x9e3779b97f4a7c15ull) ^ k->pid) &
         (CACHE_SLOTS - 1);
}

static struct cached *cache_find(struct sampler *s, const struct ls_stackkey *k)
{
  struct cached *t = s->cache[k->gen & 1];
  for (size_t i = slot_of(k);; i = (i + 1) & (CACHE_SLOTS - 1)) {
    if (!t[i].key.hash) return NULL; /* never full: see cache_add */
    if (!memcmp(&t[i].key, k, sizeof(*k))) return &t[i];
  }
}

/* The next generation, in the table of the one before the current. */
static void cache_next(struct sampler *s)
{
  struct cached *t = s->cache[(s->gen + 1) & 1];
  for (size_t i = 0; i < CACHE_SLOTS; i++) {
    free(t[i].frames);
    t[i].frames = NULL;
    t[i].key.hash = 0;
  }
  s->cache_used = s->cache_frames = 0;
  s->skel->bss->stack_gen = ++s->gen;
}

/* Keeps the n frames sent under k. */
static void cache_add(struct sampler *s, const struct ls_stackkey *k,
                      const struct ls_frame *frames, size_t n)
{
  struct cached *t = s->cache[s->gen & 1];
  struct ls_frame *copy;
  size_t i;
  /* Keyed before the last cache_next, or sent whole by two CPUs at once. */
  if (k->gen != s->gen || cache_find(s, k)) return;
  if (s->cache_used >= CACHE_SLOTS / 2 ||
      s->cache_frames + n > CACHE_FRAMES_MAX) {
    cache_next(s); /* the next sample of it is sent whole again */
    return;
  }
  if (!(copy = malloc(n * sizeof(*copy)))) return; /* resent when missed */
  memcpy(copy, frames, n * sizeof(*copy));
  for (i = slot_of(k); t[i].key.hash; i = (i + 1) & (CACHE_SLOTS - 1)) continue;
  t[i].key = *k;
  t[i].frames = copy;
  s->cache_used++;
  s->cache_frames += n;
}

static int on_event(void *ctx, void *data, size_t size)
{
  struct sampler *s = ctx;
  const struct ls_record *r;
  const struct ls_sample *smp;
  const size_t head = offsetof(struct ls_sample, frames),
               fsz = sizeof(struct ls_frame);
  size_t n, sent;
  /* Short records cannot happen: the BPF side sends whole records. */
  s->cur_nat = NULL;
  if (s->native) {
    if (size < sizeof(struct ls_native)) return 0;
    s->cur_nat = data;
    data = (char *)data + sizeof(struct ls_native);
    size -= sizeof(struct ls_native);
  }
  r = data;
  if (size < offsetof(struct ls_record, s) + head) return 0;
  n = r->s.nframes < LS_MAX_FRAMES ? r->s.nframes : LS_MAX_FRAMES;
  sent = r->s.flags & LS_F_REPEAT ? 1 : n;
  if (size < offsetof(struct ls_record, s) + head + sent * fsz) return 0;
  smp = &r->s;
  if (r->s.flags & LS_F_REPEAT) {
    const struct cached *c = n >= 2 ? cache_find(s, &r->key) : NULL;
    if (!c) {
      /* Flushed since, or never received whole: have it sent again. */
      s->uncached++;
      bpf_map_delete_elem(bpf_map__fd(s->skel->maps.luaspy_sent), &r->key);
      return 0;
    }
    memcpy(s->whole, &r->s, head + fsz);
    memcpy(&s->whole->frames[1], c->frames, (n - 1) * fsz);
    s->whole->flags &= ~(__u32)LS_F_REPEAT;
    smp = s->whole;
  } else if (r->key.hash && n >= 2) {
    cache_add(s, &r->key, &r->s.frames[1], n - 1);
  }
  s->cur_key = &r->key;
  s->fn(smp, s->arg);
  s->cur_key = NULL;
  s->cur_nat = NULL;
  s->handled++;
  return 0;
}

int sampler_poll(struct sampler *s, int timeout_ms, sampler_fn fn, void *arg)
{
  int rc;
  s->fn = fn;
  s->arg = arg;
  s->handled = 0;
  if (!s->rb &&
      !(s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.luaspy_events),
                                 on_event, s, NULL)))
    return -1;
  /* Samples do not wake us (unless the buffer fills up): wait, then read
   * what came meanwhile. */
  rc = ring_buffer__poll(s->rb, timeout_ms);
  if (rc >= 0 || rc == -EINTR) rc = ring_buffer__consume(s->rb);
  if (rc < 0 && rc != -EINTR) return -1;
  return s->handled;
}

const struct ls_stackkey *sampler_stack_key(const struct sampler *s)
{
  return s->cur_key;
}

const struct ls_native *sampler_native(const struct sampler *s)
{
  return s->cur_nat;
}

void sampler_counts(struct sampler *s, uint64_t counts[LS_NCOUNTERS])
{
  int fd = bpf_map__fd(s->skel->maps.luaspy_counts);
  __u64 *v = calloc((size_t)s->ncpus, sizeof(*v));
  for (__u32 i = 0; i < LS_NCOUNTERS; i++) {
    counts[i] = 0;
    if (v && !bpf_map_lookup_elem(fd, &i, v))
      for (int c = 0; c < s->ncpus; c++) counts[i] += v[c];
  }
  counts[LS_CNT_UNCACHED] = s->uncached; /* counted here, not in the kernel */
  free(v);
}
