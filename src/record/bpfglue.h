/*
** What every luaspy BPF frontend (record, offcpu, syscalls, jit) needs
** around libbpf: quiet libbpf messages, and the VMs of a target handed to
** the in-kernel Lua walker (src/bpf/luawalk.bpf.h).
*/
#ifndef LUASPY_BPFGLUE_H
#define LUASPY_BPFGLUE_H

#include "../luajit/luajit.h"

/* LUASPY_BPF_DEBUG: 0 (default) quiet, 1 libbpf warnings (the verifier's
 * log of a rejected program), 2 also debug messages and statistics. */
int bpfglue_debug_level(void);
/* Routes libbpf's messages through that setting. */
void bpfglue_quiet_libbpf(void);

/* Why loading or attaching BPF failed with err, as a hint to append to
 * the error line: permissions, or the verifier. */
const char *bpfglue_hint(int err);

/* Writes t's LuaJIT objects and VMs into the walker's procs and vms maps.
 * Returns 0, or -1 with errno set. */
int bpfglue_push_target(int procs_fd, int vms_fd, const struct lj_target *t);

#endif
