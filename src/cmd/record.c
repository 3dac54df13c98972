/*
** luaspy record: a CPU flame graph of the Lua code running in processes,
** sampled with eBPF (see src/record/ and src/bpf/record.bpf.c).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../output/profile.h"
#include "../proc/proc.h"
#include "../record/record.h"
#include "cmd.h"
#include "common.h"

#define MAX_PIDS 256
#define HZ_MAX 10000

static void usage(FILE *f)
{
  fprintf(f,
          "usage: luaspy record -p PID[,PID...] [OPTIONS]\n"
          "       luaspy record [OPTIONS] -- COMMAND [ARGS...]\n\n"
          "Samples the Lua stacks of running LuaJIT processes on every CPU "
          "with eBPF\nand writes a flame graph. Runs until the duration ends, "
          "Ctrl-C, or the\ntargets exit, and always writes what it has.\n\n"
          "  -p, --pid PID[,PID...]  the processes (nginx workers, "
          "traffic_server, luajit)\n"
          "  -c, --children          also their child processes (all "
          "workers of a master)\n"
          "  -F, --frequency HZ      samples per second and CPU (default "
          "99)\n"
          "  -d, --duration SECONDS  stop after this long (default: until "
          "Ctrl-C)\n"
          "  -l, --lines             frames show the line running, not the "
          "line where\n"
          "                          the function is defined\n"
          "      --native            also the native (C) frames of the "
          "sampled thread, from\n"
          "                          its program down to the Lua VM and "
          "from Lua into C\n"
          "                          (C:function or C:object+0xoff; "
          "unwound with the\n"
          "                          binaries' .eh_frame); costs a 16 KiB "
          "stack copy per\n"
          "                          sample\n"
          "  -o, --output FILE       where to write (default profile.svg); - "
          "is stdout\n"
          "  -f, --format FORMAT     svg, folded, pprof or speedscope "
          "(default: by FILE's\n"
          "                          extension: .svg, .folded or .txt, "
          ".pb.gz,\n"
          "                          .speedscope.json; folded for -)\n"
          "  -h, --help              this text\n\n"
          "Needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE).\n\n"
          "example: luaspy record -p $(pgrep -o nginx) --children -d 30 -o "
          "nginx.svg\n");
}

/* A positive number of seconds, as "30" or "2.5". */
static int parse_seconds(const char *s, double *v)
{
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  return errno || end == s || *end || !(*v > 0) || *v > 1e7 ? -1 : 0;
}

static int parse_hz(const char *s, int *hz)
{
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 1 || v > HZ_MAX) return -1;
  *hz = (int)v;
  return 0;
}

/* The output must be writable before anything is recorded. */
static int check_output(const char *path)
{
  char dir[PATH_MAX];
  if (!strcmp(path, "-")) return 0;
  snprintf(dir, sizeof(dir), "%s", path);
  if (access(dirname(dir), W_OK)) {
    die_msg("record: cannot write '%s': %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

int cmd_record(int argc, char **argv)
{
  static const struct option opts[] = {
      {"pid", required_argument, NULL, 'p'},
      {"children", no_argument, NULL, 'c'},
      {"frequency", required_argument, NULL, 'F'},
      {"duration", required_argument, NULL, 'd'},
      {"lines", no_argument, NULL, 'l'},
      {"native", no_argument, NULL, 'N'},
      {"output", required_argument, NULL, 'o'},
      {"format", required_argument, NULL, 'f'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  static pid_t pids[MAX_PIDS];
  static volatile int stop;
  struct record_opts o = {
      .pids = pids, .hz = 99, .output = "profile.svg", .stop = &stop};
  int c;
  opterr = 0;
  /* '+': stop at COMMAND, whose options are its own. */
  while ((c = getopt_long(argc, argv, "+p:cF:d:lo:f:h", opts, NULL)) != -1) {
    switch (c) {
    case 'p':
      if ((o.npids = parse_pids(optarg, pids, MAX_PIDS)) < 0) {
        die_msg("record: invalid PID list '%s'", optarg);
        return 2;
      }
      break;
    case 'c': o.children = 1; break;
    case 'F':
      if (parse_hz(optarg, &o.hz)) {
        die_msg("record: invalid frequency '%s' (1 to %d Hz)", optarg, HZ_MAX);
        return 2;
      }
      break;
    case 'd':
      if (parse_seconds(optarg, &o.duration)) {
        die_msg("record: invalid duration '%s' (seconds, > 0)", optarg);
        return 2;
      }
      break;
    case 'l': o.line_mode = 1; break;
    case 'N': o.native = 1; break;
    case 'o': o.output = optarg; break;
    case 'f': o.format = optarg; break;
    case 'h': usage(stdout); return 0;
    default:
      if (optopt && strchr("pFdof", optopt))
        die_msg("record: option '%s' needs a value", argv[optind - 1]);
      else
        die_msg("record: unknown option '%s' (try luaspy record --help)",
                argv[optind - 1]);
      return 2;
    }
  }
  if (optind < argc) o.argv = argv + optind;
  if (!o.npids && !o.argv) {
    die_msg("record: what to profile? give -p PID or -- COMMAND (try luaspy "
            "record --help)");
    return 2;
  }
  if (o.npids && o.argv) {
    die_msg("record: give -p PID or a COMMAND, not both");
    return 2;
  }
  if (!profile_format(o.output, o.format)) return 2;
  if (check_output(o.output)) return 2;
  for (int i = 0; i < o.npids; i++) {
    char why[256];
    if (proc_check(pids[i], why, sizeof(why))) {
      die_msg("%s", why);
      return 1;
    }
  }
  install_signal_guard(&stop);
  return record_run(&o);
}
