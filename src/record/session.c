/*
** A recording: samples from the kernel are named while the targets are
** alive (names come from their memory) and added to a profile, which is
** written when the recording ends: after the duration, on Ctrl-C, or
** when every target has exited. It is always written, whatever it holds.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../cmd/common.h"
#include "../trace/stacks.h"
#include "record.h"
#include "stream.h"
#include "summary.h"
#include "targets.h"

#define POLL_MS 100
#define PROGRESS_EVERY 0.25
/* Frame names are cached by raw frame; the cache is emptied this often,
 * so that a prototype freed and reused for another function is soon
 * named again. */
#define FCACHE_SIZE 16384
#define FCACHE_FLUSH_EVERY 2.0
/* The profile node of each stack below its top frame, by the key the
 * kernel gives it (sampler_stack_key): a sample of a stack seen before
 * names only its top frame. Emptied with the frame names. */
#define SCACHE_SIZE 4096
#define SYMS_REFRESH_EVERY 1.0
#define FRAME_STR_MAX (LJ_NAME_MAX + LJ_CHUNK_MAX + 32)
/* Frames of a stack: Lua, native, a marker at the root and [kernel]. */
#define STACK_MAX (LS_MAX_FRAMES + UNWIND_MAX_FRAMES + 2)

struct fentry {
  uint64_t key[7];
  char *str;
};

struct sentry {
  struct ls_stackkey key; /* gen 0; hash 0: a free slot */
  uint8_t partial;        /* the marker at the root is part of the node */
  uint32_t node;
};

struct session {
  const struct record_opts *o;
  struct rtargets ts;
  struct profile *prof;
  struct rstream *stream; /* the raw file or timeline; NULL if neither */
  struct pusher *push;    /* NULL without --push */
  struct rec_stats st;
  struct fentry *fcache;
  size_t fcache_used;
  struct sentry *scache;
  size_t scache_used;
  const char **stack; /* root first: STACK_MAX */
  struct lj_rawframe *raw;
  char markers[LS_PARTIAL_LOOP + 1][64];
  int progress;
  double now; /* monotonic seconds, as of the last poll */
};

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Forgets frame names and the stacks named with them. */
static void fcache_flush(struct session *ss)
{
  for (size_t i = 0; i < FCACHE_SIZE; i++) {
    free(ss->fcache[i].str);
    ss->fcache[i].str = NULL;
  }
  ss->fcache_used = 0;
  if (ss->scache) memset(ss->scache, 0, SCACHE_SIZE * sizeof(*ss->scache));
  ss->scache_used = 0;
}

static uint64_t hash_key(const uint64_t *k)
{
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 7; i++) {
    h ^= k[i];
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
  return h;
}

/* The name of one raw frame, from the cache or the symbolizer. */
static const char *frame_name(struct session *ss, struct rtarget *t,
                              const struct lj_vm *vm,
                              const struct lj_rawframe *rf)
{
  /* Outside line mode a function's PC does not change its name. */
  uint64_t pc = rf->kind == LJ_RAW_FUNC && !ss->o->line_mode ? 0 : rf->pc;
  uint64_t key[7] = {(uint64_t)t->pid << 32 | rf->kind,
                     vm ? vm->G : 0,
                     (uint64_t)(uint32_t)rf->aux,
                     rf->fn,
                     pc,
                     rf->callfn,
                     rf->callpc};
  size_t i = hash_key(key) % FCACHE_SIZE;
  struct lj_frame f;
  char buf[FRAME_STR_MAX];
  while (ss->fcache[i].str) {
    if (!memcmp(ss->fcache[i].key, key, sizeof(key))) return ss->fcache[i].str;
    i = (i + 1) % FCACHE_SIZE;
  }
  if (vm) {
    lj_symbolize(t->sym, vm, rf, ss->o->line_mode, &f);
    /* Code mapped after the symbolizer read the target's mappings
     * (ffi.load, dlopen) has no name: read them again, now and then. */
    if (f.kind == LJ_KIND_C && !strncmp(f.name, "0x", 2) &&
        ss->now >= t->syms_at) {
      struct lj_symbolizer *fresh = lj_symbolizer_new(t->pid, &t->t);
      t->syms_at = ss->now + SYMS_REFRESH_EVERY;
      if (fresh) {
        lj_symbolizer_free(t->sym);
        t->sym = fresh;
        lj_symbolize(t->sym, vm, rf, ss->o->line_mode, &f);
      }
    }
    lj_frame_format(&f, buf, sizeof(buf));
  } else {
    snprintf(buf, sizeof(buf), "[unknown]");
  }
  if (!(ss->fcache[i].str = strdup(buf))) return "[out of memory]";
  memcpy(ss->fcache[i].key, key, sizeof(key));
  ss->fcache_used++;
  return ss->fcache[i].str;
}

