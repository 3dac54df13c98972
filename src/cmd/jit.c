/*
** luaspy jit: what the LuaJIT compiler of a process is doing, and
** whether that is a problem (issue #6).
**
** Read-only by default: the JIT state of every VM is read about 100
** times a second and g->vmstate about 1000 times (process_vm_readv), and
** mmap/munmap/mprotect are traced with syscall tracepoints. --write
** enables the two documented writes (--decay, --jit-off).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../jit/mmwatch.h"
#include "../jit/poke.h"
#include "../jit/report.h"
#include "../jit/verdict.h"
#include "../jit/watch.h"
#include "../luajit/luajit.h"
#include "cmd.h"
#include "common.h"

/* vmstate samples at 1 kHz and looks at 100 Hz per VM, slower with many
 * VMs (traffic_server has 2 per state) to stay near 20000 reads/s. */
#define SAMPLE_NS 1000000ull
#define SAMPLE_NS_PER_VM 50000ull
#define LOOK_EVERY 10 /* samples per look */
#define MAX_SECONDS 86400.0
#define MAX_VERDICTS 32

static void usage(FILE *f)
{
  fprintf(
      f,
      "usage: luaspy jit -p PID [-d SECONDS] [--warmup SECONDS] [--json]\n"
      "                  [-o timeline.svg|timeline.html] [--no-syscalls]\n"
      "                  [--write (--decay SECONDS | --jit-off)...]\n\n"
      "Watches the LuaJIT compiler of every VM in process PID for a while and\n"
      "says in plain words whether it hurts: traces compiled, aborted, "
      "flushed;\n"
      "machine-code memory and the mmap/mprotect calls it costs; which Lua "
      "code\n"
      "is compiled late, fails to compile or is compiled again and again.\n\n"
      "  -p, --pid PID         the process (luajit, nginx worker, "
      "traffic_server)\n"
      "  -d, --duration S      watch S seconds (default 5; ^C ends early)\n"
      "      --warmup S        traces compiled later than S seconds after the\n"
      "                        process started are late compiles (default 10)\n"
      "  -j, --json            one JSON object, with a \"verdicts\" list\n"
      "  -o, --output FILE     also write a timeline of compilations, aborts,\n"
      "                        flushes and mmap/mprotect rates (.svg or "
      ".html)\n"
      "      --no-syscalls     do not trace mmap/munmap/mprotect (no BPF "
      "needed)\n"
      "  -h, --help            this text\n\n"
      "Writes to the target (only with --write; they change how its JIT "
      "behaves):\n"
      "      --write           allow the writes below\n"
      "      --decay S         every S seconds reset the VM's hot counters and "
      "the\n"
      "                        side-exit counters of its traces, so that only "
      "code\n"
      "                        hot within S seconds gets compiled\n"
      "      --jit-off         turn the compiler off, as jit.off() does: "
      "clears\n"
      "                        JIT_F_ON; the VM switches its dispatch table "
      "itself\n"
      "                        at the next hot loop, after which no new root "
      "trace\n"
      "                        is compiled. As with jit.off(), compiled traces "
      "keep\n"
      "                        running and their side exits may still be "
      "compiled\n"
      "                        (add --decay to keep those cold).\n\n"
      "Verdicts (\"kind\" in JSON; none for a healthy process):\n"
      "  mcode-storm    machine code cannot be placed: >= %d misplaced or "
      "failed\n"
      "                 mcode mmaps in the window (needs syscall tracing)\n"
      "  flush-loop     all traces flushed >= %d times in the window\n"
      "  late-compiles  new code compiled after the warm-up\n"
      "  abort-storm    >= %d trace aborts and >= %.0f/s\n"
      "  blacklisted    code LuaJIT gave up compiling after repeated aborts\n\n"
      "Aborts come from LuaJIT's penalty cache (root traces only); \"runs\" "
      "are\n"
      "vmstate samples, not exact counts. Needs root (or CAP_SYS_PTRACE, and\n"
      "CAP_BPF+CAP_PERFMON for syscall tracing).\n\n"
      "example: luaspy jit -p $(pgrep -f 'nginx: worker' | head -1) -d 30\n",
      JIT_STORM_FAILED, JIT_FLUSH_LOOP_MIN, JIT_ABORT_STORM_MIN,
      JIT_ABORT_STORM_RATE);
}

static int parse_seconds(const char *s, double *v)
{
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  return errno || end == s || *end || !isfinite(*v) || *v < 0 ||
         *v > MAX_SECONDS;
}

