/*
** Record's streamed outputs. The raw file is opened before sampling
** starts and written as samples come (see src/output/raw_write.c); the
** timeline adds them up in memory and is drawn at the end.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "../output/raw.h"
#include "../output/timeline.h"
#include "stream.h"

struct rstream {
  const struct record_opts *o;
  uint64_t t0; /* CLOCK_MONOTONIC ns at the start */
  FILE *out;   /* the raw file */
  const char *name;
  struct raw_writer *raw;
  struct timeline *tl;
  int html;
};

static uint64_t clock_ns(clockid_t id)
{
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Our own command line, arguments joined by spaces. */
static void own_cmdline(char *buf, size_t len)
{
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);
  if (fd >= 0) close(fd);
  if (n < 0) n = 0;
  while (n > 0 && buf[n - 1] == '\0') n--;
  for (ssize_t i = 0; i < n; i++)
    if (buf[i] == '\0') buf[i] = ' ';
  buf[n] = '\0';
}

static int open_raw(struct rstream *s)
{
  const struct record_opts *o = s->o;
  struct raw_meta m = {.version = LUASPY_VERSION,
                       .start_wall_ns = clock_ns(CLOCK_REALTIME),
                       .hz = (uint32_t)o->hz,
                       .line_mode = o->line_mode};
  struct utsname u;
  char cmdline[RAW_STR_MAX];
  own_cmdline(cmdline, sizeof(cmdline));
  m.cmdline = cmdline;
  m.host = uname(&u) ? "" : u.nodename;
  if (!strcmp(o->output, "-")) {
    s->out = stdout;
    s->name = "standard output";
  } else if (!(s->out = fopen(o->output, "w"))) {
    fprintf(stderr, "luaspy: cannot create %s: %s\n", o->output,
            strerror(errno));
    return -1;
  } else {
    s->name = o->output;
  }
  return (s->raw = raw_writer_new(s->out, s->name, &m)) ? 0 : -1;
}

struct rstream *rstream_open(const struct record_opts *o, int *none)
{
  struct rstream *s;
  int html;
  *none = 0;
  if (!o->output) { /* pushing only */
    *none = 1;
    return NULL;
  }
  if (timeline_output(o->output, o->format, o->timeline, &html)) return NULL;
  if (html < 0 && !raw_output(o->output, o->format)) {
    *none = 1;
    return NULL;
  }
  if (!(s = calloc(1, sizeof(*s)))) {
    fputs("luaspy: out of memory\n", stderr);
    return NULL;
  }
  s->o = o;
  s->html = html;
  s->t0 = clock_ns(CLOCK_MONOTONIC);
  if (html >= 0 ? !(s->tl = timeline_new()) : open_raw(s) < 0) {
    rstream_free(s);
    return NULL;
  }
  return s;
}

int rstream_sample(struct rstream *s, const struct ls_sample *smp,
                   const struct rtarget *t, const struct lj_vm *vm,
                   const char *const *stack, size_t n)
{
  uint64_t time = smp->time_ns > s->t0 ? smp->time_ns - s->t0 : 0;
  uint32_t id;
  if (s->tl) return timeline_add(s->tl, time, stack, n, 1);
  if (!raw_writer_knows(s->raw, smp->pid)) {
    char link[64], exe[PATH_MAX] = "";
    ssize_t len;
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)t->pid);
    if ((len = readlink(link, exe, sizeof(exe) - 1)) > 0) exe[len] = '\0';
    if (raw_writer_target(s->raw, smp->pid, exe)) return -1;
  }
  if (raw_writer_vm(s->raw, smp->pid, vm ? vm->G : 0,
                    vm ? lj_flavor_name(vm->lay->flavor) : "", &id))
    return -1;
  return raw_writer_sample(s->raw, time, smp->pid, smp->tid, id, stack, n, 1);
}

struct tl_out {
  const struct timeline *tl;
  int html;
  const struct render_opts *ro;
};

static int write_timeline(FILE *out, void *arg)
{
  const struct tl_out *t = arg;
  return timeline_write(t->tl, out, t->html, t->ro);
}

int rstream_finish(struct rstream *s, const struct rec_stats *st,
                   uint64_t kernel_samples, const struct render_opts *ro)
{
  uint64_t duration = clock_ns(CLOCK_MONOTONIC) - s->t0;
  static const char *const names[] = {
      "samples",         "lost",          "received",
      "complete",        "idle",          "no_vm",
      "no_frames",       "partial:read",  "partial:badlink",
      "partial:badfunc", "partial:depth", "partial:loop"};
  uint64_t values[] = {kernel_samples,
                       st->lost,
                       st->received,
                       st->complete,
                       st->idle,
                       st->no_vm,
                       st->no_frames,
                       st->partial[LS_PARTIAL_READ],
                       st->partial[LS_PARTIAL_BADLINK],
                       st->partial[LS_PARTIAL_BADFUNC],
                       st->partial[LS_PARTIAL_DEPTH],
                       st->partial[LS_PARTIAL_LOOP]};
  int ret;
  if (s->tl) {
    struct tl_out t = {s->tl, s->html, ro};
    if (timeline_span(s->tl, duration)) return -1;
    return output_file(s->o->output, write_timeline, &t);
  }
  _Static_assert(sizeof(names) / sizeof(names[0]) ==
                     sizeof(values) / sizeof(values[0]),
                 "a name per counter");
  ret = raw_writer_finish(s->raw, names, values,
                          sizeof(values) / sizeof(values[0]), duration);
  if (s->out != stdout) {
    FILE *out = s->out;
    s->out = NULL;
    if (fclose(out) && !ret) {
      fprintf(stderr, "luaspy: writing %s: %s\n", s->name, strerror(errno));
      ret = -1;
    }
  }
  return ret;
}

void rstream_free(struct rstream *s)
{
  if (!s) return;
  raw_writer_free(s->raw);
  if (s->out && s->out != stdout) fclose(s->out);
  timeline_free(s->tl);
  free(s);
}
