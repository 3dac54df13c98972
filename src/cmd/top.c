/*
** luaspy top: the Lua functions taking the most CPU time now, sampled
** like `luaspy record` (src/record/) and shown live in a terminal, or as
** plain tables when stdout is not one.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../output/term.h"
#include "../proc/proc.h"
#include "../record/record.h"
#include "../record/topview.h"
#include "cmd.h"
#include "common.h"

#define MAX_PIDS 256
#define HZ_MAX 10000
#define BATCH_ROWS 20
#define HELP_KEYS "s self  t total  n name  c %s  q quit"

struct top_opts {
  struct record_opts rec;
  double duration; /* 0: until q, Ctrl-C or the targets exit */
  double interval;
  int rows; /* 0: what fits */
  enum top_sort sort;
  int batch, once;
};

struct top {
  const struct top_opts *o;
  char targets[128];
  int tty; /* drawing in a terminal (else plain tables) */
  int cumulative;
  enum top_sort sort;
  int done;   /* the duration is over */
  int failed; /* out of memory */
  /* Functions of the interval being sampled, of the last whole one, and
   * since the start, with their stacks' weights. */
  struct ftable now, last, all;
  uint64_t now_w, last_w, all_w;
  struct rec_stats st;      /* since the start, as of the last tick */
  struct rec_stats st_mark; /* ... as of the last interval's end */
  struct rec_stats st_last; /* the last interval's */
  double start, mark, last_secs;
};

static void usage(FILE *f)
{
  fprintf(f,
          "usage: luaspy top -p PID[,PID...] [OPTIONS]\n\n"
          "Shows the Lua functions taking the most CPU time in running "
          "LuaJIT processes,\nsampled on every CPU with eBPF like luaspy "
          "record, refreshed in place until q,\nCtrl-C, the duration ends "
          "or the targets exit. SELF%% is the share of samples\nrunning the "
          "function itself, TOTAL%% the share with it anywhere on the "
          "stack,\nover the last interval (or since the start: key c).\n\n"
          "  -p, --pid PID[,PID...]  the processes (nginx workers, "
          "traffic_server, luajit)\n"
          "  -c, --children          also their child processes (all "
          "workers of a master)\n"
          "  -F, --frequency HZ      samples per second and CPU (default "
          "99)\n"
          "  -d, --duration SECONDS  exit after this long (default: until q "
          "or Ctrl-C)\n"
          "  -i, --interval SECONDS  refresh period (default 1)\n"
          "  -l, --lines             a row per function and line running, "
          "not per function\n"
          "  -n, --rows N            show N functions (default: what fits "
          "the terminal;\n"
          "                          %d without one)\n"
          "  -s, --sort KEY          self, total or name (default self)\n"
          "  -b, --batch             plain tables on stdout, one per "
          "interval (the default\n"
          "                          when stdout is not a terminal)\n"
          "      --once              one table of the whole run after the "
          "duration (or one\n"
          "                          interval), then exit\n"
          "  -h, --help              this text\n\n"
          "keys: s sort by self, t by total, n by name; c last interval or "
          "since the\nstart; q or Ctrl-C quit.\n\n"
          "Needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE).\n\n"
          "example: luaspy top -p $(pgrep -o nginx) --children\n",
          BATCH_ROWS);
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The counts of an interval: a - b. */
static void stats_sub(struct rec_stats *d, const struct rec_stats *a,
                      const struct rec_stats *b)
{
  d->received = a->received - b->received;
  d->lost = a->lost - b->lost;
  d->complete = a->complete - b->complete;
  for (int i = 0; i <= LS_PARTIAL_LOOP; i++)
    d->partial[i] = a->partial[i] - b->partial[i];
  d->no_vm = a->no_vm - b->no_vm;
  d->idle = a->idle - b->idle;
  d->no_frames = a->no_frames - b->no_frames;
  for (int i = 0; i < REC_VM_N; i++) d->vm[i] = a->vm[i] - b->vm[i];
}

/* Stacks, as the session names them. */
static int on_stack(const char *const *frames, size_t n, uint64_t w, void *arg)
{
  struct top *tp = arg;
  if (ftable_add(frames, n, w, &tp->now) ||
      ftable_add(frames, n, w, &tp->all)) {
    die_msg("out of memory");
    tp->failed = 1;
    return -1;
  }
  tp->now_w += w;
  tp->all_w += w;
  return 0;
}

/* The interval being sampled becomes the last one. */
static void next_interval(struct top *tp, double t)
{
  ftable_clear(&tp->last);
  tp->last = tp->now;
  memset(&tp->now, 0, sizeof(tp->now));
  tp->last_w = tp->now_w;
  tp->now_w = 0;
  stats_sub(&tp->st_last, &tp->st, &tp->st_mark);
  tp->st_mark = tp->st;
  tp->last_secs = t - tp->mark;
  tp->mark = t;
}

static int show(struct top *tp, FILE *f, int cumulative, double t)
{
  const struct top_opts *o = tp->o;
  char help[128];
  struct top_view v = {.targets = tp->targets,
                       .hz = o->rec.hz,
                       .line_mode = o->rec.line_mode,
                       .cumulative = cumulative,
                       .secs = cumulative ? t - tp->start : tp->last_secs,
                       .st = cumulative ? &tp->st : &tp->st_last,
                       .fns = cumulative ? &tp->all : &tp->last,
                       .samples = cumulative ? tp->all_w : tp->last_w,
                       .sort = tp->sort,
                       .rows = o->rows ? o->rows : BATCH_ROWS,
                       .help = help};
  snprintf(help, sizeof(help), HELP_KEYS,
           cumulative ? "last interval" : "since start");
  if (tp->tty && !term_size(&v.height, &v.cols)) {
    int fit = v.height > TOP_VIEW_CHROME ? v.height - TOP_VIEW_CHROME : 0;
    v.rows = o->rows && o->rows < fit ? o->rows : fit;
  }
  return top_view_write(f, &v);
}

/* A picture, made in memory and written at once: no flicker. */
static void draw(struct top *tp, double t)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return;
  if (show(tp, f, tp->cumulative, t)) tp->failed = *tp->o->rec.stop = 1;
  if (!fclose(f) && !tp->failed) {
    for (size_t off = 0; off < len;) {
      ssize_t k = write(STDOUT_FILENO, buf + off, len - off);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) break;
      off += (size_t)k;
    }
  }
  free(buf);
}

