/*
** Folded stacks: one line "root;...;leaf COUNT" per distinct stack, the
** format of flamegraph.pl's stackcollapse scripts, read by flamegraph.pl,
** inferno and speedscope. Reading is profile_read_folded (profile.h).
*/
#ifndef LUASPY_FOLDED_H
#define LUASPY_FOLDED_H

#include <stdio.h>

#include "profile.h"

/* Writes p's stacks in profile_foreach_stack order. In frame strings ';'
 * becomes ',' and line breaks become spaces, so every line parses back.
 * Returns -1 when out has an error (ferror, reported by the caller, who
 * also flushes) or after a message. */
int folded_write(const struct profile *p, FILE *out);

#endif
