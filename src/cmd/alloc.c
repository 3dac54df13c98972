/*
** luaspy alloc and luaspy leaks: GC memory allocated by Lua stack, and
** what of it is still alive at the end (see src/alloc/alloc.h).
*/
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../alloc/alloc.h"
#include "../output/profile.h"
#include "../proc/proc.h"
#include "../trace/args.h"
#include "cmd.h"
#include "common.h"

#define WINDOW_MS_MAX 10000.0
#define BUDGET_MAX 100.0

static void usage_alloc(FILE *f)
{
  fprintf(
      f, "usage: luaspy alloc -p PID [OPTIONS]\n\n"
         "Samples the allocations of the Lua GC heap of a LuaJIT process with "
         "eBPF and\nwrites a flame graph of the bytes allocated (or the "
         "number of allocations)\nby Lua stack: who makes the garbage the GC "
         "then spends its time on.\n\n"
         "  -p, --pid PID           the process\n"
         "  -d, --duration SECONDS  stop after this long (default: until "
         "Ctrl-C)\n"
         "  -o, --output FILE       where to write (default alloc.svg); - is "
         "stdout\n"
         "  -f, --format FORMAT     svg, folded, pprof or speedscope (default: "
         "by FILE's\n"
         "                          extension; folded for -)\n"
         "  -c, --count             weigh stacks by allocations, not bytes\n"
         "  -l, --lines             frames show the line running, not where "
         "the function\n"
         "                          starts\n"
         "      --window MS         length of a sampling window (default 10)\n"
         "      --overhead PCT      share of the target's time the probes may "
         "cost\n"
         "                          (default 1)\n"
         "  -h, --help              this text\n\n"
         "How it samples: a uprobe on the VM's allocator (the lua_Alloc "
         "function that\nG->allocf points to; no symbols needed) sees every "
         "allocation, but each probe\nhit costs the target a trap into the "
         "kernel (22 us or more), hundreds of times\nthe allocation itself. So "
         "the probe is attached only for short windows, and\nthe next window "
         "opens when the traps of the last one fit in the --overhead\nbudget. "
         "Every allocation of a window is taken, weighted by its size: a "
         "sample\nof the allocation stream, not its total (see docs/alloc.md). "
         "The kernel\nwrites the breakpoint into the target's code page only "
         "while attached.\n\n"
         "Needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE).\n\n"
         "example: luaspy alloc -p $(pgrep -f 'nginx: worker' | head -1) -d 10 "
         "-o alloc.svg\n");
}

static void usage_leaks(FILE *f)
{
  fprintf(
      f,
      "usage: luaspy leaks -p PID [OPTIONS]\n\n"
      "Samples the allocations of the Lua GC heap of a LuaJIT process for "
      "a while,\nthen walks the heap from its roots and lists the "
      "allocation sites (Lua stack,\nfile:line) whose sampled blocks are "
      "still alive: the suspects of a leak,\nbiggest first, with the "
      "objects and bytes sampled alive and how old the\noldest is.\n\n"
      "  -p, --pid PID           the process\n"
      "  -d, --duration SECONDS  sample this long (default: until Ctrl-C)\n"
      "  -n, --top N             sites listed (default 10)\n"
      "  -j, --json              one JSON object instead of text (see "
      "docs/alloc.md)\n"
      "  -o, --output FILE       also write the alive bytes by stack: "
      "FILE.svg, .folded,\n"
      "                          .pb.gz, .speedscope.json (- : folded on "
      "stdout)\n"
      "  -f, --format FORMAT     svg, folded, pprof or speedscope\n"
      "      --window MS         length of a sampling window (default 10)\n"
      "      --overhead PCT      share of the target's time the probes may "
      "cost\n"
      "                          (default 1)\n"
      "      --grace SECONDS     no window in the last SECONDS before the "
      "heap walk, so\n"
      "                          that requests in flight finish (default "
      "1)\n"
      "      --confirm SECONDS   watch some alive blocks of each site this "
      "long in all\n"
      "                          (default 2; 0: do not), see below\n"
      "  -h, --help              this text\n\n"
      "How to read it: an allocation is alive when the walk from the roots "
      "(globals,\nregistry, package.loaded, stacks) reaches it as an object "
      "or as a table's\narray or hash part; garbage not yet collected is not "
      "alive. The allocator is\nprobed in short windows within the "
      "--overhead budget (see luaspy alloc\n--help). A block freed in a "
      "window, or holding other contents at a second\nwalk, is not alive. "
      "Last, a few alive blocks of each site are watched with\nthe CPU's "
      "debug registers for a write to their type byte, which is written "
      "only\nwhen a block is freed or made a new object: a site none of "
      "whose watched\nblocks stays intact churns and is not a leak. Shares are "
      "of "
      "the sampled bytes\nalive, with a standard error; sites below 3 "
      "objects or 0.1%% of the sampled\nbytes are noise (requests in "
      "flight, caches settling) and not listed. The\nheap walk reads the "
      "target as it runs, like luaspy heap.\n\n"
      "Needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE).\n\n"
      "example: luaspy leaks -p $(pgrep -f 'nginx: worker' | head -1) -d 30\n");
}

