/*
** luaspy syscalls: system call counts, latencies, sizes and process
** starts of a LuaJIT process, by Lua+native backtrace (see
** src/trace/syscalls.c).
*/
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../output/profile.h"
#include "../proc/proc.h"
#include "../trace/args.h"
#include "../trace/syscalls.h"
#include "../trace/sysnames.h"
#include "cmd.h"
#include "common.h"

static void usage(FILE *f)
{
  fprintf(f,
          "usage: luaspy syscalls -p PID [OPTIONS]\n\n"
          "Traces the system calls of a LuaJIT process with eBPF: count, "
          "total time and\np50/p99/max latency of each, its top backtraces "
          "(native and Lua frames),\nsize histograms of mmap, mprotect, "
          "munmap, read and write, and every process\nit starts (clone, "
          "fork, vfork, exec) with the Lua line that started it.\n\n"
          "  -p, --pid PID           the process\n"
          "  -d, --duration SECONDS  stop after this long (default: until "
          "Ctrl-C)\n"
          "  -e, --syscalls LIST     only these, by kernel name: "
          "mmap,mprotect,clone,...\n"
          "  -j, --json              the report as JSON on stdout\n"
          "  -o, --output FILE       also a flame graph of the time spent in "
          "the syscalls\n"
          "                          traced (with -e read,write: file I/O "
          "latency)\n"
          "  -f, --format FORMAT     of that flame graph: svg, folded, pprof, "
          "speedscope\n"
          "  -h, --help              this text\n\n"
          "Needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE).\n\n"
          "example: luaspy syscalls -p $(pgrep -o traffic_server) -d 10 -e "
          "mmap,munmap,clone\n");
}

/* "mmap,clone" into syscall numbers. Returns 0, or -1 after a message. */
static int parse_filter(const char *list, struct syscalls_opts *o)
{
  char buf[1024], *save = NULL, *tok;
  snprintf(buf, sizeof(buf), "%s", list);
  for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    long nr = sysnr(tok);
    if (nr < 0) {
      die_msg("syscalls: unknown system call '%s'", tok);
      return -1;
    }
    if (o->nfilter == SYSCALLS_MAX_FILTER) {
      die_msg("syscalls: more than %d system calls in -e", SYSCALLS_MAX_FILTER);
      return -1;
    }
    o->filter[o->nfilter++] = nr;
  }
  if (!o->nfilter) {
    die_msg("syscalls: -e needs system call names");
    return -1;
  }
  return 0;
}

int cmd_syscalls(int argc, char **argv)
{
  static const struct option opts[] = {
      {"pid", required_argument, NULL, 'p'},
      {"duration", required_argument, NULL, 'd'},
      {"syscalls", required_argument, NULL, 'e'},
      {"json", no_argument, NULL, 'j'},
      {"output", required_argument, NULL, 'o'},
      {"format", required_argument, NULL, 'f'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  static volatile int stop;
  static struct syscalls_opts o;
  char why[256];
  int c;
  memset(&o, 0, sizeof(o));
  o.stop = &stop;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":p:d:e:jo:f:h", opts, NULL)) != -1) {
    switch (c) {
    case 'p':
      if (targs_pid(optarg, &o.pid)) {
        return usage_error("syscalls", "invalid PID '%s'", optarg);
      }
      break;
    case 'd':
      if (targs_seconds(optarg, &o.duration)) {
        return usage_error("syscalls", "invalid duration '%s' (seconds, > 0)",
                           optarg);
      }
      break;
    case 'e':
      if (parse_filter(optarg, &o)) return 2;
      break;
    case 'j': o.json = 1; break;
    case 'o': o.output = optarg; break;
    case 'f': o.format = optarg; break;
    case 'h': usage(stdout); return 0;
    default: return option_error("syscalls", c, argv);
    }
  }
  if (optind < argc) {
    return usage_error("syscalls", "unexpected argument '%s'", argv[optind]);
  }
  if (!o.pid) {
    return usage_error("syscalls", "which process? give -p PID");
  }
  if (o.format && !o.output) {
    return usage_error("syscalls", "-f needs -o FILE");
  }
  if (o.output && (!profile_format(o.output, o.format) ||
                   targs_writable("syscalls", o.output)))
    return 2;
  if (o.output && o.json && !strcmp(o.output, "-")) {
    return usage_error("syscalls",
                       "--json and -o - would both write to stdout");
  }
  if (cli_parse_only) return 0;
  if (proc_check(o.pid, why, sizeof(why))) {
    die_msg("%s", why);
    return 1;
  }
  install_signal_guard(&stop);
  return syscalls_run(&o);
}
