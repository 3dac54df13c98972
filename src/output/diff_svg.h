/*
** Differential flame graph: AFTER's flame graph, each frame coloured by
** how its share of the samples changed since BEFORE (red grew, blue
** shrank, grey unchanged). Shares are of each profile's own total, so
** recordings of different lengths compare. A frame matches the frame of
** the same call path (the same frames from the root) in BEFORE. Call
** paths only in BEFORE cannot be drawn in AFTER's layout: they are
** listed in notes below the graph, largest first.
*/
#ifndef LUASPY_DIFF_SVG_H
#define LUASPY_DIFF_SVG_H

#include <stdio.h>

#include "profile.h"

/* The strongest colour is the largest change of a share, but at least
 * this many percentage points: noise stays pale. */
#define DIFF_FULL_COLOUR_MIN 1.0

/* At most this many notes name call paths only in BEFORE; one more line
 * sums up the rest. */
#define DIFF_GONE_MAX 10

/* Same contract as svg_write. */
int diff_svg_write(const struct profile *before, const struct profile *after,
                   FILE *out, const struct render_opts *opts);

#endif
