/*
** Stacks added up by weight, to print the heaviest few: a summary's
** "who waited here the longest".
*/
#ifndef LUASPY_TOPSTACKS_H
#define LUASPY_TOPSTACKS_H

#include <stdint.h>
#include <stdio.h>

#include "stacks.h"

struct topstacks;

struct topstacks *topstacks_new(void);
void topstacks_free(struct topstacks *t);
/* Adds frames[0..n) (root first) with weight ns. Returns 0 or -1. */
int topstacks_add(struct topstacks *t, const struct tframe *frames, size_t n,
                  uint64_t ns);
/* Prints the top heaviest, innermost frame first, up to depth frames
 * each, indented. */
void topstacks_print(const struct topstacks *t, FILE *f, int top, int depth);

#endif
