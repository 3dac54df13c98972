/*
** luaspy heap -o FILE: the snapshot as a flame graph (SVG or folded).
*/
#ifndef LUASPY_HEAP_FLAME_H
#define LUASPY_HEAP_FLAME_H

#include "heap.h"

/* Writes snaps (one per VM, with their contexts) to path in the format
 * its extension names. 0, or -1 after a message. */
int heap_flame(struct heap_ctx *ctxs, const struct heap_snap *snaps,
               size_t nsnaps, const char *path, const char *title);

#endif
