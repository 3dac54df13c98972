/*
** luaspy diff: two recordings in, a differential flame graph out (see
** src/output/diff_svg.h). Both inputs are read before the output is
** opened, so the output may overwrite either.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../output/diff_svg.h"
#include "../output/profile.h"
#include "../output/raw.h"
#include "cmd.h"
#include "common.h"

static void usage(FILE *f)
{
  fputs(
      "usage: luaspy diff BEFORE AFTER [-o OUTPUT] [-t TEXT]\n"
      "\n"
      "Compare two recordings in a differential flame graph: what got slower\n"
      "or faster between them, e.g. before and after a deploy. BEFORE and\n"
      "AFTER are folded stacks, as luaspy record -o FILE.folded and luaspy\n"
      "report write them, or raw recordings (luaspy record -o FILE.luaspy);\n"
      "one of them may be - for standard input.\n"
      "\n"
      "The graph is AFTER's flame graph: frame widths are AFTER's samples.\n"
      "Each frame is coloured by how its share of the samples changed:\n"
      "red it grew, blue it shrank, grey it stayed, the deeper the colour\n"
      "the larger the change. Shares are of each recording's own total, so\n"
      "recordings of different lengths or rates compare. A frame is matched\n"
      "with the frame of the same call path (the same frames from the root)\n"
      "in BEFORE; a call path new in AFTER counts as grown from 0. Hover a\n"
      "frame for its counts before and after and the change in percentage\n"
      "points, e.g. \"before 120, after 310 samples; share 12.00% -> 31.00%,\n"
      "+19.00%\". The deepest colour is the largest change in the graph, or\n"
      "1 point if none is larger, so that noise stays pale.\n"
      "\n"
      "Call paths only in BEFORE have no place in AFTER's layout: notes\n"
      "below the graph list the 10 largest, with their share of BEFORE and\n"
      "their caller, and sum up the rest.\n"
      "\n"
      "options:\n"
      "  -o, --output FILE  write the SVG to FILE (default: standard output)\n"
      "  -t, --title TEXT   title of the graph (default \"Differential Flame "
      "Graph\")\n"
      "  -h, --help         show this help\n"
      "\n"
      "The graph zooms, searches and shows details as report's flame graphs\n"
      "do (luaspy report --help).\n"
      "\n"
      "example:\n"
      "  luaspy record -p PID -d 30 -o before.folded\n"
      "  (deploy)\n"
      "  luaspy record -p PID -d 30 -o after.folded\n"
      "  luaspy diff before.folded after.folded -o diff.svg\n"
      "\n"
      "exit status: 0 done, 1 bad input or output error, 2 usage error.\n",
      f);
}

/* A recording as a profile, or NULL after a message. */
static struct profile *read_recording(const char *path)
{
  int from_stdin = strcmp(path, "-") == 0;
  FILE *in = from_stdin ? stdin : fopen(path, "r");
  struct profile *p;
  struct raw_info info;

  if (!in) {
    fprintf(stderr, "luaspy: cannot open %s: %s\n", path, strerror(errno));
    return NULL;
  }
  if ((p = profile_new("samples")) &&
      recording_read(p, NULL, in, from_stdin ? "standard input" : path, &info) <
          0) {
    profile_free(p);
    p = NULL;
  }
  raw_info_free(&info);
  if (!from_stdin) fclose(in);
  return p;
}

struct diff_out {
  const struct profile *before, *after;
  const struct render_opts *opts;
};

static int write_diff(FILE *out, void *arg)
{
  const struct diff_out *d = arg;
  return diff_svg_write(d->before, d->after, out, d->opts);
}

int cmd_diff(int argc, char **argv)
{
  static const struct option longopts[] = {
      {"output", required_argument, NULL, 'o'},
      {"title", required_argument, NULL, 't'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *output = "-";
  struct render_opts opts = {.title = "Differential Flame Graph"};
  struct profile *before = NULL, *after = NULL;
  char *subtitle = NULL;
  int c, ok;

  opterr = 0;
  while ((c = getopt_long(argc, argv, ":o:t:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'o': output = optarg; break;
    case 't': opts.title = optarg; break;
    case 'h': usage(stdout); return 0;
    default: return option_error("diff", c, argv);
    }
  }
  if (argc - optind < 2)
    return usage_error("diff", "needs two recordings, BEFORE and AFTER");
  if (argc - optind > 2)
    return usage_error("diff", "two recordings only, not also '%s'",
                       argv[optind + 2]);
  if (!strcmp(argv[optind], "-") && !strcmp(argv[optind + 1], "-"))
    return usage_error("diff",
                       "only one of BEFORE and AFTER can be standard input");
  if (cli_parse_only) return 0;

  ok = (before = read_recording(argv[optind])) &&
       (after = read_recording(argv[optind + 1]));
  if (ok && asprintf(&subtitle,
                     "%s -> %s: red grew, blue shrank (share of samples); "
                     "widths are AFTER's",
                     argv[optind], argv[optind + 1]) < 0) {
    fputs("luaspy: out of memory\n", stderr);
    subtitle = NULL;
    ok = 0;
  }
  if (ok) {
    struct diff_out d = {before, after, &opts};
    opts.subtitle = subtitle;
    ok = output_file(output, write_diff, &d) == 0;
  }
  free(subtitle);
  profile_free(before);
  profile_free(after);
  return ok ? 0 : 1;
}
