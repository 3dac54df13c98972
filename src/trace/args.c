/*
** Option values of offcpu and syscalls (see args.h).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cmd/common.h"
#include "args.h"

int targs_seconds(const char *s, double *v)
{
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  return errno || end == s || *end || !(*v > 0) || *v > 1e7 ? -1 : 0;
}

int targs_uint(const char *s, uint64_t max, uint64_t *v)
{
  char *end;
  unsigned long long x;
  errno = 0;
  if (*s == '-') return -1;
  x = strtoull(s, &end, 10);
  if (errno || end == s || *end || x > max) return -1;
  *v = x;
  return 0;
}

int targs_pid(const char *s, pid_t *pid)
{
  uint64_t v;
  if (targs_uint(s, INT_MAX, &v) || v == 0) return -1;
  *pid = (pid_t)v;
  return 0;
}

int targs_writable(const char *cmd, const char *path)
{
  char dir[PATH_MAX];
  if (!strcmp(path, "-")) return 0;
  snprintf(dir, sizeof(dir), "%s", path);
  if (access(dirname(dir), W_OK)) {
    die_msg("%s: cannot write '%s': %s", cmd, path, strerror(errno));
    return -1;
  }
  return 0;
}
