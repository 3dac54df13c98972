/*
** Target processes of a recording and the discovery of their VMs.
**
** Discovery scans the target's memory (milliseconds, up to a fraction of
** a second for big heaps), so it runs again only when there is reason
** to: a process without VMs yet (a command starting up) is retried
** every DISCOVER_RETRY seconds for a while, a process with VMs only after
** the kernel met threads running a VM it does not know. Those may well be
** threads running no Lua at all (traffic_server's), so each search that
** finds nothing new doubles the wait, from DISCOVER_AGAIN up to
** DISCOVER_MAX.
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "targets.h"

#define DISCOVER_RETRY 0.05
#define DISCOVER_FAST 40 /* retries at DISCOVER_RETRY */
#define DISCOVER_AGAIN 1.0
#define DISCOVER_MAX 60.0
#define CHILDREN_EVERY 1.0

struct rtarget *targets_find(struct rtargets *ts, pid_t pid)
{
  for (size_t i = 0; i < ts->n; i++)
    if (ts->v[i]->pid == pid) return ts->v[i];
  return NULL;
}

static struct rtarget *add(struct rtargets *ts, pid_t pid, int given)
{
  struct rtarget *t, **nv;
  if ((t = targets_find(ts, pid))) return t;
  if (!(t = calloc(1, sizeof(*t)))) return NULL;
  if (!(nv = realloc(ts->v, (ts->n + 1) * sizeof(*nv)))) {
    free(t);
    return NULL;
  }
  ts->v = nv;
  t->pid = pid;
  t->given = given;
  ts->v[ts->n++] = t;
  return t;
}

/* The process a thread ID belongs to (samples are matched by process). */
static pid_t tgid_of(pid_t tid)
{
  char path[64], line[128];
  FILE *f;
  int tgid = 0;
  snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
  if (!(f = fopen(path, "r"))) return tid;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "Tgid: %d", &tgid) == 1) break;
  fclose(f);
  return tgid > 0 ? (pid_t)tgid : tid;
}

int targets_add(struct rtargets *ts, pid_t pid)
{
  return add(ts, tgid_of(pid), 1) ? 0 : -1;
}

/* Exited, or a zombie waiting for its parent. */
static int exited(pid_t pid)
{
  char path[64], buf[512], *p;
  FILE *f;
  if (kill(pid, 0) && errno == ESRCH) return 1;
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if (!(f = fopen(path, "r"))) return 1;
  p = fgets(buf, sizeof(buf), f);
  fclose(f);
  if (!p || !(p = strrchr(buf, ')'))) return 1;
  return p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static pid_t parent_of(pid_t pid)
{
  char path[64], buf[512], *p;
  FILE *f;
  int ppid = 0;
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if (!(f = fopen(path, "r"))) return 0;
  p = fgets(buf, sizeof(buf), f);
  fclose(f);
  if (p && (p = strrchr(buf, ')'))) sscanf(p + 1, " %*c %d", &ppid);
  return ppid;
}

/* Adds every live descendant of the given targets. New processes are
 * met in /proc in PID order, mostly after their parents; a second pass
 * catches grandchildren whose PIDs wrapped around. */
static void add_children(struct rtargets *ts)
{
  for (int pass = 0; pass < 2; pass++) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    if (!d) return;
    while ((e = readdir(d))) {
      char *end;
      long pid = strtol(e->d_name, &end, 10);
      pid_t pp;
      struct rtarget *parent;
      if (*end || pid <= 0 || targets_find(ts, (pid_t)pid)) continue;
      if (!(pp = parent_of((pid_t)pid)) || !(parent = targets_find(ts, pp)) ||
          parent->gone)
        continue;
      add(ts, (pid_t)pid, 0);
    }
    closedir(d);
  }
}

/* The next wait: doubled from DISCOVER_AGAIN up to DISCOVER_MAX. */
static double backoff(struct rtarget *t)
{
  t->again = t->again < DISCOVER_AGAIN     ? DISCOVER_AGAIN
             : t->again < DISCOVER_MAX / 2 ? 2 * t->again
                                           : DISCOVER_MAX;
  return t->again;
}

static void discover(struct rtargets *ts, struct rtarget *t, double now)
{
  struct lj_target nt;
  if (lj_discover(t->pid, &nt, t->why, sizeof(t->why))) {
    /* A program starting up gets its first VM soon, or never. */
    t->next_try =
        now + (t->tries++ < DISCOVER_FAST ? DISCOVER_RETRY : backoff(t));
    return;
  }
  t->novm_seen = t->novm;
  if (t->has_vms && nt.nvms == t->t.nvms) {
    t->next_try = now + backoff(t);
    lj_target_free(&nt);
    return;
  }
  t->again = 0;
  t->next_try = now + backoff(t);
  /* The symbolizer keeps &t->t: update it in place. */
  lj_target_free(&t->t);
  t->t = nt;
  if (!t->sym) t->sym = lj_symbolizer_new(t->pid, &t->t);
  if (!t->sym || (ts->smp && sampler_set_target(ts->smp, &t->t))) {
    snprintf(t->why, sizeof(t->why),
             "cannot pass the VMs of process %d to the kernel: %s", (int)t->pid,
             strerror(errno));
    return;
  }
  t->has_vms = 1;
}

void targets_update(struct rtargets *ts, double now)
{
  if (ts->children && now >= ts->children_at) {
    add_children(ts);
    ts->children_at = now + CHILDREN_EVERY;
  }
  for (size_t i = 0; i < ts->n; i++) {
    struct rtarget *t = ts->v[i];
    if (t->gone) continue;
    if (exited(t->pid)) {
      t->gone = 1;
      if (t->has_vms && ts->smp) sampler_drop_target(ts->smp, t->pid);
      continue;
    }
    if (now < t->next_try) continue;
    if (!t->has_vms || t->novm > t->novm_seen) discover(ts, t, now);
  }
}

int targets_attach(struct rtargets *ts, struct sampler *smp)
{
  ts->smp = smp;
  for (size_t i = 0; i < ts->n; i++)
    if (ts->v[i]->has_vms && sampler_set_target(smp, &ts->v[i]->t)) return -1;
  return 0;
}

int targets_alive(const struct rtargets *ts)
{
  for (size_t i = 0; i < ts->n; i++)
    if (!ts->v[i]->gone) return 1;
  return 0;
}

size_t targets_nvms(const struct rtargets *ts, size_t *nprocs)
{
  size_t n = 0;
  *nprocs = 0;
  for (size_t i = 0; i < ts->n; i++)
    if (ts->v[i]->has_vms) {
      n += ts->v[i]->t.nvms;
      (*nprocs)++;
    }
  return n;
}

void targets_free(struct rtargets *ts)
{
  for (size_t i = 0; i < ts->n; i++) {
    lj_symbolizer_free(ts->v[i]->sym);
    unwinder_free(ts->v[i]->uw);
    lj_target_free(&ts->v[i]->t);
    free(ts->v[i]);
  }
  free(ts->v);
  ts->v = NULL;
  ts->n = 0;
}
