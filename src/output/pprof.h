/*
** pprof's profile format (src/output/proto/profile.proto, gzipped), for
** `go tool pprof` and the tools that read it. Every distinct frame string
** is one Location with one Function; Lua frames "NAME (CHUNK:LINE)" give
** the Function its name, file and line, other frames their name only.
** A distinct stack is one Sample, its locations leaf first.
*/
#ifndef LUASPY_PPROF_H
#define LUASPY_PPROF_H

#include <stdio.h>

#include "profile.h"

/* Same contract as folded_write; opts may be NULL. opts->sample_hz,
 * when known for a "samples" profile, adds CPU time in nanoseconds as a
 * second sample value. */
int pprof_write(const struct profile *p, FILE *out,
                const struct render_opts *opts);

#endif
