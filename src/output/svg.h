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

#endif