static void batch_table(struct top *tp, int cumulative, double t)
{
  if (show(tp, stdout, cumulative, t)) tp->failed = *tp->o->rec.stop = 1;
  putchar('\n');
  fflush(stdout);
}

/* Returns 1 if the picture must be drawn again. */
static int on_key(struct top *tp, int c)
{
  switch (c) {
  case 's': tp->sort = TOP_BY_SELF; return 1;
  case 't': tp->sort = TOP_BY_TOTAL; return 1;
  case 'n': tp->sort = TOP_BY_NAME; return 1;
  case 'c': tp->cumulative = !tp->cumulative; return 1;
  case 'q':
  case 'Q':
  case 3: /* Ctrl-C, a byte in raw mode */ *tp->o->rec.stop = 1; return 0;
  default: return 0;
  }
}

static void on_tick(const struct rec_stats *st, void *arg)
{
  struct top *tp = arg;
  const struct top_opts *o = tp->o;
  double t = now_s();
  int redraw = 0, c;
  tp->st = *st;
  if (!tp->start) {
    tp->start = tp->mark = t;
    if (tp->tty) {
      if (term_enter()) {
        die_msg("top: cannot set up the terminal: %s", strerror(errno));
        tp->failed = 1;
        *o->rec.stop = 1;
        return;
      }
      redraw = 1;
    }
  }
  if (o->duration > 0 && t - tp->start >= o->duration) {
    tp->done = 1;
    *o->rec.stop = 1;
    return;
  }
  if (!o->once && t - tp->mark >= o->interval) {
    next_interval(tp, t);
    if (!tp->tty) batch_table(tp, 0, t);
    redraw = 1;
  }
  if (!tp->tty) return;
  while ((c = term_key()) >= 0) redraw |= on_key(tp, c);
  if (*o->rec.stop) return;
  if (redraw || term_resized()) draw(tp, t);
}

/* Why it stopped, when no one asked it to. */
static void say_gone(const struct top *tp)
{
  const struct top_opts *o = tp->o;
  if (o->rec.npids == 1 && !o->rec.children)
    die_msg("top: process %d exited", (int)o->rec.pids[0]);
  else
    die_msg("top: the target processes exited");
}

