/*
** luaspy report: folded stacks or a raw recording in; a flame graph, a
** pprof or speedscope profile, tidy folded stacks, or (from a raw
** recording) a timeline out. Everything is read before the output is
** opened, so INPUT and OUTPUT may be the same file.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../output/profile.h"
#include "../output/raw.h"
#include "../output/timeline.h"
#include "cmd.h"
#include "common.h"

static void usage(FILE *f)
{
  fputs(
      "usage: luaspy report INPUT [-o OUTPUT] [-f FORMAT] [-t TEXT] [-F HZ]\n"
      "                           [--timeline]\n"
      "\n"
      "Turn a recording into an interactive flame graph, or into a profile\n"
      "for pprof or speedscope. INPUT is folded stacks, one line per stack,\n"
      "frames root first, then a space and a count:\n"
      "\n"
      "    main chunk (app.lua:40);handle (app.lua:12);C:strlen 17\n"
      "\n"
      "as luaspy records them, or as flamegraph.pl's stackcollapse scripts\n"
      "write them; or a raw recording (luaspy record -o FILE.luaspy), which\n"
      "also gives the sample rate, and a timeline. Equal stacks add up.\n"
      "INPUT - reads standard input. A raw recording cut short (luaspy was\n"
      "killed) is said to be truncated and used up to where it ends.\n"
      "\n"
      "options:\n"
      "  -o, --output FILE    write to FILE instead of standard output; its\n"
      "                       ending picks the format: .svg a flame graph,\n"
      "                       .folded or .txt folded stacks, .pb.gz pprof,\n"
      "                       .speedscope.json speedscope, .html a timeline\n"
      "  -f, --format FORMAT  folded, svg, pprof, speedscope or html, "
      "whatever\n"
      "                       the ending (default: folded on standard output)\n"
      "      --timeline       from a raw recording, a timeline: samples over\n"
      "                       time, the top Lua functions stacked; OUTPUT "
      "ends\n"
      "                       in .html (hover for details) or .svg\n"
      "  -t, --title TEXT     title of the flame graph, name of the "
      "speedscope\n"
      "                       profile (default \"Flame Graph\", \"luaspy\")\n"
      "  -F, --frequency HZ   INPUT was sampled HZ times a second (luaspy\n"
      "                       record -F): pprof and speedscope output then\n"
      "                       also give CPU time, HZ samples being 1 s (a raw\n"
      "                       recording knows its rate)\n"
      "  -h, --help           show this help\n"
      "\n"
      "In the flame graph, the root is at the bottom and each frame is as\n"
      "wide as its share of the samples. Hover a frame for its counts, click\n"
      "to zoom in, Ctrl-F or Search to highlight frames by regular\n"
      "expression. Colours tell frame kinds apart: Lua functions warm,\n"
      "JIT traces green, C functions blue, builtins violet, VM states grey.\n"
      "\n"
      "pprof profiles (.pb.gz) open with 'go tool pprof -http=: FILE' or\n"
      "'go tool pprof -top FILE'; speedscope files in "
      "https://www.speedscope.app\n"
      "or the speedscope command. Lua frames keep their file and line there.\n"
      "\n"
      "examples:\n"
      "  luaspy report app.folded -o app.svg\n"
      "  luaspy report app.folded > merged.folded     # add up, sort\n"
      "  luaspy report app.folded -F 99 -o app.pb.gz\n"
      "  luaspy report app.folded -o app.speedscope.json\n"
      "  luaspy report run.luaspy -o run.pb.gz\n"
      "  luaspy report run.luaspy --timeline -o run.html\n"
      "  luaspy report - --format svg --title 'nginx worker' < app.folded > "
      "app.svg\n"
      "\n"
      "exit status: 0 done, 1 bad input or output error, 2 usage error.\n",
      f);
}

struct tl_out {
  const struct timeline *tl;
  int html;
  const struct render_opts *opts;
};

static int write_timeline(FILE *out, void *arg)
{
  const struct tl_out *t = arg;
  return timeline_write(t->tl, out, t->html, t->opts);
}

int cmd_report(int argc, char **argv)
{
  static const struct option longopts[] = {
      {"output", required_argument, NULL, 'o'},
      {"format", required_argument, NULL, 'f'},
      {"title", required_argument, NULL, 't'},
      {"frequency", required_argument, NULL, 'F'},
      {"timeline", no_argument, NULL, 'T'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *input, *output = "-", *format = NULL;
  struct render_opts opts = {0};
  struct profile *p;
  struct timeline *tl = NULL;
  struct raw_info info = {0};
  char subtitle[256];
  FILE *in;
  int c, ok, from_stdin, timeline = 0, html;
  char *end;
  long hz;

  opterr = 0;
  while ((c = getopt_long(argc, argv, ":o:f:t:F:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'o': output = optarg; break;
    case 'f': format = optarg; break;
    case 't': opts.title = optarg; break;
    case 'F':
      hz = strtol(optarg, &end, 10);
      if (end == optarg || *end || hz < 1 || hz > 1000000)
        return usage_error("report",
                           "the frequency must be a whole number of "
                           "samples per second, 1 to 1000000, not '%s'",
                           optarg);
      opts.sample_hz = (int)hz;
      break;
    case 'T': timeline = 1; break;
    case 'h': usage(stdout); return 0;
    default: return option_error("report", c, argv);
    }
  }
  if (optind == argc)
    return usage_error("report", "missing INPUT, a folded stacks file or - for "
                                 "standard input");
  if (argc - optind > 1)
    return usage_error("report", "one INPUT only, not also '%s'",
                       argv[optind + 1]);
  input = argv[optind];
  /* A format we cannot write is a usage error: find it before reading. */
  if (timeline_output(output, format, timeline, &html)) return 2;
  if (html < 0 && raw_output(output, format))
    return usage_error("report", "raw recordings come from luaspy record, "
                                 "not report");
  if (html < 0 && !profile_format(output, format)) return 2;
  if (cli_parse_only) return 0;

  from_stdin = strcmp(input, "-") == 0;
  if (from_stdin) {
    in = stdin;
  } else if (!(in = fopen(input, "r"))) {
    fprintf(stderr, "luaspy: cannot open %s: %s\n", input, strerror(errno));
    return 1;
  }
  p = profile_new("samples");
  ok = p && (html < 0 || (tl = timeline_new()));
  /* Folded stacks keep report's messages of old: "line N: ...". */
  if (ok && html < 0 && !raw_sniff(in))
    ok = profile_read_folded(p, in) == 0;
  else if (ok)
    ok = recording_read(p, tl, in, from_stdin ? "standard input" : input,
                        &info) == 0;
  if (ok && info.raw) {
    if (!opts.sample_hz) opts.sample_hz = (int)info.hz;
    if (!opts.subtitle) {
      raw_describe(&info, subtitle, sizeof(subtitle));
      opts.subtitle = subtitle;
    }
  }
  if (ok && html >= 0) {
    struct tl_out t = {tl, html, &opts};
    ok = output_file(output, write_timeline, &t) == 0;
  } else if (ok) {
    ok = profile_write(p, output, format, &opts) == 0;
  }
  raw_info_free(&info);
  timeline_free(tl);
  profile_free(p);
  if (!from_stdin) fclose(in);
  return ok ? 0 : 1;
}
