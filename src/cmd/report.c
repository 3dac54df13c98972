/*
** luaspy report: folded stacks in, a flame graph, a pprof or speedscope
** profile, or tidy folded stacks out. Everything is read before the output is
*opened, so INPUT and
** OUTPUT may be the same file.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../output/profile.h"
#include "cmd.h"
#include "common.h"

static void usage(FILE *f)
{
  fputs(
      "usage: luaspy report INPUT [-o OUTPUT] [-f FORMAT] [-t TEXT] [-F HZ]\n"
      "\n"
      "Turn folded stacks into an interactive flame graph, or into a profile\n"
      "for pprof or speedscope. INPUT holds one line per stack, frames root\n"
      "first, then a space and a count:\n"
      "\n"
      "    main chunk (app.lua:40);handle (app.lua:12);C:strlen 17\n"
      "\n"
      "as luaspy records them, or as flamegraph.pl's stackcollapse scripts\n"
      "write them. Equal stacks add up. INPUT - reads standard input.\n"
      "\n"
      "options:\n"
      "  -o, --output FILE    write to FILE instead of standard output; its\n"
      "                       ending picks the format: .svg a flame graph,\n"
      "                       .folded or .txt folded stacks, .pb.gz pprof,\n"
      "                       .speedscope.json speedscope\n"
      "  -f, --format FORMAT  folded, svg, pprof or speedscope, whatever the\n"
      "                       ending (default: folded on standard output)\n"
      "  -t, --title TEXT     title of the flame graph, name of the "
      "speedscope\n"
      "                       profile (default \"Flame Graph\", \"luaspy\")\n"
      "  -F, --frequency HZ   INPUT was sampled HZ times a second (luaspy\n"
      "                       record -F): pprof and speedscope output then\n"
      "                       also give CPU time, HZ samples being 1 s\n"
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
      "  luaspy report - --format svg --title 'nginx worker' < app.folded > "
      "app.svg\n"
      "\n"
      "exit status: 0 done, 1 bad input or output error, 2 usage error.\n",
      f);
}

int cmd_report(int argc, char **argv)
{
  static const struct option longopts[] = {
      {"output", required_argument, NULL, 'o'},
      {"format", required_argument, NULL, 'f'},
      {"title", required_argument, NULL, 't'},
      {"frequency", required_argument, NULL, 'F'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *input, *output = "-", *format = NULL;
  struct render_opts opts = {0};
  struct profile *p;
  FILE *in;
  int c, ok, from_stdin;
  char *end;
  long hz;

  opterr = 0;
  while ((c = getopt_long(argc, argv, ":o:f:t:F:h", longopts, NULL)) != -1) {
    char opt[3] = {'-', (char)optopt, '\0'};
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
    case 'h': usage(stdout); return 0;
    case ':':
      return usage_error("report", "missing argument to '%s'",
                         argv[optind - 1]);
    default: /* optopt is 0 for long options */
      return usage_error("report", "unknown option '%s'",
                         optopt ? opt : argv[optind - 1]);
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
  if (!profile_format(output, format)) return 2;
  if (cli_parse_only) return 0;

  from_stdin = strcmp(input, "-") == 0;
  if (from_stdin) {
    in = stdin;
  } else if (!(in = fopen(input, "r"))) {
    fprintf(stderr, "luaspy: cannot open %s: %s\n", input, strerror(errno));
    return 1;
  }
  p = profile_new("samples");
  ok = p && profile_read_folded(p, in) == 0 &&
       profile_write(p, output, format, &opts) == 0;
  profile_free(p);
  if (!from_stdin) fclose(in);
  return ok ? 0 : 1;
}