static const struct lj_vm *vm_of(const struct rtarget *t, uint64_t dispatch)
{
  for (size_t i = 0; i < t->t.nvms; i++)
    if (t->t.vms[i].dispatch == dispatch) return &t->t.vms[i];
  return NULL;
}

/* A function is named after the instruction that called it: the PC of
 * the frame below it, when that is a Lua function of the same thread
 * (as walk.c does for dump). */
static void fill_callers(struct lj_rawframe *raw, size_t n)
{
  for (size_t i = 0; i + 1 < n; i++)
    if (raw[i].kind == LJ_RAW_FUNC && raw[i + 1].kind == LJ_RAW_FUNC &&
        raw[i + 1].L == raw[i].L) {
      raw[i].callfn = raw[i + 1].fn;
      raw[i].callpc = raw[i + 1].pc;
    }
}

/* vm: the sample's VM, NULL if unknown. */
static void add_stack(struct session *ss, const struct ls_sample *smp,
                      const struct rtarget *t, const struct lj_vm *vm, size_t n)
{
  const struct record_opts *o = ss->o;
  if (o->on_stack ? o->on_stack(ss->stack, n, 1, o->arg)
                  : profile_add(ss->prof, ss->stack, n, 1) ||
                        (ss->stream && rstream_sample(ss->stream, smp, t, vm,
                                                      ss->stack, n)) ||
                        (ss->push && push_add(ss->push, t->pid, vm ? vm->G : 0,
                                              ss->stack, n)))
    *o->stop = 1;
}

/* Counts smp by what came of it; the marker to put at the root, or NULL. */
static const char *tally(struct session *ss, const struct ls_sample *smp)
{
  stats_tally(&ss->st, smp);
  if (smp->status == LS_IDLE) return "[not running Lua]";
  if (smp->partial != LS_OK && smp->partial <= LS_PARTIAL_LOOP)
    return ss->markers[smp->partial];
  if (smp->nframes == 0) return "[no Lua frames]";
  return NULL;
}

/* smp's frames [from, to) as raw frames, named after their callers (the
 * frame below, which must be in range too). */
static void to_raw(struct session *ss, const struct ls_sample *smp, size_t from,
                   size_t to)
{
  for (size_t i = from; i < to; i++) {
    const struct ls_frame *f = &smp->frames[i];
    ss->raw[i] = (struct lj_rawframe){.kind = f->kind,
                                      .ftype = f->ftype,
                                      .aux = f->aux,
                                      .fn = f->fn,
                                      .pc = f->pc,
                                      .L = f->L};
  }
  fill_callers(ss->raw + from, to - from);
}

/* The cache slot of smp's stack below its top frame: found, or free. */
static struct sentry *scache_slot(struct session *ss,
                                  const struct ls_stackkey *k,
                                  const struct ls_sample *smp)
{
  struct ls_stackkey key = *k;
  const uint64_t h[7] = {k->hash, k->dispatch, k->pid, k->nframes,
                         smp->partial};
  size_t i;
  key.gen = 0;
  for (i = (size_t)hash_key(h) % SCACHE_SIZE; ss->scache[i].key.hash;
       i = (i + 1) % SCACHE_SIZE)
    if (!memcmp(&ss->scache[i].key, &key, sizeof(key)) &&
        ss->scache[i].partial == smp->partial)
      return &ss->scache[i];
  ss->scache[i].key = key;
  ss->scache[i].partial = smp->partial;
  return &ss->scache[i];
}

/* A walked stack of two frames or more that the kernel keyed: the frames
 * below the top one are named once per key (and flush), then found by it. */
static void add_keyed(struct session *ss, struct rtarget *t,
                      const struct lj_vm *vm, const struct ls_sample *smp,
                      const struct ls_stackkey *k, const char *mark)
{
  struct sentry *e;
  size_t n = 0, nf = smp->nframes;
  if (ss->scache_used >= SCACHE_SIZE / 2) fcache_flush(ss);
  e = scache_slot(ss, k, smp);
  if (!e->node) { /* new: the node is never the root, which is 0 */
    to_raw(ss, smp, 0, nf);
    if (mark) ss->stack[n++] = mark;
    for (size_t i = nf; i-- > 1;)
      ss->stack[n++] = frame_name(ss, t, vm, &ss->raw[i]);
    if (profile_prefix(ss->prof, ss->stack, n, &e->node)) {
      *ss->o->stop = 1;
      return;
    }
    ss->scache_used++;
  } else {
    to_raw(ss, smp, 0, 2);
  }
  n = 0;
  ss->stack[n++] = frame_name(ss, t, vm, &ss->raw[0]);
  if (smp->flags & LS_F_KERNEL) ss->stack[n++] = "[kernel]";
  if (profile_add_at(ss->prof, e->node, ss->stack, n, 1)) *ss->o->stop = 1;
}

