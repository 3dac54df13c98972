/*
** Writes into the target (process_vm_writev), for `jit --write`.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "poke.h"

#define HOTCOUNT_SIZE 64
#define SNAPS_MAX 65535 /* nsnap is 16 bits */
#define POKE_IOV 1024   /* remote pieces per process_vm_writev */

int jit_poke(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
  struct iovec l = {(void *)buf, len}, r = {(void *)addr, len};
  ssize_t n = process_vm_writev(pid, &l, 1, &r, 1, 0);
  if (n == (ssize_t)len) return 0;
  if (n >= 0) errno = EFAULT;
  return -1;
}

/* Zeroes one byte at each of n remote addresses, POKE_IOV per call. */
static int poke_zeros(pid_t pid, const uint64_t *addr, size_t n)
{
  static const char zeros[POKE_IOV];
  struct iovec l = {(void *)zeros, 0}, r[POKE_IOV];
  for (size_t i = 0; i < n; i += POKE_IOV) {
    size_t k = n - i < POKE_IOV ? n - i : POKE_IOV;
    for (size_t j = 0; j < k; j++)
      r[j] = (struct iovec){(void *)addr[i + j], 1};
    l.iov_len = k;
    if (process_vm_writev(pid, &l, 1, r, k, 0) != (ssize_t)k) return -1;
  }
  return 0;
}

static void decay_exits(struct jit_watch *w, struct jit_vmwatch *vw,
                        const struct jit_trace *tr, struct jit_decay_stats *ds)
{
  const struct lj_layout *lay = vw->vm->lay;
  uint64_t traces, now, *addr;
  unsigned char *snaps;
  size_t n = 0, nsnap = tr->h.nsnap;
  if (!nsnap || nsnap > SNAPS_MAX) return;
  /* Only while the trace is still in J->trace[]: a trace leaves it before
   * the GC may free it, so its snapshots are still ours to write. */
  if (proc_read_u64(w->pid, vw->vm->J + lay->J_trace, &traces) ||
      proc_read_u64(w->pid, traces + 8ull * tr->h.traceno, &now) ||
      now != tr->T)
    return;
  snaps = malloc(nsnap * lay->snap_size);
  addr = malloc(nsnap * sizeof(*addr));
  if (snaps && addr &&
      !proc_read(w->pid, tr->h.snap, snaps, nsnap * lay->snap_size)) {
    for (size_t i = 0; i < nsnap; i++) {
      uint8_t c = snaps[i * lay->snap_size + lay->snap_count];
      if (c && c != JIT_SNAPCOUNT_DONE)
        addr[n++] = tr->h.snap + i * lay->snap_size + lay->snap_count;
    }
    if (n && poke_zeros(w->pid, addr, n))
      ds->failed++;
    else
      ds->exits += n;
  }
  free(snaps);
  free(addr);
}

void jit_decay(struct jit_watch *w, struct jit_vmwatch *vw,
               struct jit_decay_stats *ds)
{
  const struct lj_layout *lay = vw->vm->lay;
  uint16_t hot[HOTCOUNT_SIZE];
  uint32_t hotloop = vw->cur.param[6];
  uint16_t start = hotloop ? (uint16_t)(hotloop * 2 - 1) : 0;
  ds->rounds++;
  /* hotloop 0 is legal (compile at once): the counters stay as they are */
  if (start) {
    for (int i = 0; i < HOTCOUNT_SIZE; i++) hot[i] = start;
    if (jit_poke(w->pid, vw->vm->GG + lay->gg_hotcount, hot, sizeof(hot)))
      ds->failed++;
    else
      ds->hot += HOTCOUNT_SIZE;
  }
  for (uint32_t i = 1; i < vw->nslot; i++)
    if (vw->slot[i] >= 0) decay_exits(w, vw, &vw->traces[vw->slot[i]], ds);
}

/*
** Why clearing JIT_F_ON from outside is safe and sufficient:
** - jit.off() (luaJIT_setmode) clears the flag and calls lj_dispatch_update,
**   which swaps the hot-counting handlers (FORL, LOOP, FUNCF...) for the
**   non-counting ones. We cannot call it, but LuaJIT calls it itself on
**   every change of J->state: when the next hot loop starts a recording,
**   and again when that recording ends. It recomputes the mode from
**   J->flags each time, so after at most one more trace attempt the VM is
**   in exactly the state jit.off() leaves it in. g->dispatchmode shows it.
** - Nothing else caches the flag: trace_start does not look at it (hence
**   the one attempt), lj_dispatch_call and the jit.status() reader do.
** - Only the low byte is written; besides JIT_F_ON it holds CPU feature
**   bits that are set once at startup. The rest of J->flags (optimization
**   flags, changed by jit.opt.start) is not touched.
** - As with jit.off(), compiled traces keep running and their side exits
**   may still be compiled; flushing them needs the VM's own thread.
*/
int jit_off(pid_t pid, const struct lj_vm *vm, char *why, size_t len)
{
  uint8_t low;
  uint64_t a = vm->J + vm->lay->J_flags; /* little-endian: bit 0 is here */
  if (proc_read(pid, a, &low, 1)) {
    snprintf(why, len, "cannot read J->flags of VM 0x%llx",
             (unsigned long long)vm->G);
    return -1;
  }
  if (!(low & 1)) return 0;
  low &= (uint8_t)~1u;
  if (jit_poke(pid, a, &low, 1)) {
    snprintf(why, len, "cannot write J->flags of VM 0x%llx: %s",
             (unsigned long long)vm->G, strerror(errno));
    return -1;
  }
  return 0;
}
