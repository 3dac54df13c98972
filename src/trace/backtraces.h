/*
** Distinct backtraces of traced events, counted per class (a syscall
** number, say): each kept once with its frames, innermost first, to list
** the top few of a class in text and JSON. Used by `syscalls` and by the
** mmap/mprotect watcher of `jit`.
*/
#ifndef LUASPY_BACKTRACES_H
#define LUASPY_BACKTRACES_H

#include <stdint.h>
#include <stdio.h>

#include "../output/json.h"
#include "stacks.h"

struct bt {
  long cls;
  uint64_t count, ns;
  struct tframe *frames; /* innermost first */
  size_t n;
};

struct btable {
  struct strmap *keys; /* class and frame strings */
  struct bt *bts;
  size_t nbts, cap;
  struct tkeybuf kb;
};

/* 0, or -1 (no memory). */
int btable_init(struct btable *t);
void btable_free(struct btable *t);
/* The backtrace of class cls with frames[0..n) (root first, as
 * ttarget_stack names them), made if new. Returns its index, or -1 (no
 * memory). The caller adds to its count and ns. */
long btable_add(struct btable *t, long cls, const struct tframe *frames,
                size_t n);
/* The heaviest backtraces of class cls by count, up to max: indexes into
 * t->bts, heaviest first. Returns how many. */
size_t btable_top(const struct btable *t, long cls, size_t *out, size_t max);
/* The innermost Lua frame with a line, or NULL. */
const struct tframe *bt_lua_site(const struct bt *b);
/* Its frames, up to depth, one a line after indent; then how many more. */
void bt_print(FILE *f, const struct bt *b, const char *indent, size_t depth);
/* Its frames as a JSON array of {kind, name, chunk, line, frame}. */
void bt_json_frames(struct json *j, const struct bt *b);

#endif
