/*
** libFuzzer target: what luaspy parses from its users without a target
** process. The first byte, modulo 13, picks what:
**   0      folded-stack files (profile_read_folded, `luaspy report`'s input)
**   1      the -p PID list (parse_pids); the rest is the text
**   2..12  a command's whole command line (dump, record, report, heap,
**          jit, diff, offcpu, syscalls, top, alloc, leaks): the rest is
**          its arguments,
**          separated by NUL bytes. cli_parse_only makes the command return
**          once its options are parsed and checked, before it touches a
**          process or opens a file.
** What the commands print goes to /dev/null; sanitizer reports still
** reach the fuzzer's stderr (file descriptor 2).
*/
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/cmd/cmd.h"
#include "../../src/cmd/common.h"
#include "../../src/output/profile.h"

#define MAX_PIDS 64
#define MAX_ARGS 64

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
} commands[] = {
    {"dump", cmd_dump},     {"record", cmd_record},     {"report", cmd_report},
    {"heap", cmd_heap},     {"jit", cmd_jit},           {"diff", cmd_diff},
    {"offcpu", cmd_offcpu}, {"syscalls", cmd_syscalls}, {"top", cmd_top},
    {"alloc", cmd_alloc},   {"leaks", cmd_leaks},
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  FILE *null = fopen("/dev/null", "w");
  (void)argc, (void)argv;
  if (null) stdout = stderr = null;
  cli_parse_only = 1;
  return 0;
}

/* Runs the command with data[0..size) split at NUL bytes as arguments,
 * each its own allocation so that reading past one is caught. */
static void run_command(int cmd, const uint8_t *data, size_t size)
{
  char *argv[MAX_ARGS + 2];
  int argc = 0;
  size_t at = 0;
  argv[argc++] = strdup(commands[cmd].name);
  while (at < size && argc <= MAX_ARGS) {
    const uint8_t *nul = memchr(data + at, 0, size - at);
    size_t len = nul ? (size_t)(nul - data) - at : size - at;
    argv[argc++] = strndup((const char *)data + at, len);
    at += len + 1;
  }
  argv[argc] = NULL;
  for (int i = 0; i < argc; i++)
    if (!argv[i]) goto out;
  optind = 0; /* getopt starts afresh on every command line */
  int rc = commands[cmd].run(argc, argv);
  if (rc < 0 || rc > 2) __builtin_trap(); /* parsing is 0, 1 or 2 */
out:
  for (int i = 0; i < argc; i++) free(argv[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  int mode;
  if (size < 1) return 0;
  mode = data[0] % 13;
  if (mode >= 2) {
    run_command(mode - 2, data + 1, size - 1);
    return 0;
  }
  if (mode == 1) {
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
