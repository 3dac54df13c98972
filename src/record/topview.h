/*
** What `luaspy top` shows: a header (the targets, the sampling rate, how
** many samples and how many of them could not be unwound whole, what the
** VMs were doing) and the functions that took the most samples; drawn
** over a terminal, or written as plain text, one table after another.
*/
#ifndef LUASPY_TOPVIEW_H
#define LUASPY_TOPVIEW_H

#include <stdint.h>
#include <stdio.h>

#include "ftable.h"
#include "summary.h"

enum top_sort { TOP_BY_SELF, TOP_BY_TOTAL, TOP_BY_NAME };

struct top_view {
  const char *targets; /* "pid 1234", "pids 1,2 and children" */
  int hz;
  int line_mode;
  int cumulative;             /* the window is the whole run so far */
  double secs;                /* the window's length */
  const struct rec_stats *st; /* the window's counts */
  const struct ftable *fns;   /* the window's functions */
  uint64_t samples;           /* the window's stacks, 100% */
  enum top_sort sort;
  int rows; /* functions shown at most */
  /* In a terminal: a picture of height lines of cols characters, with
   * help on the last line. Otherwise (cols 0) plain text, lines as long
   * as they need. */
  int cols, height;
  const char *help;
};

/* Writes the view to f. Returns 0, or -1 after a message when out of
 * memory. */
int top_view_write(FILE *f, const struct top_view *v);

/* "self", "total", "name", and back. top_sort_parse returns 0 or -1. */
const char *top_sort_name(enum top_sort s);
int top_sort_parse(const char *name, enum top_sort *s);

/* Lines of a picture that are not functions. */
#define TOP_VIEW_CHROME 6

#endif
