/*
** Target memory through a direct-mapped cache of 16 KiB blocks.
**
** What a read costs (process_vm_readv, measured on an x86_64 guest):
** about 2 us a call, plus about 0.35 us for every page of every range,
** however few of its bytes are wanted. Hence tmem_gather's merging of
** ranges that share a page or lie on the next one, and the cache's rule
** for a miss far from the previous read: the GC lists jump to a lone
** object elsewhere (one that filled a hole freed long before) and back,
** and loading a block for it cost a 1 GiB heap's census 3 GiB of reads.
*/
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "../proc/proc.h"
#include "radix.h"
#include "tmem.h"

#define BLOCK_SHIFT 14
#define BLOCK_SIZE (1u << BLOCK_SHIFT)
#define DIRECT_MIN (BLOCK_SIZE / 4) /* larger reads bypass the cache */
/* Misses this close to the previous read load their block. */
#define NEAR (64u << 10)

struct block {
  uint64_t tag;   /* block number + 1; 0 = empty */
  uint32_t valid; /* bytes readable from the block start */
};

#define LJ_ADDR_MAX (1ull << 47) /* user space, x86_64 */

struct tmem {
  pid_t pid;
  unsigned char *scratch; /* merged reads of tmem_gather */
  struct block *slots;
  size_t nslots; /* a power of two */
  /* The blocks' bytes: one allocation, made on first use and dropped
   * by tmem_flush, so that a walk after the census does not keep it.
   * Its pages cost memory once used: small heaps stay small. */
  unsigned char *data;
  uint64_t last; /* address of the previous read */
  uint64_t bytes_read;
};

struct tmem *tmem_new(pid_t pid, size_t cache_bytes)
{
  struct tmem *m = calloc(1, sizeof(*m));
  size_t n = 1;
  if (!m) return NULL;
  while (n * 2 * BLOCK_SIZE <= cache_bytes) n *= 2;
  m->pid = pid;
  m->nslots = n;
  if (!(m->slots = calloc(n, sizeof(*m->slots)))) {
    free(m);
    return NULL;
  }
  return m;
}

void tmem_free(struct tmem *m)
{
  if (!m) return;
  free(m->data);
  free(m->slots);
  free(m->scratch);
  free(m);
}

void tmem_flush(struct tmem *m)
{
  for (size_t i = 0; i < m->nslots; i++) m->slots[i].tag = 0;
  free(m->data);
  m->data = NULL;
}

uint64_t tmem_bytes_read(const struct tmem *m)
{
  return m->bytes_read;
}

static int direct(struct tmem *m, uint64_t addr, void *buf, size_t len)
{
  if (proc_read(m->pid, addr, buf, len)) return -1;
  m->bytes_read += len;
  return 0;
}

static unsigned char *block_data(const struct tmem *m, const struct block *b)
{
  return m->data + (size_t)(b - m->slots) * BLOCK_SIZE;
}

/* Block bno if cached, else NULL. */
static struct block *cached(struct tmem *m, uint64_t bno)
{
  struct block *b = &m->slots[bno & (m->nslots - 1)];
  return b->tag == bno + 1 ? b : NULL;
}

static struct block *load(struct tmem *m, uint64_t bno)
{
  struct block *b = &m->slots[bno & (m->nslots - 1)];
  struct iovec local, remote;
  ssize_t n;
  if (!m->data && !(m->data = malloc(m->nslots * BLOCK_SIZE))) return NULL;
  local.iov_base = block_data(m, b);
  local.iov_len = BLOCK_SIZE;
  remote.iov_base = (void *)(uintptr_t)(bno << BLOCK_SHIFT);
  remote.iov_len = BLOCK_SIZE;
  /* A block may run past the end of a mapping: keep the readable start. */
  n = process_vm_readv(m->pid, &local, 1, &remote, 1, 0);
  b->valid = n > 0 ? (uint32_t)n : 0;
  b->tag = bno + 1;
  m->bytes_read += b->valid;
  return b;
}

/* Whether addr is near the previous read (then it is noted as that). */
static int near_last(struct tmem *m, uint64_t addr)
{
  int near = addr - m->last + NEAR <= 2 * NEAR;
  m->last = addr;
  return near;
}

