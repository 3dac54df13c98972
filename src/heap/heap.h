/*
** Snapshots of a LuaJIT VM's garbage-collected heap, read from outside.
**
** Two views of one heap, each bounded and read-only:
**   census  every object on the GC's own lists (gc.root, the string hash
**           chains, open upvalues, the finalizer list): objects and bytes
**           per type, garbage not yet swept included;
**   graph   what a breadth-first walk from the roots (package.loaded, the
**           globals, the registry, the main thread's stack, the VM's own
**           roots) reaches, with the edge each object was first reached
**           by, so that it has one reference path and its bytes are
**           counted once, under that path ("retained" bytes are then a
**           dominator-like approximation).
** The target keeps running unless the caller stopped it: every object
** read is validated (its type byte, sizes, back pointers) and what fails
** is skipped and counted, never followed.
*/
#ifndef LUASPY_HEAP_H
#define LUASPY_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "../luajit/luajit.h"
#include "addrmap.h"
#include "tmem.h"

/* Object types, in the order of their gct byte (gct - 4). */
enum heap_type {
  HEAP_STR,
  HEAP_UPVAL,
  HEAP_THREAD,
  HEAP_PROTO,
  HEAP_FUNC,
  HEAP_TRACE,
  HEAP_CDATA,
  HEAP_TAB,
  HEAP_UDATA,
  HEAP_NTYPES
};
const char *heap_type_name(int type);

/* How an object was first reached: from its parent (heap_obj.key says
 * more) or as a root. */
enum heap_edge {
  HEAP_EDGE_ROOT,   /* key: enum heap_root */
  HEAP_EDGE_ARRAY,  /* a table's array part; key: the index */
  HEAP_EDGE_HASH,   /* a table's hash part; key: the key's raw TValue */
  HEAP_EDGE_KEY,    /* the object is a key of the table */
  HEAP_EDGE_META,   /* metatable of a table or userdata */
  HEAP_EDGE_ENV,    /* environment of a function, thread or userdata */
  HEAP_EDGE_UPVAL,  /* upvalue of a Lua function; key: its number */
  HEAP_EDGE_CUPVAL, /* upvalue of a C function; key: its number */
  HEAP_EDGE_PROTO,  /* prototype of a Lua function */
  HEAP_EDGE_CONST,  /* constant of a prototype; key: its number */
  HEAP_EDGE_STACK,  /* stack slot of a thread; key: the slot */
};

enum heap_root {
  HEAP_ROOT_LOADED,   /* package.loaded (registry._LOADED) */
  HEAP_ROOT_GLOBALS,  /* _G: the main thread's environment */
  HEAP_ROOT_REGISTRY, /* the registry */
  HEAP_ROOT_MAIN,     /* the main thread (its stack) */
  HEAP_ROOT_VM,       /* g->gcroot[key - HEAP_ROOT_VM]: metamethod names,
                       * base metatables, io handles */
};

#define HEAP_NOPARENT UINT32_MAX

/* An object the graph walk reached and may reach others through (tables,
 * functions, prototypes, threads, userdata). Leaves (strings, upvalues,
 * cdata, traces) are counted in their first parent's `held` bytes. The
 * index of an object is its place in breadth-first order: parents come
 * before their children. */
struct heap_obj {
  uint64_t addr;
  uint64_t key;      /* see enum heap_edge */
  uint64_t held;     /* bytes + leaves first reached through it */
  uint64_t retained; /* held + everything first reached through it */
  uint32_t bytes;    /* own size, as lj_gc.c counts it (< 4 GiB: the
                      * biggest, a table, has at most 2^27 array slots
                      * and 2^26 nodes) */
  uint32_t parent;   /* index, HEAP_NOPARENT for a root */
  uint32_t entries;  /* tables: non-nil values; threads: stack slots */
  uint8_t type;      /* enum heap_type, or HEAP_GONE */
  uint8_t edge;      /* enum heap_edge */
};

/* heap_obj.type of an object that was gone when walked (it failed
 * validation: freed, reused): no bytes, no children, not in `seen`. */
