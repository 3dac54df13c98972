/*
** A timeline: samples over time, in buckets of a width chosen for the
** recording's length, each bucket a bar of the top Lua functions stacked
** (by their samples over the whole recording) and the rest as "other",
** so that a spike in load can be tied to the code that ran in it.
**
** A sample counts for the Lua function running: the innermost frame of
** the naming contract's "NAME (CHUNK:LINE)" shape, so the C functions,
** builtins, traces and [kernel] time above a Lua function are its own;
** a stack without one counts under its leaf ("[GC]", "[not running
** Lua]").
**
** Memory does not grow with the samples: weights add up in at most
** TIMELINE_FINE buckets per function, whose width doubles (merging pairs)
** whenever a sample comes past the last.
*/
#ifndef LUASPY_TIMELINE_H
#define LUASPY_TIMELINE_H

#include <stdint.h>
#include <stdio.h>

#include "profile.h"

#define TIMELINE_FINE 2048 /* buckets kept while adding */
#define TIMELINE_TOP 10    /* functions drawn; the rest is "other" */

struct timeline;

/* NULL after a message. */
struct timeline *timeline_new(void);
void timeline_free(struct timeline *tl);

/* Adds weight at time_ns (since the start) for stack frames[0..n), root
 * first. 0, or -1 after a message (out of memory). */
int timeline_add(struct timeline *tl, uint64_t time_ns,
                 const char *const *frames, size_t n, uint64_t weight);
/* The recording lasted this long: the time axis reaches it. */
int timeline_span(struct timeline *tl, uint64_t duration_ns);

/* Writes the timeline as a self-contained HTML page (an inline SVG, a
 * line of details on hover) or, html 0, as a plain SVG whose bars carry
 * their details in tooltips. o: title and subtitle (may be NULL). Same
 * contract as folded_write. */
int timeline_write(const struct timeline *tl, FILE *out, int html,
                   const struct render_opts *o);

/* Whether an output is a timeline: *html is set to 1 (HTML), 0 (SVG) or
 * -1 (not a timeline). A FILE ending in .html, or format "html", is one;
 * with flag (--timeline) FILE must end in .html or .svg (or format be
 * html or svg); "-" is then HTML. Returns 0, or -1 after a message
 * (a usage error). */
int timeline_output(const char *path, const char *format, int flag, int *html);

#endif
