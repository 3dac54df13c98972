/*
** Functions by the time they took: each frame string's self weight
** (stacks that end in it) and total weight (stacks through it, once per
** stack however often it recurses). record's summary and `luaspy top`
** build their tables from it.
*/
#ifndef LUASPY_FTABLE_H
#define LUASPY_FTABLE_H

#include <stddef.h>
#include <stdint.h>

struct fstat {
  char *name;
  uint64_t self, total;
  uint64_t last; /* the stack that last added to total */
};

/* A hash table of fstat by name; zeroed is empty. */
struct ftable {
  struct fstat *v;
  size_t n, cap; /* cap: a power of 2 */
  uint64_t stackno;
};

/* Adds a stack (root first) of weight w to the ftable arg: a
 * profile_stack_fn. Returns 0, or -1 when out of memory. */
int ftable_add(const char *const *frames, size_t n, uint64_t w, void *arg);

/* The entries, as n pointers into t (valid until the next ftable_add or
 * ftable_clear) in an array the caller frees; NULL when out of memory. */
struct fstat **ftable_list(const struct ftable *t, size_t *n);

/* Orders for qsort on ftable_list's array: by self weight, by total
 * weight (both largest first, then by the other, then by name), by name. */
int fstat_by_self(const void *a, const void *b);
int fstat_by_total(const void *a, const void *b);
int fstat_by_name(const void *a, const void *b);

/* Empties t. */
void ftable_clear(struct ftable *t);

#endif