#define HEAP_GONE HEAP_NTYPES

struct heap_tally {
  uint64_t objects[HEAP_NTYPES], bytes[HEAP_NTYPES];
  uint64_t skipped;       /* objects that failed validation */
  const char *incomplete; /* why the walk stopped early, NULL if not */
};

struct heap_limits {
  uint64_t max_objects; /* per walk (census and graph each) */
  uint64_t max_entries; /* per table, thread stack, prototype */
};

struct heap_snap {
  const struct lj_vm *vm;
  uint64_t gc_total;        /* g->gc.total: what the GC accounts */
  struct heap_tally census; /* everything on the GC lists */
  struct heap_tally graph;  /* everything reached from the roots */
  uint64_t entries_capped;  /* tables read only up to max_entries */
  struct heap_obj *objs;
  size_t nobjs, capobjs;
  struct addrmap seen; /* address -> index in objs, or HEAP_LEAF */
  /* If the caller sets it: the array and hash parts of every table
   * reached -> the table's index (luaspy leaks: blocks alive). */
  struct addrmap *parts;
};

#define HEAP_LEAF ADDRMAP_MARK

/* Validated header of one GC object. */
struct heap_hdr {
  uint8_t gct, marked;
  uint64_t nextgc;
  uint64_t size;          /* bytes it holds, as lj_gc.c frees them */
  unsigned char raw[128]; /* its header, layout->*_size bytes */
};

#define HEAP_CTYPE_MEMO 256 /* C types whose size a walk remembers */

struct heap_ctype_size {
  uint32_t id1; /* C type id + 1, 0 = empty */
  uint32_t size;
};

/* Per-walk context: the target, its layout, the cdata type table. */
struct heap_ctx {
  struct tmem *mem;
  const struct lj_vm *vm;
  const struct lj_layout *lay;
  uint64_t ctype_tab; /* CTState.tab, 0 without FFI */
  struct heap_limits lim;
  /* Payload sizes of C types by id (direct-mapped): millions of cdata
   * have a handful of types, each size read once. */
  struct heap_ctype_size ctype_memo[HEAP_CTYPE_MEMO];
};

void heap_ctx_init(struct heap_ctx *c, struct tmem *mem, const struct lj_vm *vm,
                   const struct heap_limits *lim);
/* Reads and validates the object at addr; gct 0 accepts any type.
 * Returns 0, or -1 when it is unreadable or not a plausible object. */
int heap_read_obj(struct heap_ctx *c, uint64_t addr, int gct,
                  struct heap_hdr *h);
/* Bytes of the header of an object with this gct (0 if none such). */
uint32_t heap_hdr_size(const struct lj_layout *lay, int gct);
/* Validates a header already copied into h->raw (heap_hdr_size bytes). */
int heap_parse_obj(struct heap_ctx *c, uint64_t addr, int gct,
                   struct heap_hdr *h);
/* The same, with the 8 bytes below the object copied at below (where a
 * variable-size cdata keeps its size), or NULL to read them if needed. */
int heap_parse_obj_below(struct heap_ctx *c, uint64_t addr, int gct,
                         struct heap_hdr *h, const unsigned char *below);
uint64_t heap_field64(const struct heap_hdr *h, uint32_t off);
uint32_t heap_field32(const struct heap_hdr *h, uint32_t off);

/* Fills s->census from the GC lists. */
void heap_census(struct heap_ctx *c, struct heap_snap *s);
/* Fills s->graph and s->objs by walking from the roots. -1 when out of
 * memory (after a message). */
int heap_graph(struct heap_ctx *c, struct heap_snap *s);
void heap_snap_free(struct heap_snap *s);

/* Reference paths, e.g. package.loaded["metrics"].lookup. */
void heap_path(struct heap_ctx *c, const struct heap_snap *s, uint32_t idx,
               char *buf, size_t len);
/* The label of the edge that reached objs[idx], one flame graph frame;
 * collapse: entries of big tables show as [*]. */
void heap_label(struct heap_ctx *c, const struct heap_snap *s, uint32_t idx,
                int collapse, char *buf, size_t len);

#endif
