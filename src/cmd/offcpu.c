/*
** luaspy offcpu: an off-CPU flame graph of a LuaJIT process, Lua, native
** and kernel frames, by why its threads waited (see src/trace/offcpu.c).
*/
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../output/profile.h"
#include "../proc/proc.h"
#include "../trace/args.h"
#include "../trace/offcpu.h"
#include "cmd.h"
#include "common.h"

#define MIN_US_MAX 3600000000ull

static void usage(FILE *f)
{
  fprintf(f,
          "usage: luaspy offcpu -p PID [OPTIONS]\n\n"
          "Times what the threads of a LuaJIT process wait for, off CPU, "
          "with eBPF, and\nwrites a flame graph in microseconds: the root "
          "frame says why (page fault,\nmmap_lock, file I/O, futex, sleep, "
          "...), then native frames, the Lua stack\nwhere C entered the VM, "
          "and kernel frames as leaves. Also prints who waited\nfor the "
          "process's mmap_lock and who held it for writing, and how long; "
          "with\n--wakers, who woke the threads.\n\n"
          "  -p, --pid PID           the process\n"
          "  -d, --duration SECONDS  stop after this long (default: until "
          "Ctrl-C)\n"
          "  -m, --min-us N          leave out waits shorter than N "
          "microseconds (default 1)\n"
          "  -o, --output FILE       where to write (default offcpu.svg); - "
          "is stdout\n"
          "  -f, --format FORMAT     svg, folded, pprof or speedscope "
          "(default: by FILE's\n"
          "                          extension; folded for -)\n"
          "  -w, --wakers            also record who woke each wait: its "
          "stack goes above\n"
          "                          the waiting thread's, after a \"--\" "
          "frame, innermost\n"
          "                          frame first, topped by [waker: NAME] "
          "(as bcc's\n"
          "                          offwaketime); the summary lists the top "
          "wakers. Kernel\n"
          "                          stack of any waker (an interrupt's "
          "too), native and Lua\n"
          "                          frames when it is a thread of PID. "
          "Costs a stack per\n"
          "                          wakeup of PID's threads.\n"
          "  -h, --help              this text\n\n"
          "Needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE).\n\n"
          "example: luaspy offcpu -p $(pgrep -o traffic_server) -d 10 "
          "--min-us 100 -o wait.svg\n");
}

int cmd_offcpu(int argc, char **argv)
{
  static const struct option opts[] = {
      {"pid", required_argument, NULL, 'p'},
      {"duration", required_argument, NULL, 'd'},
      {"min-us", required_argument, NULL, 'm'},
      {"output", required_argument, NULL, 'o'},
      {"format", required_argument, NULL, 'f'},
      {"wakers", no_argument, NULL, 'w'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  static volatile int stop;
  struct offcpu_opts o = {.min_us = 1, .output = "offcpu.svg", .stop = &stop};
  char why[256];
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":p:d:m:o:f:wh", opts, NULL)) != -1) {
    switch (c) {
    case 'p':
      if (targs_pid(optarg, &o.pid)) {
        return usage_error("offcpu", "invalid PID '%s'", optarg);
      }
      break;
    case 'd':
      if (targs_seconds(optarg, &o.duration)) {
        return usage_error("offcpu", "invalid duration '%s' (seconds, > 0)",
                           optarg);
      }
      break;
    case 'm':
      if (targs_uint(optarg, MIN_US_MAX, &o.min_us)) {
        return usage_error(
            "offcpu", "invalid --min-us '%s' (microseconds, >= 0)", optarg);
      }
      break;
    case 'o': o.output = optarg; break;
    case 'f': o.format = optarg; break;
    case 'w': o.wakers = 1; break;
    case 'h': usage(stdout); return 0;
    default: return option_error("offcpu", c, argv);
    }
  }
  if (optind < argc) {
    return usage_error("offcpu", "unexpected argument '%s'", argv[optind]);
  }
  if (!o.pid) {
    return usage_error("offcpu", "which process? give -p PID");
  }
  if (!profile_format(o.output, o.format)) return 2;
  if (targs_writable("offcpu", o.output)) return 2;
  if (cli_parse_only) return 0;
  if (proc_check(o.pid, why, sizeof(why))) {
    die_msg("%s", why);
    return 1;
  }
  install_signal_guard(&stop);
  return offcpu_run(&o);
}
