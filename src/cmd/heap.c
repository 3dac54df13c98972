/*
** luaspy heap: what a LuaJIT process's Lua heap holds, by type and by
** reference path, or what grew between two snapshots.
**
** The walk only reads memory (process_vm_readv): the target runs on
** unless --stop asks to ptrace-stop it for the walk. Everything read is
** validated and bounded (see src/heap/heap.h).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../heap/flame.h"
#include "../heap/report.h"
#include "../output/profile.h"
#include "cmd.h"
#include "common.h"

#define CACHE_BYTES (64u << 20) /* target memory cached while walking */

static void usage(FILE *f)
{
  fprintf(f,
          "usage: luaspy heap -p PID [--diff SECONDS] [-o FILE] [--json] "
          "[OPTIONS]\n\n"
          "Snapshots the Lua heap (the GC heap of every LuaJIT VM) of process "
          "PID:\n"
          "objects and bytes per type (table, string, function, prototype, "
          "userdata,\ncdata, thread, trace, upvalue) and the largest tables "
          "with a reference path\nfrom a root, such as "
          "package.loaded[\"metrics\"].lookup or _G.cache.\n\n"
          "  -p, --pid PID          the process (a luajit, an nginx worker, "
          "traffic_server...)\n"
          "  -d, --diff SECONDS     take two snapshots SECONDS apart and show "
          "the tables\n"
          "                         that grew: bytes and entries before and "
          "after, by path\n"
          "  -o, --output FILE      also write the heap as a flame graph: "
          "FILE.svg or\n"
          "                         FILE.folded (\"-\": folded on stdout)\n"
          "  -j, --json             one JSON object instead of text\n"
          "  -n, --top N            tables listed (default 10)\n"
          "      --stop             ptrace-stop every thread of the target "
          "while walking,\n"
          "                         for a consistent snapshot (the target "
          "pauses that long)\n"
          "      --max-objects N    objects visited per walk (default "
          "50000000)\n"
          "      --max-entries N    entries read per table or stack (default "
          "10000000)\n"
          "  -h, --help             this text\n\n"
          "How to read it:\n"
          "  * By default the target is never stopped: the heap is read while "
          "it runs\n"
          "    (a live snapshot). Objects that change under the walk fail "
          "validation\n"
          "    and are skipped and counted (\"skipped as inconsistent\").\n"
          "  * \"objects/bytes\" count everything on the GC's lists, garbage "
          "not yet\n"
          "    swept included; \"reached\" counts what a breadth-first walk "
          "from the\n"
          "    roots reaches: package.loaded, _G, the registry, the main "
          "thread's\n"
          "    stack, the VM's own roots. Weak references count as "
          "references.\n"
          "  * Each object is counted once, under the first path that reaches "
          "it:\n"
          "    \"retained\" bytes and flame graph widths are therefore an "
          "approximation\n"
          "    of what freeing that table would free (a dominator tree would "
          "be exact).\n"
          "    In the flame graph the entries of tables with more than 64 "
          "entries\n"
          "    show as one [*] frame.\n"
          "  * Tables grow by doubling; --diff ranks them by bytes grown, "
          "counting each\n"
          "    new entry as one 24-byte hash node so growth between resizes "
          "shows.\n"
          "  * cdata sizes come from the FFI's C type table (pointers' size "
          "for types\n"
          "    without one); all sizes are LuaJIT's own accounting (lj_gc.c), "
          "not the\n"
          "    allocator's.\n\n"
          "Needs root or CAP_SYS_PTRACE.\n\n"
          "examples:\n"
          "  luaspy heap -p $(pgrep -f 'nginx: worker' | head -1)\n"
          "  luaspy heap -p 1234 --diff 10        # what grows?\n"
          "  luaspy heap -p 1234 -o heap.svg\n");
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_u64(const char *s, uint64_t *v)
{
  char *end;
  unsigned long long x;
  errno = 0;
  x = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || x == 0) return -1;
  *v = x;
  return 0;
}

/* One snapshot of every VM into snaps (nvms of them). */
static int snapshot_all(struct lj_target *t, struct heap_ctx *ctxs,
                        struct heap_snap *snaps, struct tmem *mem,
                        const struct heap_limits *lim)
{
  tmem_flush(mem);
  for (size_t i = 0; i < t->nvms; i++) {
    heap_ctx_init(&ctxs[i], mem, &t->vms[i], lim);
    memset(&snaps[i], 0, sizeof(snaps[i]));
    snaps[i].vm = &t->vms[i];
    tmem_u64(mem, t->vms[i].G + t->vms[i].lay->g_gc_total, &snaps[i].gc_total);
    heap_census(&ctxs[i], &snaps[i]);
    /* Blocks cached by the census are already old: read anew. */
    tmem_flush(mem);
    if (heap_graph(&ctxs[i], &snaps[i])) return -1;
  }
  return 0;
}

static volatile int interrupted;

/* Sleeps, unless ^C: then the diff is cut short. */
static void pause_for(double secs)
{
  struct timespec ts = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};
  while (!interrupted && nanosleep(&ts, &ts) && errno == EINTR) {
  }
}

struct opts {
  pid_t pid;
  int json, stop, top;
  double diff;
  const char *out;
  struct heap_limits lim;
};

