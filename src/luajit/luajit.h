/*
** LuaJIT VMs inside a target process: discovery, stack walking and
** symbolization. No debug info needed: the layout is recognised from
** memory and validated with pointer cross-checks.
*/
#ifndef LUASPY_LUAJIT_H
#define LUASPY_LUAJIT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../proc/elfsyms.h"
#include "../proc/proc.h"
#include "layout.h"

/* A field of a struct copied out of the target, at a layout offset
 * (unaligned-safe). */
static inline uint64_t lj_get_u64(const void *buf, uint32_t off)
{
  uint64_t v;
  memcpy(&v, (const char *)buf + off, 8);
  return v;
}

static inline uint32_t lj_get_u32(const void *buf, uint32_t off)
{
  uint32_t v;
  memcpy(&v, (const char *)buf + off, 4);
  return v;
}

static inline uint16_t lj_get_u16(const void *buf, uint32_t off)
{
  uint16_t v;
  memcpy(&v, (const char *)buf + off, 2);
  return v;
}

/* One Lua VM (one lua_newstate). */
struct lj_vm {
  uint64_t GG;       /* GG_State, which starts with the main lua_State */
  uint64_t G;        /* global_State */
  uint64_t J;        /* jit_State */
  uint64_t dispatch; /* dispatch table: what r14 holds in the VM */
  uint64_t mainL;
  /* The VM's assembler code, where rdx/rbx hold BASE/PC: from the
   * object's unwind tables, else the whole object's text. */
  uint64_t code_lo, code_hi;
  const struct lj_layout *lay;
};

/* The object (executable or libluajit) that holds VM code. */
struct lj_object {
  char path[PROC_PATH_MAX];
  uint64_t text_lo, text_hi; /* its executable mappings */
  enum lj_flavor flavor;     /* from exported symbols */
};

#define LJ_MAX_OBJECTS 4

struct lj_target {
  pid_t pid;
  struct lj_object objs[LJ_MAX_OBJECTS];
  int nobjs;
  struct lj_vm *vms;
  size_t nvms;
  uint64_t scanned_bytes; /* how much memory discovery looked at */
};

/* Finds every VM of pid. Returns 0 with at least one VM, or -1 with a
 * one-line reason in why. */
int lj_discover(pid_t pid, struct lj_target *t, char *why, size_t len);
void lj_target_free(struct lj_target *t);

/* Known layouts, by flavor. */
const struct lj_layout *lj_layout_for(enum lj_flavor flavor);
const char *lj_flavor_name(enum lj_flavor flavor);
/* Is addr inside vm's interpreter (registers hold BASE, PC, DISPATCH)? */
int lj_in_vm_code(const struct lj_vm *vm, uint64_t addr);

/* -- Raw stack walk (no names yet: cheap, done while the target may be
 *    stopped; names come afterwards from lj_symbolize). -- */

enum lj_rawkind {
  LJ_RAW_FUNC,  /* a function frame: fn is a GCfunc, pc its current PC */
  LJ_RAW_TRACE, /* compiled code: aux is the trace number, pc a PC in it */
  LJ_RAW_VM,    /* VM state leaf: aux is the vmstate */
  LJ_RAW_NATIVE /* native code address (C/FFI leaf): pc holds it */
};

struct lj_rawframe {
  uint8_t kind;  /* enum lj_rawkind */
  uint8_t ftype; /* link type of the frame (LJ_FRAME_*) */
  int32_t aux;
  uint64_t fn;     /* GCfunc */
  uint64_t pc;     /* bytecode PC (next instruction), 0 if unknown */
  uint64_t callfn; /* caller GCfunc (for naming), 0 if not Lua */
  uint64_t callpc; /* caller's PC at the call */
  uint64_t L;      /* lua_State that owns the frame */
};

/* Why a walk stopped early. */
enum lj_partial {
  LJ_OK = 0,
  LJ_PARTIAL_READ,    /* target memory unreadable */
  LJ_PARTIAL_BADLINK, /* a frame link points outside the stack */
  LJ_PARTIAL_BADFUNC, /* a frame slot holds no function */
  LJ_PARTIAL_DEPTH,   /* more frames than the caller's buffer */
  LJ_PARTIAL_LOOP,    /* coroutine chain loops */
};
const char *lj_partial_name(enum lj_partial why);

/* Where the top frame of the running coroutine is. */
struct lj_top {
  int from_regs;     /* base/pc come from registers (interpreter) */
  uint64_t base, pc; /* BASE and PC of the top Lua frame */
  uint64_t rip;      /* where the thread runs, 0 if unknown */
};

struct lj_walk {
  int32_t vmstate;
  uint64_t curL;
  struct lj_rawframe *frames; /* top-first */
  size_t n, max;
  enum lj_partial partial;
};

/* Walks the running coroutine of vm and the chain that resumed it.
 * regs: the registers of the thread running this VM, or NULL. */
void lj_walk_vm(pid_t pid, const struct lj_vm *vm, const struct proc_regs *regs,
                struct lj_walk *w);

/* The thread among st that runs vm in the interpreter, or NULL. */
const struct proc_regs *lj_vm_thread(const struct lj_vm *vm,
                                     const struct proc_stop *st);

/* -- Symbolization -- */

enum lj_framekind {
  LJ_KIND_LUA,
  LJ_KIND_TRACE,
  LJ_KIND_C,
  LJ_KIND_BUILTIN,
  LJ_KIND_VM
};
const char *lj_kind_name(enum lj_framekind k);

#define LJ_NAME_MAX 256
#define LJ_CHUNK_MAX 256

struct lj_frame {
  enum lj_framekind kind;
  char name[LJ_NAME_MAX];   /* function name, trace#N, symbol, ... */
  char chunk[LJ_CHUNK_MAX]; /* "" when none */
  int line;                 /* -1 when unknown */
  const char *what;         /* global/local/method/field/upvalue/... */
  uint64_t L;
};

struct lj_symbolizer; /* caches per target: protos, strings, ffid names */

struct lj_symbolizer *lj_symbolizer_new(pid_t pid, const struct lj_target *t);
void lj_symbolizer_free(struct lj_symbolizer *s);
/* line_mode: 1 = current line, 0 = line where the function is defined. */
void lj_symbolize(struct lj_symbolizer *s, const struct lj_vm *vm,
                  const struct lj_rawframe *rf, int line_mode,
                  struct lj_frame *out);
/* Chunk and line of the instruction at pc (pointing at it, as trace start
 * PCs and penalty PCs do) in the prototype at pt. 0, or -1 if pt is not
 * a readable prototype; a pc outside it gives the first line. */
int lj_proto_where(struct lj_symbolizer *s, const struct lj_vm *vm, uint64_t pt,
                   uint64_t pc, char *chunk, size_t len, int *line);
/* Formats a frame per the naming contract into buf. */
void lj_frame_format(const struct lj_frame *f, char *buf, size_t len);

#endif
