/*
** The allocation probes of alloc and leaks: a uprobe on every distinct
** allocator of a target's VMs (G->allocf, found without symbols), and
** for leaks a uretprobe for the block returned, attached and detached on
** demand: while attached, every allocator call of the target traps into
** the kernel, so they are attached only for short windows (window.h).
*/
#ifndef LUASPY_ALLOC_PROBE_H
#define LUASPY_ALLOC_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "../bpf/alloc.h"
#include "../proc/proc.h"
#include "../trace/stacks.h"

#define ALLOC_MAX_SITES 8

/* One allocator function: where it is, its probes while attached. */
struct allocsite {
  char path[PROC_PATH_MAX + 32]; /* its object, as opened from here */
  uint64_t addr, offset;         /* in the target, in the object's file */
  struct bpf_link *call, *ret;
};

struct allocprobe {
  struct luaspy_alloc *skel;
  int returns; /* leaks: the returned blocks too */
  pid_t pid;
  uint64_t *uds; /* per VM of the target: its allocator's ud */
  struct allocsite sites[ALLOC_MAX_SITES];
  size_t nsites;
  int attached;
};

/* Loads the probes for tt's VMs and tells the walker about them. Returns
 * 0, or -1 after one error line (cmd names the command). */
int allocprobe_open(struct allocprobe *ap, const struct ttarget *tt,
                    int returns, const char *cmd);
void allocprobe_close(struct allocprobe *ap);

/* Attaches to every allocator. Returns 0, or -1 after one error line. */
int allocprobe_attach(struct allocprobe *ap, const char *cmd);
void allocprobe_detach(struct allocprobe *ap);

int allocprobe_events_fd(const struct allocprobe *ap);
/* Totals of the per-CPU counters (enum ls_acounter). */
void allocprobe_counts(const struct allocprobe *ap, uint64_t c[LS_NACOUNTERS]);
/* The index of the VM whose allocator has this ud, or -1. */
int allocprobe_vm(const struct allocprobe *ap, size_t nvms, uint64_t ud);

#endif
