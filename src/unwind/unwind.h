/*
** Native stack unwinding of another process from a copy of its user
** stack, with the .eh_frame CFI of its objects (libdw), as perf does:
** distro binaries are built without frame pointers, so only the unwind
** tables say where each caller's return address lies.
**
** The copy is taken by BPF when the event happens (registers rip, rsp,
** rbp and LS_USTACK_BYTES from rsp); unwinding reads only that copy, so
** it stops where the copy ends, at code without CFI (LuaJIT's JIT-compiled
** traces, say) or at a return address of 0 (the outermost frame).
*/
#ifndef LUASPY_UNWIND_H
#define LUASPY_UNWIND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define UNWIND_MAX_FRAMES 128

struct unwinder;

/* An unwinder for the objects mapped by pid. NULL: out of memory. */
struct unwinder *unwinder_new(pid_t pid);
void unwinder_free(struct unwinder *u);

struct unwind_regs {
  uint64_t ip, sp, bp;
};

/* Unwinds from regs over stack (len bytes copied from regs->sp). Fills
 * pcs innermost first, pcs[0] = regs->ip; callers' entries are return
 * addresses. Returns how many, at least 1 and at most max. */
size_t unwind_stack(struct unwinder *u, const struct unwind_regs *regs,
                    const uint8_t *stack, size_t len, uint64_t *pcs,
                    size_t max);

#endif