static const char *native_name(struct session *ss, struct rtarget *t,
                               uint64_t pc)
{
  struct lj_rawframe rf = {.kind = LJ_RAW_NATIVE, .pc = pc};
  return frame_name(ss, t, &t->t.vms[0], &rf); /* any VM: for the layout */
}

/* record --native: the native frames, unwound from the copy of the user
 * stack that came with the sample, merged with the Lua frames in the
 * order offcpu uses (stack_splice). */
static void add_native(struct session *ss, struct rtarget *t,
                       const struct lj_vm *vm, const struct ls_sample *smp,
                       const struct ls_native *nat, const char *mark)
{
  uint64_t pcs[UNWIND_MAX_FRAMES];
  struct unwind_regs r = {.ip = nat->ip, .sp = nat->sp, .bp = nat->bp};
  size_t ulen = nat->ulen < LS_USTACK_BYTES ? nat->ulen : LS_USTACK_BYTES;
  size_t np = 0, n = 0, nf = smp->nframes, splice;
  if (!t->uw) t->uw = unwinder_new(t->pid);
  if (t->uw)
    np = unwind_stack(t->uw, &r, nat->ustack, ulen, pcs, UNWIND_MAX_FRAMES);
  /* In a trace, the PC is in JIT-compiled code: the trace's frame names
   * it, and without CFI there is nothing to unwind. */
  if (nf && smp->frames[0].kind == LS_RAW_TRACE) np = 0;
  splice = stack_splice(&t->t, pcs, np);
  /* The PC itself in the interpreter: it changes with every bytecode, and
   * the Lua frames say where it is. */
  if (splice == 0 && np) pcs[0] = 0;
  to_raw(ss, smp, 0, nf);
  if (mark) ss->stack[n++] = mark;
  for (size_t i = np; i-- > splice;)
    if (pcs[i]) ss->stack[n++] = native_name(ss, t, pcs[i]);
  for (size_t i = nf; i-- > 0;)
    /* The C function on top: the unwinder has it, and its callers. */
    if (ss->raw[i].kind != LJ_RAW_NATIVE || !np)
      ss->stack[n++] = frame_name(ss, t, vm, &ss->raw[i]);
  for (size_t i = splice; i-- > 0;) ss->stack[n++] = native_name(ss, t, pcs[i]);
  if (smp->flags & LS_F_KERNEL) ss->stack[n++] = "[kernel]";
  if (!n) ss->stack[n++] = "[unknown]";
  add_stack(ss, smp, t, vm, n);
}

static void on_sample(const struct ls_sample *smp, void *arg)
{
  struct session *ss = arg;
  struct rtarget *t = targets_find(&ss->ts, (pid_t)smp->pid);
  const struct ls_stackkey *k = sampler_stack_key(ss->ts.smp);
  const struct ls_native *nat = sampler_native(ss->ts.smp);
  const struct lj_vm *vm;
  const char *mark;
  size_t n = 0, nf = smp->nframes;
  if (!t || !t->has_vms) return; /* dropped from the maps just now */
  ss->st.received++;
  /* One sample adds at most LS_MAX_FRAMES names, so the cache never
   * fills up; flushing between samples keeps ss->stack's names valid. */
  if (ss->fcache_used >= FCACHE_SIZE / 2) fcache_flush(ss);
  if (smp->status == LS_NO_VM) {
    t->novm++;
    stats_tally(&ss->st, smp);
    ss->stack[0] = "[no Lua VM identified]";
    add_stack(ss, smp, t, NULL, 1);
    return;
  }
  vm = vm_of(t, smp->dispatch);
  if (smp->status != LS_IDLE) ss->st.vm[stats_vmclass(smp->vmstate)]++;
  mark = tally(ss, smp);
  if (nat) {
    add_native(ss, t, vm, smp, nat, mark);
    return;
  }
  /* Only the profile can take a stack by its cached prefix: top, raw
   * recordings, timelines and pushes get every stack whole. */
  if (vm && k && k->hash && smp->status == LS_WALKED && nf >= 2 &&
      !ss->o->on_stack && !ss->stream && !ss->push) {
    add_keyed(ss, t, vm, smp, k, mark);
    return;
  }
  to_raw(ss, smp, 0, nf);
  if (mark) ss->stack[n++] = mark;
  for (size_t i = nf; i-- > 0;)
    ss->stack[n++] = frame_name(ss, t, vm, &ss->raw[i]);
  /* Time in a system call, on top of the C function that made it. */
  if (smp->flags & LS_F_KERNEL) ss->stack[n++] = "[kernel]";
  add_stack(ss, smp, t, vm, n);
}

