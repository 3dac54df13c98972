/*
** Registers of a running target: PTRACE_SEIZE + PTRACE_INTERRUPT, read,
** detach. SEIZE sends no SIGSTOP, so the target never sees a job-control
** stop, and detaching resumes it exactly where it was.
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

#include "proc.h"

/* Threads currently seized, for the async-signal-safe detach path. */
#define SEIZED_MAX 4096
static volatile pid_t seized[SEIZED_MAX];
/* A signal that arrived while we held the thread: handed back on detach,
 * so the target never loses one. */
static volatile int seized_sig[SEIZED_MAX];
static volatile sig_atomic_t nseized;

static void detach_all(void)
{
  while (nseized > 0) {
    int i = --nseized;
    ptrace(PTRACE_DETACH, seized[i], NULL, (void *)(long)seized_sig[i]);
  }
}

void proc_resume_all(void)
{
  detach_all();
}

size_t proc_threads(pid_t pid, pid_t *tids, size_t max)
{
  char path[64];
  struct dirent *de;
  size_t n = 0;
  DIR *d;
  snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
  if (!(d = opendir(path))) return 0;
  while ((de = readdir(d)) && n < max) {
    long tid = strtol(de->d_name, NULL, 10);
    if (tid > 0) tids[n++] = (pid_t)tid;
  }
  closedir(d);
  return n;
}

static int stop_one(pid_t tid, struct proc_regs *r)
{
  struct user_regs_struct ur;
  int status;
  int slot;
  if (nseized >= SEIZED_MAX) return -1;
  if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) return -1;
  slot = nseized;
  seized[slot] = tid;
  seized_sig[slot] = 0;
  nseized = slot + 1;
  if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) != 0) return -1;
  if (waitpid(tid, &status, __WALL) != tid) return -1;
  if (!WIFSTOPPED(status)) return -1;
  /* Not our interrupt but a signal on its way to the thread: keep it to
   * re-inject at detach. Registers are valid in either stop. */
  if ((status >> 16) != PTRACE_EVENT_STOP) seized_sig[slot] = WSTOPSIG(status);
  if (ptrace(PTRACE_GETREGS, tid, NULL, &ur) != 0) return -1;
  r->tid = tid;
  r->rip = ur.rip;
  r->rsp = ur.rsp;
  r->rbp = ur.rbp;
  r->rbx = ur.rbx;
  r->rdx = ur.rdx;
  r->r14 = ur.r14;
  r->r15 = ur.r15;
  return 0;
}

int proc_stop_all(pid_t pid, struct proc_stop *st, char *why, size_t len)
{
  pid_t tids[SEIZED_MAX];
  size_t n = proc_threads(pid, tids, SEIZED_MAX);
  memset(st, 0, sizeof(*st));
  st->pid = pid;
  if (n == 0) {
    snprintf(why, len, "process %d has no threads (exited?)", (int)pid);
    return -1;
  }
  st->threads = calloc(n, sizeof(*st->threads));
  if (!st->threads) {
    snprintf(why, len, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    /* A thread that exits meanwhile is simply left out. */
    if (stop_one(tids[i], &st->threads[st->n]) == 0) {
      st->n++;
    } else if (errno == EPERM && st->n == 0) {
      snprintf(why, len, "cannot ptrace process %d: %s", (int)pid,
               strerror(errno));
      proc_resume(st);
      return -1;
    }
  }
  return 0;
}

void proc_resume(struct proc_stop *st)
{
  detach_all();
  free(st->threads);
  st->threads = NULL;
  st->n = 0;
}