/* Parses argv; returns -1 to exit 0 (--help), 2 on a usage error. */
static int parse(int argc, char **argv, struct opts *o)
{
  static const struct option lo[] = {
      {"pid", required_argument, NULL, 'p'},
      {"diff", required_argument, NULL, 'd'},
      {"output", required_argument, NULL, 'o'},
      {"json", no_argument, NULL, 'j'},
      {"top", required_argument, NULL, 'n'},
      {"stop", no_argument, NULL, 'S'},
      {"max-objects", required_argument, NULL, 'M'},
      {"max-entries", required_argument, NULL, 'E'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  uint64_t v;
  char *end;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":p:d:o:jn:h", lo, NULL)) != -1) {
    switch (c) {
    case 'p':
      if (parse_pids(optarg, &o->pid, 1) != 1) {
        return usage_error("heap", "invalid PID '%s'", optarg);
      }
      break;
    case 'd':
      errno = 0;
      o->diff = strtod(optarg, &end);
      if (errno || end == optarg || *end ||
          !(o->diff > 0 && o->diff <= 86400)) {
        return usage_error("heap",
                           "--diff wants seconds between 0 and 86400, not '%s'",
                           optarg);
      }
      break;
    case 'o': o->out = optarg; break;
    case 'j': o->json = 1; break;
    case 'n':
      if (parse_u64(optarg, &v) || v > 100000) {
        return usage_error(
            "heap", "--top wants a number from 1 to 100000, not '%s'", optarg);
      }
      o->top = (int)v;
      break;
    case 'S': o->stop = 1; break;
    case 'M':
    case 'E':
      if (parse_u64(optarg, &v) || v >= UINT32_MAX) {
        return usage_error(
            "heap", "--max-%s wants a number from 1 to %u, not '%s'",
            c == 'M' ? "objects" : "entries", UINT32_MAX - 1, optarg);
      }
      if (c == 'M')
        o->lim.max_objects = v;
      else
        o->lim.max_entries = v;
      break;
    case 'h': usage(stdout); return -1;
    default: return option_error("heap", c, argv);
    }
  }
  if (!o->pid || optind < argc) {
    die_msg(o->pid ? "heap: unexpected argument '%s'"
                   : "heap: which process? give -p PID (try luaspy heap "
                     "--help)",
            optind < argc ? argv[optind] : "");
    return 2;
  }
  if (o->out && !profile_format(o->out, NULL)) return 2; /* it said why */
  if (o->out && !strcmp(o->out, "-") && o->json) {
    return usage_error("heap",
                       "-o - and --json both want stdout: write one to a file");
  }
  return 0;
}

int cmd_heap(int argc, char **argv)
{
  struct opts o = {.top = 10, .lim = {50000000, 10000000}};
  char why[512];
  struct lj_target t;
  struct proc_stop st = {0};
  struct heap_run r = {0};
  struct tmem *mem = NULL;
  int rc = parse(argc, argv, &o);
  double t0;
  if (rc) return rc < 0 ? 0 : rc;
  if (cli_parse_only) return 0;
  install_signal_guard(&interrupted);
  if (proc_check(o.pid, why, sizeof(why)) ||
      lj_discover(o.pid, &t, why, sizeof(why))) {
    die_msg("%s", why);
    return 1;
  }
  r.pid = o.pid;
  r.top = o.top;
  r.nvms = t.nvms;
  r.flame = o.out;
  r.ctxs = calloc(t.nvms, sizeof(*r.ctxs));
  r.before = calloc(t.nvms, sizeof(*r.before));
  if (o.diff > 0) r.after = calloc(t.nvms, sizeof(*r.after));
  if (!r.ctxs || !r.before || (o.diff > 0 && !r.after) ||
      !(mem = tmem_new(o.pid, CACHE_BYTES))) {
    die_msg("out of memory");
    rc = 1;
    goto out;
  }
  for (int k = 0; k < (o.diff > 0 ? 2 : 1) && !rc; k++) {
    if (k == 1) {
      pause_for(o.diff);
      if (interrupted) {
        die_msg("heap: interrupted before the second snapshot");
        rc = 1;
        break;
      }
    }
    t0 = now();
    if (o.stop && proc_stop_all(o.pid, &st, why, sizeof(why))) {
      die_msg("%s", why);
      rc = 1;
      break;
    }
    if (snapshot_all(&t, r.ctxs, k ? r.after : r.before, mem, &o.lim)) rc = 1;
    proc_resume(&st);
    r.seconds += now() - t0;
    if (o.stop) r.stopped_seconds += now() - t0;
    r.stopped = o.stop;
  }
  if (rc) goto out;
  r.interval = o.diff;
  r.bytes_read = tmem_bytes_read(mem);
  if (o.out && heap_flame(r.ctxs, r.after ? r.after : r.before, r.nvms, o.out,
                          "Lua heap by reference path (bytes)")) {
    rc = 1;
    goto out;
  }
  /* With -o -, stdout holds the folded stacks: the report goes to stderr. */
  if (o.json)
    rc = heap_report_json(stdout, &r) ? 1 : 0;
  else
    heap_report_text(o.out && !strcmp(o.out, "-") ? stderr : stdout, &r);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    die_msg("heap: cannot write output: %s", strerror(errno));
    rc = 1;
  }
out:
  for (size_t i = 0; i < t.nvms; i++) {
    if (r.before) heap_snap_free(&r.before[i]);
    if (r.after) heap_snap_free(&r.after[i]);
  }
  free(r.before);
  free(r.after);
  free(r.ctxs);
  tmem_free(mem);
  lj_target_free(&t);
  return rc;
}