int tmem_read(struct tmem *m, uint64_t addr, void *buf, size_t len)
{
  unsigned char *out = buf;
  int near = near_last(m, addr);
  if (len >= DIRECT_MIN || addr == 0 || addr + len < addr)
    return direct(m, addr, buf, len);
  while (len) {
    uint64_t bno = addr >> BLOCK_SHIFT;
    uint32_t off = (uint32_t)(addr & (BLOCK_SIZE - 1));
    size_t n = BLOCK_SIZE - off < len ? BLOCK_SIZE - off : len;
    struct block *b = cached(m, bno);
    /* gc.root mostly runs down the heap, but one step in twenty jumps
     * to a lone object far away, and back: a miss far from the previous
     * read is read alone, uncached; once reads stay near, blocks load. */
    if (!b && !near) return direct(m, addr, out, len);
    if (!b) b = load(m, bno);
    if (b && off + n <= b->valid)
      memcpy(out, block_data(m, b) + off, n);
    else if (direct(m, addr, out, n))
      return -1; /* mapping starts mid-block */
    out += n;
    addr += n;
    len -= n;
  }
  return 0;
}

int tmem_read_fresh(struct tmem *m, uint64_t addr, void *buf, size_t len)
{
  return direct(m, addr, buf, len);
}

#define GATHER_MAX 1024 /* IOV_MAX */
#define PAGE_SHIFT 12
#define RUN_MAX (256u << 10)   /* bytes per merged read */
#define SCRATCH_MAX (8u << 20) /* bytes per syscall of merged reads */

/* One range per iovec; a range that faults is lost, the others are read. */
static void gather_each(struct tmem *m, const uint64_t *addrs,
                        const uint32_t *lens, const size_t *offs,
                        const size_t *which, size_t n, void *out,
                        unsigned char *ok)
{
  struct iovec local[GATHER_MAX], remote[GATHER_MAX];
  size_t i = 0;
  while (i < n) {
    size_t k = n - i < GATHER_MAX ? n - i : GATHER_MAX, done = 0;
    ssize_t r;
    for (size_t j = 0; j < k; j++) {
      size_t x = which[i + j];
      local[j].iov_base = (char *)out + offs[x];
      local[j].iov_len = lens[x];
      remote[j].iov_base = (void *)(uintptr_t)addrs[x];
      remote[j].iov_len = lens[x];
    }
    r = process_vm_readv(m->pid, local, k, remote, k, 0);
    /* A transfer stops at the first range that faults: those before it
     * are whole, that one is lost, the rest are tried again. */
    if (r > 0) m->bytes_read += (uint64_t)r;
    while (done < k && r >= (ssize_t)lens[which[i + done]]) {
      r -= lens[which[i + done]];
      ok[which[i + done++]] = 1;
    }
    if (done < k) ok[which[i + done++]] = 0;
    i += done;
  }
}

struct run {
  uint64_t lo, hi;    /* target range */
  size_t first, last; /* its members: order[first..last) */
  size_t at;          /* offset in the scratch buffer */
};

struct gctx {
  struct tmem *m;
  const uint64_t *addrs;
  const uint32_t *lens;
  const size_t *offs;
  unsigned char *out, *ok;
  const size_t *order; /* range indices by address */
  struct run runs[GATHER_MAX];
  size_t nruns, used;
};

