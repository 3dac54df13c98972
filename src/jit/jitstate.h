/*
** One look at the JIT compiler of a LuaJIT VM: jit_State's flags and
** parameters, its machine-code areas, the trace table and the penalty
** cache, read from outside with a few bounded copies.
*/
#ifndef LUASPY_JITSTATE_H
#define LUASPY_JITSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "../luajit/luajit.h"

#define JIT_NPARAM 15        /* JIT_P__MAX in both 2.1 builds */
#define JIT_PENALTY_SLOTS 64 /* PENALTY_SLOTS */
#define JIT_TRACES_MAX 65535 /* trace numbers are 16 bits */
#define JIT_SNAPCOUNT_DONE 255

struct jit_penalty {
  uint64_t pc; /* the bytecode a root trace started at, 0 if free */
  uint16_t val, reason;
};

struct jit_state {
  uint32_t flags;
  uint32_t state; /* J->state: 0 idle, else recording or assembling */
  uint8_t dispatchmode;
  uint32_t param[JIT_NPARAM];
  uint64_t mcarea, mctop, mcbot, szmcarea, szallmcarea;
  uint32_t sizetrace;
  uint64_t *trace; /* sizetrace GCtrace pointers; J itself while recording */
  uint32_t trace_cap;
  struct jit_penalty penalty[JIT_PENALTY_SLOTS];
  uint32_t penaltyslot;
  uint64_t errinfo; /* TValue: detail of the last abort */
};

/* JIT_F_ON, and DISPMODE_JIT: the dispatch table counts hot code. */
#define JIT_FLAG_ON 0x1u
#define JIT_DISPMODE_JIT 0x10u

/* The GCtrace fields luaspy uses. */
struct jit_trace_hdr {
  uint64_t startpt, startpc, mcode, snap;
  uint32_t szmcode;
  uint16_t traceno, root, link, nsnap;
  uint8_t linktype;
};

/* Can this VM's JIT state be read at all (a known layout)? */
int jit_supported(const struct lj_vm *vm);
/* Reads the VM's state into st (st->trace is grown as needed; free it with
 * jit_state_free). 0, or -1 if the target's memory could not be read. */
int jit_state_read(pid_t pid, const struct lj_vm *vm, struct jit_state *st);
void jit_state_free(struct jit_state *st);
int jit_trace_read(pid_t pid, const struct lj_vm *vm, uint64_t T,
                   struct jit_trace_hdr *h);
/* Machine-code areas in the chain from J->mcarea (bounded walk). */
uint32_t jit_mcode_areas(pid_t pid, const struct jit_state *st);
/* Number of alive traces. */
uint32_t jit_alive(const struct lj_vm *vm, const struct jit_state *st);
/* g->vmstate, or INT32_MIN if unreadable. */
int32_t jit_vmstate(pid_t pid, const struct lj_vm *vm);

/* LuaJIT's own names: parameters (JIT_PARAMDEF), link types
 * (LJ_TRLINK_*), abort reasons (lj_traceerr.h), bytecodes (lj_bc.h). */
const char *jit_param_name(int i);
const char *jit_linktype_name(unsigned lt);
const char *jit_abort_reason(const struct lj_layout *lay, unsigned reason);
/* The reason as LuaJIT words it, with its %d/%s filled from detail when
 * known (J->errinfo is kept for the last abort only), else "?". */
const char *jit_abort_text(const struct lj_layout *lay, unsigned reason,
                           const char *detail, char *buf, size_t len);
const char *jit_bc_name(const struct lj_layout *lay, unsigned op);
/* The reason numbers that carry a detail in J->errinfo. */
int jit_reason_is_nyibc(const struct lj_layout *lay, unsigned reason);
int jit_reason_is_nyiffu(const struct lj_layout *lay, unsigned reason);

/* The GCproto holding bytecode address pc (penalty slots keep only the
 * pc): a bounded backward scan for a header that fits. 0 if none. */
uint64_t jit_proto_of_pc(pid_t pid, const struct lj_layout *lay, uint64_t pc);
/* Is the hot bytecode at pc of prototype pt blacklisted (patched to its
 * I* variant)? 1 yes, 0 no, -1 unknown: unreadable, or pt is gone (the
 * penalty cache outlives the code it names). */
int jit_pc_blacklisted(pid_t pid, const struct lj_layout *lay, uint64_t pt,
                       uint64_t pc);

#endif
