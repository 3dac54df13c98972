/*
** speedscope's file format
*(https://www.speedscope.app/file-format-schema.json):
** one "sampled" profile whose samples are the distinct stacks, root
** first, each weighted by its count. Lua frames "NAME (CHUNK:LINE)" give
** the frame its name, file and line, other frames their name only.
*/
#ifndef LUASPY_SPEEDSCOPE_H
#define LUASPY_SPEEDSCOPE_H

#include <stdio.h>

#include "profile.h"

/* Same contract as folded_write; opts may be NULL. opts->title names the
 * profile; opts->sample_hz, when known for a "samples" profile, turns
 * the weights into nanoseconds of CPU time. */
int speedscope_write(const struct profile *p, FILE *out,
                     const struct render_opts *opts);

#endif
