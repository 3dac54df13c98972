/*
** Is the object in a sampled block still the one allocated there?
**
** leaks samples blocks as the allocator hands them out and looks at them
** again at the end. Meanwhile a block may have been freed and handed out
** again, to the next request's copy of the same temporary or, worse, to
** a leaked object of another site of the same size, which would then be
** blamed on the sampled site. What tells them apart, read without
** stopping the target:
**   - the size: the bytes LuaJIT asked for are exact for each object and
**     table part (a freed hash part may now hold a string);
**   - a birth mark, read right after the sample's window closes: the
**     type and what does not change in an object of that type (a
**     string's length and bytes, a function's prototype, a table's first
**     keys, which may grow but not go);
**   - a digest of the contents at each of two heap walks: what a program
**     still uses changes, what it leaked does not.
*/
#ifndef LUASPY_IDENT_H
#define LUASPY_IDENT_H

#include <stdint.h>

#include "../heap/heap.h"

/* Offset of a GC object's type byte, after nextgc and marked (which the
 * GC rewrites as it runs): written once, when the object is made, and by
 * the allocator over a freed block. */
#define IDENT_GCT 9

/* Keys of a table (or hash part) kept at birth. */
#define BIRTH_KEYS 2

struct birth {
  uint8_t known; /* 0: not read yet */
  uint8_t gct;   /* the object's type, 0 for a block that is no object */
  uint64_t id[BIRTH_KEYS];
};

/* Reads the birth mark of the block of bytes at addr, in c's VM. */
void ident_birth(struct heap_ctx *c, uint64_t addr, uint64_t bytes,
                 struct birth *b);

/* What the heap walk found at a sampled block (an object, or the part of
 * table `owner` if that is not 0) checked against its size and birth
 * mark b (read): 0 when it cannot be what was allocated there, else a
 * digest of its contents now. */
uint64_t ident_now(struct heap_ctx *c, uint64_t addr, uint64_t bytes,
                   uint64_t owner, const struct birth *b);

#endif
