/*
** Access to a target process: its mappings, its memory, its registers.
** Everything read here is untrusted and every read is bounded.
*/
#ifndef LUASPY_PROC_H
#define LUASPY_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_PATH_MAX 512

struct proc_map {
  uint64_t lo, hi; /* [lo, hi) */
  uint64_t offset; /* file offset of lo */
  unsigned char r, w, x, p;
  uint64_t inode;
  char path[PROC_PATH_MAX]; /* "" for anonymous, "[heap]", ... */
};

struct proc_maps {
  struct proc_map *v;
  size_t n;
};

/* Reads /proc/PID/maps. Returns 0, or -1 with errno set. */
int proc_maps_read(pid_t pid, struct proc_maps *maps);
void proc_maps_free(struct proc_maps *maps);
const struct proc_map *proc_maps_find(const struct proc_maps *maps,
                                      uint64_t addr);

/* Copies len bytes at addr in the target into buf. Returns 0 when the
 * whole range was read, -1 otherwise (a partial read is a failure). */
int proc_read(pid_t pid, uint64_t addr, void *buf, size_t len);
int proc_read_u64(pid_t pid, uint64_t addr, uint64_t *v);
int proc_read_u32(pid_t pid, uint64_t addr, uint32_t *v);

/* Short name of the process (/proc/PID/comm) and its executable path as
 * seen from the target's own mount namespace. */
int proc_comm(pid_t pid, char *buf, size_t len);
int proc_exe(pid_t pid, char *buf, size_t len);

/* Path under which the target's file PATH can be opened from here, across
 * mount namespaces: /proc/PID/root/PATH. */
void proc_root_path(pid_t pid, const char *path, char *buf, size_t len);

/* Checks that pid names a live, non-zombie process we may read. On failure
 * writes a one-line reason into why and returns -1. */
int proc_check(pid_t pid, char *why, size_t len);
/* 1 while pid exists and is not a zombie. */
int proc_alive(pid_t pid);

/* The thread ids of pid, at most max of them, into tids; their number. */
size_t proc_threads(pid_t pid, pid_t *tids, size_t max);

/* Register snapshot of one thread, taken with ptrace. */
struct proc_regs {
  pid_t tid;
  uint64_t rip, rsp, rbp, rbx, rdx, r14, r15;
};

struct proc_stop {
  pid_t pid;
  struct proc_regs *threads;
  size_t n;
};

/* Seizes and interrupts every thread of pid, reads their registers.
 * Threads stay stopped until proc_resume(); a signal handler installed by
 * the caller must call proc_resume_all() so that no thread is left stopped.
 * Returns 0, or -1 with a reason in why. */
int proc_stop_all(pid_t pid, struct proc_stop *st, char *why, size_t len);
void proc_resume(struct proc_stop *st);
/* Async-signal-safe detach of whatever is currently seized. */
void proc_resume_all(void);

#endif
