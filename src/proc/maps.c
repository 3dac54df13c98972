/*
** /proc/PID/maps and friends.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

static int parse_line(const char *line, struct proc_map *m)
{
  char perms[8] = "";
  unsigned long long lo, hi, off, ino;
  int pathpos = 0;
  if (sscanf(line, "%llx-%llx %7s %llx %*s %llu %n", &lo, &hi, perms, &off,
             &ino, &pathpos) < 5)
    return -1;
  memset(m, 0, sizeof(*m));
  m->lo = lo;
  m->hi = hi;
  m->offset = off;
  m->inode = ino;
  m->r = perms[0] == 'r';
  m->w = perms[1] == 'w';
  m->x = perms[2] == 'x';
  m->p = perms[3] == 'p';
  if (pathpos > 0) {
    size_t n = strcspn(line + pathpos, "\n");
    if (n >= sizeof(m->path)) n = sizeof(m->path) - 1;
    memcpy(m->path, line + pathpos, n);
  }
  return 0;
}

int proc_maps_read(pid_t pid, struct proc_maps *maps)
{
  char path[64], *line = NULL;
  size_t cap = 0, alloc = 0;
  FILE *f;
  snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
  if (!(f = fopen(path, "re"))) return -1;
  maps->v = NULL;
  maps->n = 0;
  while (getline(&line, &cap, f) > 0) {
    if (maps->n == alloc) {
      size_t na = alloc ? alloc * 2 : 256;
      struct proc_map *nv = realloc(maps->v, na * sizeof(*nv));
      if (!nv) goto fail;
      maps->v = nv;
      alloc = na;
    }
    if (parse_line(line, &maps->v[maps->n]) == 0) maps->n++;
  }
  free(line);
  fclose(f);
  if (maps->n == 0) {
    errno = ESRCH;
    return -1;
  }
  return 0;
fail:
  free(line);
  fclose(f);
  proc_maps_free(maps);
  errno = ENOMEM;
  return -1;
}

void proc_maps_free(struct proc_maps *maps)
{
  free(maps->v);
  maps->v = NULL;
  maps->n = 0;
}

const struct proc_map *proc_maps_find(const struct proc_maps *maps,
                                      uint64_t addr)
{
  size_t lo = 0, hi = maps->n;
  while (lo < hi) { /* maps are sorted by address */
    size_t mid = (lo + hi) / 2;
    if (addr < maps->v[mid].lo)
      hi = mid;
    else if (addr >= maps->v[mid].hi)
      lo = mid + 1;
    else
      return &maps->v[mid];
  }
  return NULL;
}

static int read_small_file(const char *path, char *buf, size_t len)
{
  FILE *f = fopen(path, "re");
  size_t n;
  if (!f) return -1;
  n = fread(buf, 1, len - 1, f);
  fclose(f);
  buf[n] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  return 0;
}

int proc_comm(pid_t pid, char *buf, size_t len)
{
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
  return read_small_file(path, buf, len);
}

int proc_exe(pid_t pid, char *buf, size_t len)
{
  char path[64];
  ssize_t n;
  snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
  n = readlink(path, buf, len - 1);
  if (n < 0) return -1;
  buf[n] = '\0';
  return 0;
}

void proc_root_path(pid_t pid, const char *path, char *buf, size_t len)
{
  snprintf(buf, len, "/proc/%d/root%s", (int)pid, path);
}

/* One small read from the first readable mapping tells whether we may
 * read the target at all (ptrace access mode). */
static int probe_read(pid_t pid, const struct proc_maps *maps)
{
  uint64_t v;
  size_t i;
  int tried = 0;
  /* Not just the first mapping: a JIT maps and unmaps machine-code areas
   * all the time (one may be gone by now); permission errors repeat. */
  errno = EFAULT;
  for (i = 0; i < maps->n && tried < 8; i++) {
    if (!maps->v[i].r) continue;
    tried++;
    if (proc_read_u64(pid, maps->v[i].lo, &v) == 0) return 0;
    if (errno != EFAULT) return -1;
  }
  return -1;
}

int proc_check(pid_t pid, char *why, size_t len)
{
  char path[64], stat[512], *p;
  struct proc_maps maps = {0};
  FILE *f;
  if (pid <= 0) {
    snprintf(why, len, "invalid PID %d", (int)pid);
    return -1;
  }
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if (!(f = fopen(path, "re"))) {
    snprintf(why, len, "no process with PID %d", (int)pid);
    return -1;
  }
  if (!fgets(stat, sizeof(stat), f)) stat[0] = '\0';
  fclose(f);
  /* The state follows the last ')' of "pid (comm) S ...". */
  p = strrchr(stat, ')');
  if (p && (p[2] == 'Z' || p[2] == 'X')) {
    snprintf(why, len, "process %d is a zombie (exited, not yet reaped)",
             (int)pid);
    return -1;
  }
  if (proc_maps_read(pid, &maps) != 0 || probe_read(pid, &maps) != 0) {
    int err = errno;
    proc_maps_free(&maps);
    if (err == ESRCH || err == ENOENT)
      snprintf(why, len, "process %d exited", (int)pid);
    else
      snprintf(why, len,
               "cannot read the memory of process %d: %s (run as root, or "
               "grant CAP_SYS_PTRACE)",
               (int)pid, strerror(err));
    return -1;
  }
  proc_maps_free(&maps);
  return 0;
}

int proc_alive(pid_t pid)
{
  char path[64], buf[512], *p;
  FILE *f;
  if (kill(pid, 0) && errno == ESRCH) return 0;
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if (!(f = fopen(path, "r"))) return 0;
  p = fgets(buf, sizeof(buf), f);
  fclose(f);
  return p && (p = strrchr(buf, ')')) && p[1] == ' ' && p[2] != 'Z' &&
         p[2] != 'X';
}
