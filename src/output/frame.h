/*
** The parts of a frame string of the naming contract (docs/dump-format.md):
** Lua functions and traces are "NAME (CHUNK:LINE)" or "NAME (CHUNK)";
** "C:SYMBOL", "builtin:NAME" and VM states such as "[GC]" have a name
** only. Writers whose formats keep file and line apart (pprof,
** speedscope) take them from here.
*/
#ifndef LUASPY_FRAME_H
#define LUASPY_FRAME_H

#include <stddef.h>

struct frame_parts {
  const char *name, *chunk;   /* point into the frame string, not ended */
  size_t name_len, chunk_len; /* chunk_len 0: no chunk */
  long line;                  /* 0: unknown */
};

/* Splits s; a string of no known shape is all name. */
void frame_parse(const char *s, struct frame_parts *fp);

#endif