/* Updates the lost count from the kernel's counters; returns how many
 * samples the kernel took. */
static uint64_t count_lost(struct session *ss)
{
  uint64_t c[LS_NCOUNTERS];
  sampler_counts(ss->ts.smp, c);
  ss->st.lost = c[LS_CNT_LOST];
  ss->st.uncached = c[LS_CNT_UNCACHED];
  return c[LS_CNT_SAMPLES];
}

static void progress(struct session *ss, double elapsed, int done)
{
  if (!ss->progress) return;
  if (done) {
    fputs("\r\033[K", stderr);
    return;
  }
  fprintf(stderr,
          "\r\033[Kluaspy: %llu samples, %.0f/s, lost %llu, unwound %.1f%%",
          (unsigned long long)ss->st.received,
          elapsed > 0 ? ss->st.received / elapsed : 0.0,
          (unsigned long long)ss->st.lost, 100 * stats_unwound(&ss->st));
  fflush(stderr);
}

/* Discovery at the start: a PID given with -p must hold a VM (with
 * --children, one of it and its descendants must). A command we start
 * gets time to create one. */
static int first_discovery(struct session *ss)
{
  const struct record_opts *o = ss->o;
  size_t nprocs;
  targets_update(&ss->ts, now_s());
  for (size_t i = 0; i < ss->ts.n; i++) {
    const struct rtarget *t = ss->ts.v[i];
    if (t->given && !t->has_vms && !o->children) {
      die_msg("%s", t->why[0] ? t->why : "no Lua VM found");
      return -1;
    }
  }
  if (!targets_nvms(&ss->ts, &nprocs)) {
    die_msg("record: no Lua VM in process %d or its children: %s",
            (int)o->pids[0], ss->ts.v[0]->why);
    return -1;
  }
  return 0;
}

static void record_loop(struct session *ss)
{
  const struct record_opts *o = ss->o;
  double start = now_s(), next_progress = start, next_flush = start;
  for (;;) {
    double t = now_s();
    if (*o->stop || (o->duration > 0 && t - start >= o->duration)) break;
    if (sampler_poll(ss->ts.smp, POLL_MS, on_sample, ss) < 0) {
      die_msg("record: reading samples failed: %s", strerror(errno));
      break;
    }
    ss->now = t = now_s();
    targets_update(&ss->ts, t);
    if (!targets_alive(&ss->ts)) break;
    if (ss->push) push_tick(ss->push, t);
    if (t >= next_flush) {
      fcache_flush(ss);
      next_flush = t + FCACHE_FLUSH_EVERY;
    }
    if (t >= next_progress) {
      count_lost(ss);
      progress(ss, t - start, 0);
      next_progress = t + PROGRESS_EVERY;
    }
    if (o->on_tick) o->on_tick(&ss->st, o->arg);
  }
  /* What is still in the ring buffer belongs to the recording. */
  while (sampler_poll(ss->ts.smp, 0, on_sample, ss) > 0) continue;
  progress(ss, 0, 1);
}

