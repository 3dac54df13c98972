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
#include "../output/raw.h"
#include "../output/timeline.h"
#include "../proc/proc.h"
#include "../record/record.h"
#include "cmd.h"
#include "common.h"

#define MAX_PIDS 256
#define HZ_MAX 10000

/* Long options without a short one. */
enum { OPT_PUSH = 256, OPT_EVERY, OPT_APP, OPT_LABEL };

static void usage(FILE *f)
{
  fprintf(
      f,
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
      "  -f, --format FORMAT     svg, folded, pprof, speedscope, raw or "
      "html (default:\n"
      "                          by FILE's extension: .svg, .folded or "
      ".txt, .pb.gz,\n"
      "                          .speedscope.json, .luaspy, .html; folded "
      "for -)\n"
      "      --timeline          write a timeline instead of a flame "
      "graph: samples\n"
      "                          over time, the top Lua functions "
      "stacked (FILE\n"
      "                          .html or .svg; .html is always one)\n"
      "      --push URL          stream profiles to a Pyroscope server "
      "as pprof, one\n"
      "                          per process and Lua VM, labelled host, "
      "pid, exe, vm;\n"
      "                          URL is http[s]://HOST:PORT; -o is then "
      "optional\n"
      "      --every DURATION    one upload per this long, as 15s or 1m "
      "(default 15s)\n"
      "      --app NAME          the application name in Pyroscope "
      "(default luaspy.EXE)\n"
      "      --push-label KEY=VALUE\n"
      "                          one more label (repeatable; may replace "
      "host, pid...)\n"
      "  -h, --help              this text\n\n"
      "A raw recording (.luaspy, --format raw) keeps every sample with "
      "its time,\nthread and VM, written as it comes (a recording cut "
      "short stays\nreadable); luaspy report turns it into any output "
      "later, on any machine,\nand luaspy diff compares two. See "
      "docs/raw-format.md.\n\n"
      "With --push, uploads run in the background and never slow "
      "sampling: a failed\none is retried with backoff, and when the "
      "server cannot keep up the oldest\nwaiting profile is dropped, "
      "with a warning.\n\n"
      "Needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE).\n\n"
      "examples:\n"
      "  luaspy record -p $(pgrep -o nginx) --children -d 30 -o nginx.svg\n"
      "  luaspy record -p PID -d 60 -o run.luaspy    # render later: "
      "luaspy report\n"
      "  luaspy record -p PID -d 60 --timeline -o spikes.html\n"
      "  luaspy record -p $(pgrep -o nginx) -c --push http://pyroscope:4040\n");
}

/* A push interval: seconds, or a number with a unit: 15s, 1m, 1h. */
static int parse_every(const char *s, double *v)
{
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  if (errno || end == s) return -1;
  if (!strcmp(end, "m"))
    *v *= 60;
  else if (!strcmp(end, "h"))
    *v *= 3600;
  else if (*end && strcmp(end, "s"))
    return -1;
  return *v >= 1 && *v <= 3600 ? 0 : -1;
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
      {"timeline", no_argument, NULL, 'T'},
      {"push", required_argument, NULL, OPT_PUSH},
      {"every", required_argument, NULL, OPT_EVERY},
      {"app", required_argument, NULL, OPT_APP},
      {"push-label", required_argument, NULL, OPT_LABEL},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  struct push_opts po = {.every = 15};
  const char *push_only = NULL; /* an option that needs --push */
  char why[512];
  static pid_t pids[MAX_PIDS];
  static volatile int stop;
  struct record_opts o = {.pids = pids, .hz = 99, .stop = &stop};
  int c, html;
  opterr = 0;
  /* '+': stop at COMMAND, whose options are its own. */
  while ((c = getopt_long(argc, argv, "+:p:cF:d:lo:f:h", opts, NULL)) != -1) {
    switch (c) {
    case 'p':
      if ((o.npids = parse_pids(optarg, pids, MAX_PIDS)) < 0) {
        return usage_error("record", "invalid PID list '%s'", optarg);
      }
      break;
    case 'c': o.children = 1; break;
    case 'F':
      if (parse_hz(optarg, &o.hz, HZ_MAX)) {
        return usage_error("record", "invalid frequency '%s' (1 to %d Hz)",
                           optarg, HZ_MAX);
      }
      break;
    case 'd':
      if (parse_duration(optarg, &o.duration)) {
        return usage_error("record", "invalid duration '%s' (seconds, > 0)",
                           optarg);
      }
      break;
    case 'l': o.line_mode = 1; break;
    case 'N': o.native = 1; break;
    case 'o': o.output = optarg; break;
    case 'f': o.format = optarg; break;
    case 'T': o.timeline = 1; break;
    case OPT_PUSH:
      if (push_check_url(optarg, why, sizeof(why)))
        return usage_error("record", "%s", why);
      po.url = optarg;
      break;
    case OPT_EVERY:
      push_only = "--every";
      if (parse_every(optarg, &po.every))
        return usage_error(
            "record", "invalid --every '%s' (1s to 1h, as 15s or 1m)", optarg);
      break;
    case OPT_APP:
      push_only = "--app";
      if (push_check_app(optarg, why, sizeof(why)))
        return usage_error("record", "%s", why);
      po.app = optarg;
      break;
    case OPT_LABEL:
      push_only = "--push-label";
      if (push_check_label(optarg, why, sizeof(why)))
        return usage_error("record", "%s", why);
      if (po.nlabels == PUSH_LABELS_MAX)
        return usage_error("record", "more than %d --push-label",
                           PUSH_LABELS_MAX);
      po.labels[po.nlabels++] = optarg;
      break;
    case 'h': usage(stdout); return 0;
    default: return option_error("record", c, argv);
    }
  }
  if (optind < argc) o.argv = argv + optind;
  if (!o.npids && !o.argv) {
    return usage_error("record", "what to profile? give -p PID or -- COMMAND");
  }
  if (o.npids && o.argv) {
    return usage_error("record", "give -p PID or a COMMAND, not both");
  }
  if (po.url)
    o.push = &po;
  else if (push_only)
    return usage_error("record", "%s needs --push URL", push_only);
  if (!o.output && o.push && (o.format || o.timeline))
    return usage_error("record", "-f and --timeline need -o FILE with --push");
  if (!o.output && !o.push) o.output = "profile.svg";
  if (o.output) {
    if (timeline_output(o.output, o.format, o.timeline, &html)) return 2;
    if (html < 0 && !raw_output(o.output, o.format) &&
        !profile_format(o.output, o.format))
      return 2;
    if (check_output(o.output)) return 2;
  }
  if (cli_parse_only) return 0;
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
