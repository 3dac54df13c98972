/*
** One traced process and the naming of the stacks its events carry
** (struct ls_event of src/bpf/trace.h): kernel frames from kallsyms,
** native frames unwound with CFI (src/unwind/), Lua frames from the
** kernel's walk, named as `dump` names them.
**
** Order, root first: the native frames from the outermost down to the
** innermost one in the VM's assembler code (lj_vm_*, lj_BC_*: where C
** enters Lua), the Lua frames, the native frames called from Lua (a
** lua_CFunction, FFI, libc), then the kernel frames. Without a VM frame
** among the native ones (unwinding stopped early, in JIT-compiled code
** for one), the Lua frames come first.
*/
#ifndef LUASPY_STACKS_H
#define LUASPY_STACKS_H

#include <stdint.h>
#include <sys/types.h>

#include "../bpf/trace.h"
#include "../luajit/luajit.h"
#include "../unwind/unwind.h"
#include "ksyms.h"

#define TFRAME_STR_MAX (LJ_NAME_MAX + LJ_CHUNK_MAX + 32)
#define TSTACK_MAX (LS_MAX_FRAMES + UNWIND_MAX_FRAMES + LS_KSTACK_MAX + 4)

struct tframe {
  const char *kind; /* lj_kind_name's, or "kernel" */
  char name[LJ_NAME_MAX];
  char chunk[LJ_CHUNK_MAX]; /* "" when none */
  int line;                 /* -1 when unknown */
  char str[TFRAME_STR_MAX]; /* the naming contract's string */
};

struct ttarget {
  pid_t pid;
  struct lj_target t;
  struct lj_symbolizer *sym;
  struct unwinder *uw;
  struct ksyms *ks;        /* NULL: kernel frames are named by address */
  struct tframe *frames;   /* TSTACK_MAX, root first, as last named */
  struct lj_rawframe *raw; /* LS_MAX_FRAMES: the Lua frames being named */
};

/* Finds the VMs of pid and prepares naming; kernel_names: also reads
 * /proc/kallsyms, for ttarget_stack's with_kernel (else kernel frames are
 * named by address). Returns 0, or -1 after one error line on stderr. */
int ttarget_open(struct ttarget *tt, pid_t pid, int kernel_names);
/* The same for the VMs t already found (copied; t stays the caller's):
 * discovery again would cost as much (0.1 s in a traffic_server). */
int ttarget_open_found(struct ttarget *tt, const struct lj_target *t,
                       int kernel_names);
void ttarget_close(struct ttarget *tt);

/* Tells the kernel which process and VMs to walk, through the BPF maps
 * luaspy_procs and luaspy_vms (fds). Returns 0 or -1 (errno). */
int ttarget_push(const struct ttarget *tt, int procs_fd, int vms_fd);

/* Where the Lua frames of a sample go among its native frames pcs[0..np)
 * (innermost first, as unwind_stack gives them), by the order above: the
 * innermost frame in a VM's assembler code, or np when there is none.
 * Root first, the stack is pcs[np-1] .. pcs[splice], the Lua frames, then
 * pcs[splice-1] .. pcs[0]. Shared by offcpu, syscalls and record. */
size_t stack_splice(const struct lj_target *t, const uint64_t *pcs, size_t np);

/* Names ev's stacks into tt->frames, root first; with_kernel: its kernel
 * frames too (only those when ev has no user registers, ip 0). Returns
 * how many. */
size_t ttarget_stack(struct ttarget *tt, const struct ls_event *ev,
                     int with_kernel);

/* Names only the Lua frames of s into tt->frames, root first; line_mode:
 * frames show their current line, else where their function starts.
 * Returns how many (at least one: "[unknown]" when none). */
size_t ttarget_lua_stack(struct ttarget *tt, const struct ls_sample *s,
                         int line_mode);

struct strmap;
/* Joins frame strings in stack keys: no frame string holds this control
 * character in practice. */
#define TSTACK_SEP '\x1f'
/* A key buffer reused by tframes_intern (zeroed to start; free buf). */
struct tkeybuf {
  char *buf;
  size_t cap;
};
/* The number of the stack frames[0..n) in keys (its frame strings,
 * after prefix if not NULL, joined), made if new. Returns 1 if new, 0 if
 * known, -1 when out of memory. */
int tframes_intern(struct strmap *keys, const char *prefix,
                   const struct tframe *frames, size_t n, struct tkeybuf *kb,
                   uint32_t *id);

struct json;
/* frames[0..n) as a JSON array of objects {kind, name, chunk, line,
 * frame}, in the order given (the naming contract of docs/). */
void tframes_json(struct json *j, const struct tframe *frames, size_t n);
/* A frame's place as the JSON string "chunk:line", or null without one. */
void tframe_json_site(struct json *j, const struct tframe *site);

#endif