static void stop_command(pid_t pid)
{
  int status;
  if (waitpid(pid, &status, WNOHANG) == pid) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 50; i++) {
    if (waitpid(pid, &status, WNOHANG) == pid) return;
    usleep(20000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
}

static int write_output(struct session *ss, uint64_t kernel_samples)
{
  const struct record_opts *o = ss->o;
  struct render_opts ro = {.title = "luaspy record", .sample_hz = o->hz};
  char sub[256];
  size_t nprocs, nvms = targets_nvms(&ss->ts, &nprocs);
  snprintf(sub, sizeof(sub), "%llu samples at %d Hz, %zu process%s, %zu VM%s%s",
           (unsigned long long)ss->st.received, o->hz, nprocs,
           nprocs == 1 ? "" : "es", nvms, nvms == 1 ? "" : "s",
           o->line_mode ? ", current lines" : "");
  ro.subtitle = sub;
  if (ss->stream)
    return rstream_finish(ss->stream, &ss->st, kernel_samples, &ro);
  return profile_write(ss->prof, o->output, o->format, &ro);
}

/* Starts argv stopped at nothing: the BPF side is ready first, and Lua
 * VMs are found as soon as the program creates them. An exec failure
 * comes back through a close-on-exec pipe. */
static pid_t start_command(char *const *argv)
{
  int fds[2], err = 0;
  pid_t pid;
  if (pipe2(fds, O_CLOEXEC)) {
    die_msg("record: cannot run '%s': %s", argv[0], strerror(errno));
    return -1;
  }
  if ((pid = fork()) < 0) {
    die_msg("record: cannot run '%s': %s", argv[0], strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    close(fds[0]);
    execvp(argv[0], argv);
    err = errno;
    if (write(fds[1], &err, sizeof(err)) < 0) _exit(127);
    _exit(127);
  }
  close(fds[1]);
  if (read(fds[0], &err, sizeof(err)) == (ssize_t)sizeof(err)) {
    waitpid(pid, NULL, 0);
    die_msg("record: cannot run '%s': %s", argv[0], strerror(err));
    pid = -1;
  }
  close(fds[0]);
  return pid;
}

int record_run(const struct record_opts *o)
{
  struct session ss;
  char why[512];
  struct sampler *smp = NULL;
  size_t nprocs;
  uint64_t kernel_samples;
  pid_t command = 0;
  int rc = 1, none;
  memset(&ss, 0, sizeof(ss));
  ss.o = o;
  ss.ts.children = o->children;
  ss.progress = !o->on_stack && isatty(STDERR_FILENO);
  for (int i = 0; i <= LS_PARTIAL_LOOP; i++)
    snprintf(ss.markers[i], sizeof(ss.markers[i]), "[partial: %s]",
             lj_partial_name((enum lj_partial)i));
  if (!(ss.prof = profile_new("samples")) ||
      !(ss.fcache = calloc(FCACHE_SIZE, sizeof(*ss.fcache))) ||
      !(ss.scache = calloc(SCACHE_SIZE, sizeof(*ss.scache))) ||
      !(ss.stack = calloc(STACK_MAX, sizeof(*ss.stack))) ||
      !(ss.raw = calloc(LS_MAX_FRAMES, sizeof(*ss.raw)))) {
    die_msg("out of memory");
    goto out;
  }
  /* A PID without Lua fails before the slow part: loading BPF. */
  for (int i = 0; i < o->npids; i++)
    if (targets_add(&ss.ts, o->pids[i])) goto nomem;
  if (o->npids && first_discovery(&ss)) goto out;
  if (!(smp = sampler_open(o->hz, o->native, why, sizeof(why)))) {
    die_msg("%s", why);
    goto out;
  }
  if (o->push && !(ss.push = push_new(o->push, o->hz))) goto out;
  if (targets_attach(&ss.ts, smp)) {
    die_msg("record: cannot pass the Lua VMs to the kernel: %s",
            strerror(errno));
    goto out;
  }
  /* Opened last: sample times count from here. */
  if (!(ss.stream = rstream_open(o, &none)) && !none) goto out;
  if (o->argv) {
    if ((command = start_command(o->argv)) < 0) goto out;
    if (targets_add(&ss.ts, command)) goto nomem;
    targets_update(&ss.ts, now_s());
  }
  record_loop(&ss);
  if (command) stop_command(command);
  command = 0;
  if (o->argv && !targets_nvms(&ss.ts, &nprocs)) {
    die_msg("record: '%s' ran no LuaJIT VM that luaspy could find", o->argv[0]);
    goto out;
  }
  kernel_samples = count_lost(&ss);
  push_finish(ss.push);
  ss.push = NULL;
  if (o->on_stack) {
    rc = 0;
    goto out;
  }
  rc = o->output && write_output(&ss, kernel_samples) ? 1 : 0;
  summary_print(stderr, ss.prof, &ss.st, 10);
  if (!rc && o->output && strcmp(o->output, "-"))
    fprintf(stderr, "luaspy: wrote %s\n", o->output);
  goto out;
nomem:
  die_msg("out of memory");
out:
  if (command > 0) stop_command(command);
  push_finish(ss.push);
  targets_free(&ss.ts);
  sampler_close(smp);
  rstream_free(ss.stream);
  if (ss.fcache) fcache_flush(&ss);
  free(ss.fcache);
  free(ss.scache);
  free(ss.stack);
  free(ss.raw);
  profile_free(ss.prof);
  return rc;
}
