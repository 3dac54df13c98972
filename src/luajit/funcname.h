/*
** Deriving a function's name from its caller's bytecode.
*/
#ifndef LUASPY_FUNCNAME_H
#define LUASPY_FUNCNAME_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A local copy of one prototype's colocated debug data. */
struct lj_protoimg {
  const uint32_t *bc; /* bytecode, bc[0] is the FUNC* header */
  uint32_t sizebc;
  uint32_t sizeuv;
  const unsigned char *uvinfo, *uvinfo_end;
  const unsigned char *varinfo, *varinfo_end;
};

/* Copies the string constant idx (proto_kgc(pt, ~idx)) into buf. */
typedef int (*lj_kstr_fn)(void *ud, const struct lj_protoimg *pi, uint32_t idx,
                          char *buf, size_t len);

/* What called the function at caller position pos, and its name in buf:
 * "global", "local", "method", "field", "upvalue", "metamethod", or NULL
 * when LuaJIT itself could not tell. */
const char *lj_funcname(const struct lj_protoimg *pi, uint32_t pos,
                        lj_kstr_fn kstr, void *ud, char *buf, size_t len);

#endif
