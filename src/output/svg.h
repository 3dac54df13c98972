/*
** Interactive SVG flame graph: the root at the bottom, one rectangle per
** call tree node, as wide as its share of the total. The inline script
** shows details on hover, zooms on click and searches by regular
** expression (the Search button, Ctrl-F or '/'); without the script, the
** picture and its tooltips still work.
*/
#ifndef LUASPY_SVG_H
#define LUASPY_SVG_H

#include <stdio.h>

#include "profile.h"

/* Same contract as folded_write; opts may be NULL. */
int svg_write(const struct profile *p, FILE *out,
              const struct render_opts *opts);

/* A variant of the flame graph (luaspy diff's differential colours).
 * frame() is called for each frame drawn, in profile_walk order after
 * "all", the graph's root at depth 0 (a stack's root frame is at depth
 * 1): it sets the fill colour and writes the hover text that follows the
 * name in parentheses, plain text, into tip. The notes are lines of
 * plain text below the graph. */
struct svg_paint {
  void (*frame)(const char *name, size_t depth, uint64_t total, int rgb[3],
                char *tip, size_t tip_size, void *arg);
  void *arg;
  const char *const *notes;
  size_t nnotes;
};

/* svg_write, painted by paint (NULL: colours by frame kind). */
int svg_render(const struct profile *p, FILE *out,
               const struct render_opts *opts, const struct svg_paint *paint);

/* Writes at most max characters of s as XML text or attribute value:
 * markup characters escaped, bad UTF-8 and control characters as
 * U+FFFD. For other writers of XML (the timeline). */
void svg_put_xml(FILE *out, const char *s, size_t max);

#endif
