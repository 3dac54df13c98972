/*
** luaspy: see what Lua code a running LuaJIT process is executing.
*/
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *what;
} commands[] = {
    {"dump", cmd_dump, "print the current Lua stack of every VM in a process"},
    {"record", cmd_record, "sample Lua stacks with eBPF into a flame graph"},
    {"top", cmd_top, "live view of the Lua functions taking the most CPU"},
    {"heap", cmd_heap,
     "snapshot the Lua heap: sizes by type, largest tables, growth"},
    {"alloc", cmd_alloc, "flame graph of GC memory allocated, by Lua stack"},
    {"leaks", cmd_leaks,
     "allocations still alive at the end of a window, by Lua stack"},
    {"jit", cmd_jit,
     "watch the JIT compiler: traces, aborts, flushes, mcode, verdicts"},
    {"report", cmd_report,
     "convert a recording (folded stacks) to a flame graph, pprof or "
     "speedscope"},
    {"offcpu", cmd_offcpu,
     "off-CPU flame graph: why threads wait (I/O, page faults, mmap_lock), by "
     "stack"},
    {"syscalls", cmd_syscalls,
     "system calls: counts, latency, sizes and forks by Lua+native backtrace"},
    {"diff", cmd_diff, "compare two recordings in a differential flame graph"},
};

static void usage(FILE *f)
{
  fprintf(f,
          "usage: luaspy COMMAND [OPTIONS]\n\n"
          "Diagnose Lua code running inside LuaJIT (OpenResty/nginx, Traffic "
          "Server,\nstandalone luajit, ...) from outside: attach by PID, no "
          "restart, no debug info.\n\ncommands:\n");
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].what);
  fprintf(f, "\nluaspy COMMAND --help shows a command's options.\n");
}

int main(int argc, char **argv)
{
  if (geteuid() != getuid()) {
    fprintf(stderr, "luaspy: refusing to run setuid; run it as root or "
                    "with CAP_SYS_PTRACE, CAP_BPF and CAP_PERFMON\n");
    return 1;
  }
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
    printf("luaspy %s\n", LUASPY_VERSION);
    return 0;
  }
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (!strcmp(argv[1], commands[i].name))
      return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "luaspy: unknown command '%s' (try luaspy --help)\n",
          argv[1]);
  return 2;
}
