/*
** Write watchpoints on a few bytes of a running process, with the CPU's
** debug registers (perf hardware breakpoints), on every thread.
**
** luaspy leaks uses them to confirm a suspect: the type byte of a GC
** object is written once, when the object is made, and the allocator
** overwrites it when the block is freed into a bin. A write there while
** watched means the block was freed or holds a new object: whatever was
** sampled there is gone. The target's memory is not touched; it only
** traps into the kernel when it writes a watched byte.
*/
#ifndef LUASPY_HWWATCH_H
#define LUASPY_HWWATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Debug registers per thread (x86_64: DR0-DR3). */
#define HWWATCH_SLOTS 4

/* Watches the byte at each of addrs[0..n) (n <= HWWATCH_SLOTS) for writes
 * by any thread of pid for `seconds`; hits[i] gets the writes to addrs[i].
 * Returns the slots that could be watched (those that could not get
 * hits[i] UINT64_MAX), or -1 with a reason in why when none could (no
 * hardware breakpoints, debug registers taken, process gone). */
int hwwatch_run(pid_t pid, const uint64_t *addrs, size_t n, double seconds,
                uint64_t *hits, char *why, size_t len);

#endif
