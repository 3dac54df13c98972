/*
** A read-through cache of target memory for walking many small objects.
**
** The GC heap is millions of small objects linked by pointers; one
** process_vm_readv per object header would cost a syscall each. Reads
** here go through 16 KiB blocks copied whole, so neighbouring objects
** (LuaJIT allocates them side by side) cost one syscall per block.
** Large reads (a table's node array) bypass the cache.
**
** Blocks are copies taken at different moments of a running target:
** callers validate what they read.
*/
#ifndef LUASPY_TMEM_H
#define LUASPY_TMEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tmem;

/* cache_bytes bounds the memory the cache holds. NULL when out of memory. */
struct tmem *tmem_new(pid_t pid, size_t cache_bytes);
void tmem_free(struct tmem *m);
/* Drops every cached block (the next snapshot must read anew) and the
 * memory that held them. */
void tmem_flush(struct tmem *m);

/* Copies len bytes at addr into buf: 0, or -1 if any byte is unreadable. */
int tmem_read(struct tmem *m, uint64_t addr, void *buf, size_t len);
/* The same, bypassing the cache: for headers that must be current
 * (a table's parts move when it grows). */
int tmem_read_fresh(struct tmem *m, uint64_t addr, void *buf, size_t len);
/* Reads lens[i] bytes at addrs[i] into out + offs[i] for i < n, with
 * one syscall per up to 1024 ranges (objects scattered over the heap
 * would each cost one). ok[i] says which ranges were read. Bypasses the
 * cache: what it returns is current. */
void tmem_gather(struct tmem *m, const uint64_t *addrs, const uint32_t *lens,
                 const size_t *offs, size_t n, void *out, unsigned char *ok);

int tmem_u64(struct tmem *m, uint64_t addr, uint64_t *v);
int tmem_u32(struct tmem *m, uint64_t addr, uint32_t *v);

/* Bytes copied from the target so far. */
uint64_t tmem_bytes_read(const struct tmem *m);

#endif