static uint64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t ns)
{
  struct timespec ts = {(time_t)(ns / 1000000000ull),
                        (long)(ns % 1000000000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    if (mono_ns() >= ns) break;
}

/* Seconds since pid started (/proc/PID/stat starttime), or -1. */
static double process_age(pid_t pid)
{
  char path[64], buf[1024], *p;
  double up;
  unsigned long long start = 0;
  FILE *f;
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if (!(f = fopen(path, "r"))) return -1;
  buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
  fclose(f);
  /* after "(comm)": state is field 3, starttime field 22 */
  if (!(p = strrchr(buf, ')'))) return -1;
  for (int field = 2; field < 22 && p; field++) p = strchr(p + 1, ' ');
  if (!p || sscanf(p + 1, "%llu", &start) != 1) return -1;
  if (!(f = fopen("/proc/uptime", "r"))) return -1;
  if (fscanf(f, "%lf", &up) != 1) up = -1;
  fclose(f);
  return up < 0 ? -1 : up - (double)start / (double)sysconf(_SC_CLK_TCK);
}

static int write_timeline(const char *path, const struct jit_session *s)
{
  size_t n = strlen(path);
  int html = n > 5 && !strcasecmp(path + n - 5, ".html");
  FILE *f = fopen(path, "w");
  if (!f) {
    die_msg("jit: cannot create %s: %s", path, strerror(errno));
    return -1;
  }
  jit_timeline(f, s, html);
  if (fclose(f)) {
    die_msg("jit: cannot write %s: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

struct opts {
  pid_t pid;
  double duration, warmup, decay;
  int json, write, jit_off, syscalls;
  const char *output;
};

static int parse(int argc, char **argv, struct opts *o)
{
  enum { O_WARMUP = 256, O_WRITE, O_DECAY, O_JITOFF, O_NOSYS };
  static const struct option opts[] = {
      {"pid", required_argument, NULL, 'p'},
      {"duration", required_argument, NULL, 'd'},
      {"json", no_argument, NULL, 'j'},
      {"output", required_argument, NULL, 'o'},
      {"warmup", required_argument, NULL, O_WARMUP},
      {"write", no_argument, NULL, O_WRITE},
      {"decay", required_argument, NULL, O_DECAY},
      {"jit-off", no_argument, NULL, O_JITOFF},
      {"no-syscalls", no_argument, NULL, O_NOSYS},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int c;
  *o = (struct opts){.duration = 5, .warmup = 10, .syscalls = 1};
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":p:d:jo:h", opts, NULL)) != -1) {
    switch (c) {
    case 'p':
      if (parse_pids(optarg, &o->pid, 1) != 1) {
        return usage_error("jit", "invalid PID '%s'", optarg);
      }
      break;
    case 'd':
      if (parse_seconds(optarg, &o->duration)) {
        return usage_error(
            "jit", "invalid duration '%s' (seconds, e.g. 10 or 0.5)", optarg);
      }
      break;
    case O_WARMUP:
      if (parse_seconds(optarg, &o->warmup)) {
        return usage_error("jit", "invalid --warmup '%s' (seconds)", optarg);
      }
      break;
    case O_DECAY:
      if (parse_seconds(optarg, &o->decay) || o->decay < 0.01) {
        return usage_error(
            "jit", "invalid --decay '%s' (seconds, at least 0.01)", optarg);
      }
      break;
    case 'j': o->json = 1; break;
    case 'o': o->output = optarg; break;
    case O_WRITE: o->write = 1; break;
    case O_JITOFF: o->jit_off = 1; break;
    case O_NOSYS: o->syscalls = 0; break;
    case 'h': usage(stdout); return 0;
    default: return option_error("jit", c, argv);
    }
  }
  if (!o->pid || optind < argc) {
    die_msg(o->pid ? "jit: unexpected argument '%s'"
                   : "jit: which process? give -p PID (try luaspy jit --help)",
            optind < argc ? argv[optind] : "");
    return 2;
  }
  if ((o->decay > 0 || o->jit_off) && !o->write) {
    return usage_error("jit", "--decay and --jit-off write into the target; "
                              "add --write to allow that");
  }
  if (o->write && !o->decay && !o->jit_off) {
    return usage_error("jit",
                       "--write allows --decay or --jit-off; give one of them");
  }
  return -1;
}

static volatile int stop;

int cmd_jit(int argc, char **argv)
{
  struct opts o;
  struct lj_target t;
  struct jit_watch w;
  struct jit_mmwatch *mm = NULL;
  struct jit_verdict v[MAX_VERDICTS];
  struct jit_session s;
  char why[512], mm_why[256] = "--no-syscalls";
  uint64_t t0, tick, period, next_decay = 0;
  int rc = parse(argc, argv, &o);
  if (rc >= 0) return rc;
  if (cli_parse_only) return 0;
  rc = 0;
  install_signal_guard(&stop);
  if (proc_check(o.pid, why, sizeof(why)) ||
      lj_discover(o.pid, &t, why, sizeof(why))) {
    die_msg("%s", why);
    return 1;
  }
  memset(&s, 0, sizeof(s));
  s.pid = o.pid;
  s.warmup = o.warmup;
  s.decay = o.decay;
  if (jit_watch_init(&w, o.pid, &t, 0)) {
    die_msg("out of memory");
    rc = 1;
    goto out;
  }
  if (!w.nvms) {
    die_msg("jit: pid %d: none of its %zu Lua VM%s has a JIT layout luaspy "
            "knows (%s)",
            (int)o.pid, t.nvms, t.nvms == 1 ? "" : "s",
            lj_flavor_name(t.vms[0].lay->flavor));
    rc = 1;
    goto out_watch;
  }
  /* Without the tracer (no BPF here) everything else still works; the
   * output says why the syscalls are missing. */
  if (o.syscalls) mm = jit_mm_open(&w, o.duration, mm_why, sizeof(mm_why));
  /* The window starts now: loading BPF takes a while. */
  t0 = mono_ns();
  if (mm) jit_mm_start(mm, t0);
  s.process_age = process_age(o.pid);
  w.age0 = s.process_age;
  w.warmup_at = s.process_age >= 0 ? o.warmup - s.process_age : o.warmup;
  /* After the tracer is in place, so the window shows the effect. */
  if (o.jit_off)
    for (size_t i = 0; i < w.nvms; i++)
      if (jit_off(o.pid, w.vms[i].vm, why, sizeof(why))) {
        die_msg("jit: %s", why);
        rc = 1;
        goto out_mm;
      }
  s.jit_off = o.jit_off;
  if (o.jit_off && mm) jit_mm_mark(mm, mono_ns());
  period = w.nvms * SAMPLE_NS_PER_VM > SAMPLE_NS ? w.nvms * SAMPLE_NS_PER_VM
                                                 : SAMPLE_NS;
  for (uint64_t n = 0; !stop; n++) {
    tick = t0 + n * period;
    double now = (double)(tick - t0) / 1e9;
    if (now >= o.duration) break;
    if (o.decay > 0 && tick >= next_decay) {
      for (size_t i = 0; i < w.nvms; i++) jit_decay(&w, &w.vms[i], &s.ds);
      next_decay = tick + (uint64_t)(o.decay * 1e9);
    }
    jit_watch_sample(&w);
    if (n % LOOK_EVERY == LOOK_EVERY - 1) {
      size_t failed = 0;
      jit_watch_look(&w, now);
      if (mm) jit_mm_poll(mm);
      for (size_t i = 0; i < w.nvms; i++) failed += w.vms[i].failed;
      if (failed == w.nvms) break; /* the target is gone */
    }
    /* fall behind rather than burst when the machine is busy */
    if (mono_ns() > tick + 50 * period) n = (mono_ns() - t0) / period;
    sleep_until(t0 + (n + 1) * period);
  }
  s.seconds = (double)(mono_ns() - t0) / 1e9;
  jit_watch_finish(&w);
  if (mm) jit_mm_poll(mm);
  s.w = &w;
  s.mm = mm ? jit_mm_stats(mm) : NULL;
  s.mm_why = mm_why;
  s.v = v;
  s.nv = jit_verdicts(&w, s.mm, s.seconds, v, MAX_VERDICTS);
  if (o.json) {
    if (jit_report_json(stdout, &s)) rc = 1;
  } else {
    jit_report_text(stdout, &s);
  }
  if (o.output && write_timeline(o.output, &s)) rc = 1;
  if (fflush(stdout) != 0 || ferror(stdout)) {
    die_msg("jit: cannot write output: %s", strerror(errno));
    rc = 1;
  }
out_mm:
  jit_mm_close(mm);
out_watch:
  jit_watch_free(&w);
out:
  lj_target_free(&t);
  return rc;
}