static int parse_ms(const char *s, double max, double *v)
{
  return targs_seconds(s, v) || *v > max ? -1 : 0;
}

static int run(int argc, char **argv, int leaks)
{
  static const struct option alloc_opts[] = {
      {"pid", required_argument, NULL, 'p'},
      {"duration", required_argument, NULL, 'd'},
      {"output", required_argument, NULL, 'o'},
      {"format", required_argument, NULL, 'f'},
      {"count", no_argument, NULL, 'c'},
      {"lines", no_argument, NULL, 'l'},
      {"window", required_argument, NULL, 'W'},
      {"overhead", required_argument, NULL, 'O'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  static const struct option leaks_opts[] = {
      {"pid", required_argument, NULL, 'p'},
      {"duration", required_argument, NULL, 'd'},
      {"output", required_argument, NULL, 'o'},
      {"format", required_argument, NULL, 'f'},
      {"top", required_argument, NULL, 'n'},
      {"json", no_argument, NULL, 'j'},
      {"window", required_argument, NULL, 'W'},
      {"overhead", required_argument, NULL, 'O'},
      {"grace", required_argument, NULL, 'G'},
      {"confirm", required_argument, NULL, 'C'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *cmd = leaks ? "leaks" : "alloc";
  const char *shorts = leaks ? ":p:d:o:f:n:jh" : ":p:d:o:f:clh";
  static volatile int stop;
  struct alloc_opts o = {.leaks = leaks,
                         .window_ms = 10,
                         .budget_pct = 1,
                         .grace = 1,
                         .confirm = 2,
                         .line_mode = leaks,
                         .top = 10,
                         .output = leaks ? NULL : "alloc.svg",
                         .stop = &stop};
  uint64_t top;
  char why[256];
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, shorts, leaks ? leaks_opts : alloc_opts,
                          NULL)) != -1) {
    switch (c) {
    case 'p':
      if (targs_pid(optarg, &o.pid))
        return usage_error(cmd, "invalid PID '%s'", optarg);
      break;
    case 'd':
      if (targs_seconds(optarg, &o.duration))
        return usage_error(cmd, "invalid duration '%s' (seconds, > 0)", optarg);
      break;
    case 'o': o.output = optarg; break;
    case 'f': o.format = optarg; break;
    case 'c': o.count = 1; break;
    case 'l': o.line_mode = 1; break;
    case 'j': o.json = 1; break;
    case 'n':
      if (targs_uint(optarg, 100000, &top) || !top)
        return usage_error(cmd, "invalid --top '%s' (1 to 100000)", optarg);
      o.top = (int)top;
      break;
    case 'W':
      if (parse_ms(optarg, WINDOW_MS_MAX, &o.window_ms))
        return usage_error(cmd, "invalid --window '%s' (milliseconds, > 0)",
                           optarg);
      break;
    case 'O':
      if (parse_ms(optarg, BUDGET_MAX, &o.budget_pct))
        return usage_error(cmd, "invalid --overhead '%s' (percent, 0 to 100)",
                           optarg);
      break;
    case 'G':
      if (parse_ms(optarg, 3600, &o.grace))
        return usage_error(cmd, "invalid --grace '%s' (seconds, > 0)", optarg);
      break;
    case 'C':
      if (!strcmp(optarg, "0"))
        o.confirm = 0;
      else if (parse_ms(optarg, 600, &o.confirm))
        return usage_error(cmd, "invalid --confirm '%s' (seconds, 0 to 600)",
                           optarg);
      break;
    case 'h': (leaks ? usage_leaks : usage_alloc)(stdout); return 0;
    default: return option_error(cmd, c, argv);
    }
  }
  if (optind < argc)
    return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  if (!o.pid) return usage_error(cmd, "which process? give -p PID");
  if (o.output) {
    if (!profile_format(o.output, o.format)) return 2;
    if (targs_writable(cmd, o.output)) return 2;
  } else if (o.format) {
    return usage_error(cmd, "--format needs -o FILE");
  }
  if (leaks && o.duration > 0 && o.grace >= o.duration / 2)
    o.grace = o.duration / 4;
  if (cli_parse_only) return 0;
  if (proc_check(o.pid, why, sizeof(why))) {
    die_msg("%s", why);
    return 1;
  }
  install_signal_guard(&stop);
  return alloc_run(&o);
}

int cmd_alloc(int argc, char **argv)
{
  return run(argc, argv, 0);
}

int cmd_leaks(int argc, char **argv)
{
  return run(argc, argv, 1);
}
