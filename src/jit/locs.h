/*
** Lua locations ("chunk:line") of bytecode addresses, named once while
** their prototypes are alive and kept by index: traces, penalty slots
** and syscall events all refer to code that may be collected later.
*/
#ifndef LUASPY_LOCS_H
#define LUASPY_LOCS_H

#include <stdint.h>

#include "../luajit/luajit.h"

#define JIT_LOC_MAX (LJ_CHUNK_MAX + 16)

struct jit_loc {
  uint64_t pt, pc; /* pt 0: no prototype holds pc (any more) */
  uint64_t stamp;  /* of pt's header: tells a reused address apart */
  int vm;
  char where[JIT_LOC_MAX]; /* "chunk:line", or "0x... (code gone)" */
};

struct jit_locs {
  pid_t pid;
  const struct lj_target *t;
  struct lj_symbolizer *sym;
  struct jit_loc *v;
  size_t n, cap;
};

int jit_locs_init(struct jit_locs *l, pid_t pid, const struct lj_target *t);
void jit_locs_free(struct jit_locs *l);
/* Index of the location of pc in prototype pt (0: find the prototype
 * from pc) of VM number vm; -1 when out of memory. */
int jit_loc(struct jit_locs *l, int vm, uint64_t pt, uint64_t pc);
const char *jit_loc_name(const struct jit_locs *l, int idx);

#endif
