/*
** libFuzzer target: what luaspy parses from its users without a target
** process: the -p PID list (parse_pids) and folded-stack files
** (profile_read_folded, the input of `luaspy report`). The first byte
** picks which; the rest is the text.
*/
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/cmd/common.h"
#include "../../src/output/profile.h"

#define MAX_PIDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  if (data[0] & 1) {
    pid_t pids[MAX_PIDS];
    char *s = strndup((const char *)data + 1, size - 1);
    if (!s) return 0;
    int n = parse_pids(s, pids, 1 + data[0] % MAX_PIDS);
    if (n > MAX_PIDS) __builtin_trap();
    free(s);
    return 0;
  }
  FILE *in = fmemopen((void *)(data + 1), size - 1, "r");
  struct profile *p = profile_new("samples");
  if (in && p) profile_read_folded(p, in);
  if (p) profile_free(p);
  if (in) fclose(in);
  return 0;
}
