/*
** The only writes luaspy makes into a target, behind `jit --write`.
**
** Decay resets the counters LuaJIT uses to decide what is hot, so that
** code must be hot within one period to be compiled (the idea of the
** RaptorJIT patch that resets them every second). Both counter kinds are
** decremented/incremented by the VM without locks; a write that races
** the VM's own update loses one count, which is harmless.
*/
#ifndef LUASPY_POKE_H
#define LUASPY_POKE_H

#include "watch.h"

struct jit_decay_stats {
  uint64_t rounds; /* decays done */
  uint64_t hot;    /* hot counters written */
  uint64_t exits;  /* side-exit counters set back to 0 */
  uint64_t failed; /* writes that failed */
};

/* Writes len bytes at addr in the target. 0 or -1 (errno set). */
int jit_poke(pid_t pid, uint64_t addr, const void *buf, size_t len);

/* Resets vw's hot counters (GG hotcount[64] to hotloop*2-1, as LuaJIT's
 * lj_dispatch_init_hotcount does) and the side-exit counters of its
 * alive traces (snapshot counts below 255 to 0). */
void jit_decay(struct jit_watch *w, struct jit_vmwatch *vw,
               struct jit_decay_stats *ds);

/* Clears JIT_F_ON, as jit.off() does before calling lj_dispatch_update;
 * see the comment in poke.c for why that is enough. 0 or -1 with a
 * reason. */
int jit_off(pid_t pid, const struct lj_vm *vm, char *why, size_t len);

#endif