static int top_run(const struct top_opts *o)
{
  struct top tp = {.o = o, .sort = o->sort};
  struct record_opts rec = o->rec;
  int n, rc;
  n = snprintf(tp.targets, sizeof(tp.targets), "pid%s ",
               rec.npids > 1 ? "s" : "");
  for (int i = 0; i < rec.npids && n < (int)sizeof(tp.targets); i++)
    n += snprintf(tp.targets + n, sizeof(tp.targets) - (size_t)n, "%s%d",
                  i ? "," : "", (int)rec.pids[i]);
  if (n >= (int)sizeof(tp.targets) - 16) /* cut: say how many */
    snprintf(tp.targets, sizeof(tp.targets), "%d processes", rec.npids);
  if (rec.children)
    snprintf(tp.targets + strlen(tp.targets),
             sizeof(tp.targets) - strlen(tp.targets), " and children");
  /* Keys need the terminal: a background job gets plain tables. */
  tp.tty = !o->batch && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) &&
           tcgetpgrp(STDIN_FILENO) == getpgrp();
  tp.cumulative = o->once;
  rec.on_stack = on_stack;
  rec.on_tick = on_tick;
  rec.arg = &tp;
  signal_guard_cleanup(term_leave_now);
  rc = record_run(&rec);
  term_leave();
  if (!rc && !tp.failed && tp.start) {
    double t = now_s();
    if (o->once) {
      batch_table(&tp, 1, t);
    } else if (!tp.tty && tp.now_w) {
      next_interval(&tp, t); /* the last, shorter interval */
      batch_table(&tp, 0, t);
    }
  }
  if (!rc && !tp.failed && !tp.done && !*o->rec.stop) say_gone(&tp);
  ftable_clear(&tp.now);
  ftable_clear(&tp.last);
  ftable_clear(&tp.all);
  return rc || tp.failed ? 1 : 0;
}

static int parse_rows(const char *s, int *rows)
{
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 1 || v > 100000) return -1;
  *rows = (int)v;
  return 0;
}

int cmd_top(int argc, char **argv)
{
  enum { OPT_ONCE = 256 };
  static const struct option opts[] = {
      {"pid", required_argument, NULL, 'p'},
      {"children", no_argument, NULL, 'c'},
      {"frequency", required_argument, NULL, 'F'},
      {"duration", required_argument, NULL, 'd'},
      {"interval", required_argument, NULL, 'i'},
      {"lines", no_argument, NULL, 'l'},
      {"rows", required_argument, NULL, 'n'},
      {"sort", required_argument, NULL, 's'},
      {"batch", no_argument, NULL, 'b'},
      {"once", no_argument, NULL, OPT_ONCE},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  static pid_t pids[MAX_PIDS];
  static volatile int stop;
  struct top_opts o = {.rec = {.pids = pids, .hz = 99, .stop = &stop},
                       .interval = 1};
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":p:cF:d:i:ln:s:bh", opts, NULL)) != -1) {
    switch (c) {
    case 'p':
      if ((o.rec.npids = parse_pids(optarg, pids, MAX_PIDS)) < 0)
        return usage_error("top", "invalid PID list '%s'", optarg);
      break;
    case 'c': o.rec.children = 1; break;
    case 'F':
      if (parse_hz(optarg, &o.rec.hz, HZ_MAX))
        return usage_error("top", "invalid frequency '%s' (1 to %d Hz)", optarg,
                           HZ_MAX);
      break;
    case 'd':
      if (parse_duration(optarg, &o.duration))
        return usage_error("top", "invalid duration '%s' (seconds, > 0)",
                           optarg);
      break;
    case 'i':
      if (parse_duration(optarg, &o.interval) || o.interval < 0.1)
        return usage_error("top", "invalid interval '%s' (seconds, >= 0.1)",
                           optarg);
      break;
    case 'l': o.rec.line_mode = 1; break;
    case 'n':
      if (parse_rows(optarg, &o.rows))
        return usage_error("top", "invalid row count '%s'", optarg);
      break;
    case 's':
      if (top_sort_parse(optarg, &o.sort))
        return usage_error("top", "invalid sort '%s' (self, total or name)",
                           optarg);
      break;
    case 'b': o.batch = 1; break;
    case OPT_ONCE: o.once = o.batch = 1; break;
    case 'h': usage(stdout); return 0;
    default: return option_error("top", c, argv);
    }
  }
  if (optind < argc)
    return usage_error("top", "unexpected argument '%s'", argv[optind]);
  if (!o.rec.npids) return usage_error("top", "which processes? give -p PID");
  if (o.once && !o.duration) o.duration = o.interval;
  if (cli_parse_only) return 0;
  for (int i = 0; i < o.rec.npids; i++) {
    char why[256];
    if (proc_check(pids[i], why, sizeof(why))) {
      die_msg("%s", why);
      return 1;
    }
  }
  install_signal_guard(&stop);
  return top_run(&o);
}