/* Reads the collected runs in one syscall, copies their members out. */
static void read_runs(struct gctx *g)
{
  struct iovec local[GATHER_MAX], remote[GATHER_MAX];
  size_t i = 0;
  while (i < g->nruns) {
    size_t k = g->nruns - i;
    ssize_t r;
    for (size_t j = 0; j < k; j++) {
      const struct run *ru = &g->runs[i + j];
      local[j].iov_base = g->m->scratch + ru->at;
      remote[j].iov_base = (void *)(uintptr_t)ru->lo;
      local[j].iov_len = remote[j].iov_len = ru->hi - ru->lo;
    }
    r = process_vm_readv(g->m->pid, local, k, remote, k, 0);
    if (r > 0) g->m->bytes_read += (uint64_t)r;
    /* Whole runs up to the first that faulted... */
    while (i < g->nruns && r >= (ssize_t)(g->runs[i].hi - g->runs[i].lo)) {
      const struct run *ru = &g->runs[i++];
      r -= (ssize_t)(ru->hi - ru->lo);
      for (size_t x = ru->first; x < ru->last; x++) {
        size_t y = g->order[x];
        memcpy(g->out + g->offs[y],
               g->m->scratch + ru->at + (g->addrs[y] - ru->lo), g->lens[y]);
        g->ok[y] = 1;
      }
    }
    /* ...which spans a hole: its members one by one. */
    if (i < g->nruns) {
      const struct run *ru = &g->runs[i++];
      gather_each(g->m, g->addrs, g->lens, g->offs, g->order + ru->first,
                  ru->last - ru->first, g->out, g->ok);
    }
  }
  g->nruns = g->used = 0;
}

/* Whether a range starting at a belongs to the run ending at hi: it
 * starts on the run's last page (no page more to read) or on the next
 * one (the page it costs on its own; one range less). */
static int joins_run(uint64_t a, uint64_t hi)
{
  return a >> PAGE_SHIFT <= ((hi - 1) >> PAGE_SHIFT) + 1;
}

/* The order of the n ranges at addrs by address, or NULL when out of
 * memory. Caller frees. */
static size_t *by_address(const uint64_t *addrs, size_t n)
{
  size_t *order = malloc(n * sizeof(*order) + 1);
  struct kv *v = malloc(2 * n * sizeof(*v) + 1), *sorted;
  int in_order = 1;
  if (!order || !v) {
    free(order);
    free(v);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    v[i] = (struct kv){addrs[i], i};
    if (i && addrs[i] < addrs[i - 1]) in_order = 0;
  }
  /* Children of one array often come in allocation order already. */
  sorted = in_order ? v : kv_sort(v, v + n, n);
  for (size_t i = 0; i < n; i++) order[i] = sorted[i].val;
  free(v);
  return order;
}

void tmem_gather(struct tmem *m, const uint64_t *addrs, const uint32_t *lens,
                 const size_t *offs, size_t n, void *out, unsigned char *ok)
{
  /* Objects reached together often lie together (allocated together):
   * sorted by address, neighbours merge into one read. */
  size_t *order = by_address(addrs, n);
  struct gctx *g = calloc(1, sizeof(*g));
  memset(ok, 0, n);
  if (!order || !g ||
      (!m->scratch && !(m->scratch = malloc(SCRATCH_MAX + RUN_MAX)))) {
    /* No memory to merge: one iovec per range still works. */
    for (size_t i = 0; order && i < n; i++) order[i] = i;
    if (order) gather_each(m, addrs, lens, offs, order, n, out, ok);
    free(order);
    free(g);
    return;
  }
  *g = (struct gctx){.m = m,
                     .addrs = addrs,
                     .lens = lens,
                     .offs = offs,
                     .out = out,
                     .ok = ok,
                     .order = order};
  for (size_t r = 0; r < n;) {
    uint64_t lo = addrs[order[r]], hi = lo + lens[order[r]];
    size_t first = r++;
    if (lo == 0 || lo > LJ_ADDR_MAX) continue; /* not an address: lost */
    while (r < n && joins_run(addrs[order[r]], hi) &&
           addrs[order[r]] + lens[order[r]] - lo <= RUN_MAX) {
      if (addrs[order[r]] + lens[order[r]] > hi)
        hi = addrs[order[r]] + lens[order[r]];
      r++;
    }
    g->runs[g->nruns++] = (struct run){lo, hi, first, r, g->used};
    g->used += hi - lo;
    if (g->nruns == GATHER_MAX || g->used >= SCRATCH_MAX) read_runs(g);
  }
  read_runs(g);
  free(order);
  free(g);
}

int tmem_u64(struct tmem *m, uint64_t addr, uint64_t *v)
{
  return tmem_read(m, addr, v, sizeof(*v));
}

int tmem_u32(struct tmem *m, uint64_t addr, uint32_t *v)
{
  return tmem_read(m, addr, v, sizeof(*v));
}
