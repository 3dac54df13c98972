/*
** The processes `luaspy record` profiles: the PIDs it was given (or the
** command it started), with --children their descendants as they come
** and go, and the Lua VMs of each, found again when they change.
*/
#ifndef LUASPY_TARGETS_H
#define LUASPY_TARGETS_H

#include <stddef.h>
#include <stdint.h>

#include "../luajit/luajit.h"
#include "../unwind/unwind.h"
#include "sampler.h"

struct rtarget {
  pid_t pid;
  int given;   /* named by -p or started by us, not a child found later */
  int has_vms; /* t holds VMs and the kernel walks them */
  int gone;    /* exited */
  struct lj_target t;
  struct lj_symbolizer *sym;
  struct unwinder *uw; /* record --native: made on the first sample */
  double syms_at;      /* when sym may read the mappings again */
  double next_try;     /* when to run discovery again (monotonic s) */
  double again;        /* the wait before that */
  int tries;           /* discoveries that found no VM */
  uint64_t novm;       /* samples whose VM the kernel could not tell */
  uint64_t novm_seen;  /* novm at the last discovery */
  char why[256];       /* the last discovery failure */
};

struct rtargets {
  struct rtarget **v;
  size_t n;
  int children;        /* follow descendants of the given PIDs */
  double children_at;  /* when to look for new children */
  struct sampler *smp; /* NULL until targets_attach */
};

/* Adds a given PID (not yet discovered). Returns 0 or -1 (no memory). */
int targets_add(struct rtargets *ts, pid_t pid);
/* Notices exits, new children, and runs the discovery that is due.
 * now: monotonic seconds. */
void targets_update(struct rtargets *ts, double now);
/* From now on the kernel walks the VMs found, in smp. Returns 0 or -1. */
int targets_attach(struct rtargets *ts, struct sampler *smp);
struct rtarget *targets_find(struct rtargets *ts, pid_t pid);
/* True while some target is alive. */
int targets_alive(const struct rtargets *ts);
size_t targets_nvms(const struct rtargets *ts, size_t *nprocs);
void targets_free(struct rtargets *ts);

#endif
