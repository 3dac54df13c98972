/*
** luaspy dump: every Lua VM of a process and its current Lua backtrace.
**
** Discovery reads memory only. If any VM is interpreting or running a
** trace, its top frame lives in registers: then every thread is stopped
** with ptrace for as long as it takes to copy the raw stacks (no names
** are looked up while the target is stopped), and resumed.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../luajit/luajit.h"
#include "../output/json.h"
#include "cmd.h"
#include "common.h"

#define DUMP_FRAMES_MAX 65536

static void usage(FILE *f)
{
  fprintf(f, "usage: luaspy dump -p PID [--json] [--no-stop]\n\n"
             "Prints every Lua VM in process PID and the Lua backtrace it is\n"
             "running now, top frame first, with function names and current "
             "lines.\n\n"
             "  -p, --pid PID   the process (a luajit, an nginx worker, "
             "traffic_server...)\n"
             "  -j, --json      one JSON object (see docs/dump-format.md)\n"
             "      --no-stop   never stop the target; the top frame of an "
             "interpreting\n"
             "                  VM is then less exact\n"
             "  -h, --help      this text\n\n"
             "The target is stopped only while its stacks are copied (a few "
             "ms), and\nonly when a VM is executing Lua code. Needs root or "
             "CAP_SYS_PTRACE.\n\n"
             "example: luaspy dump -p $(pgrep -f 'nginx: worker' | head -1)\n");
}

static const char *vmstate_name(int32_t st)
{
  if (st > 0) return "trace";
  switch (st) {
  case LJ_VMST_INTERP: return "interpreted";
  case LJ_VMST_C: return "c";
  case LJ_VMST_GC: return "gc";
  case LJ_VMST_EXIT: return "exit";
  case LJ_VMST_RECORD: return "record";
  case LJ_VMST_OPT: return "optimize";
  case LJ_VMST_ASM: return "assemble";
  }
  return "unknown";
}

static int needs_regs(pid_t pid, const struct lj_target *t)
{
  for (size_t i = 0; i < t->nvms; i++) {
    int32_t st;
    const struct lj_vm *vm = &t->vms[i];
    if (proc_read(pid, vm->G + vm->lay->g_vmstate, &st, 4) == 0 &&
        (st == LJ_VMST_INTERP || st > 0))
      return 1;
  }
  return 0;
}

static void print_text(FILE *out, pid_t pid, const struct lj_target *t,
                       struct lj_walk *walks, struct lj_symbolizer *sym)
{
  char comm[64] = "?", buf[LJ_NAME_MAX + LJ_CHUNK_MAX + 32];
  proc_comm(pid, comm, sizeof(comm));
  fprintf(out, "pid %d (%s): %zu Lua VM%s\n", (int)pid, comm, t->nvms,
          t->nvms == 1 ? "" : "s");
  for (size_t i = 0; i < t->nvms; i++) {
    const struct lj_vm *vm = &t->vms[i];
    struct lj_walk *w = &walks[i];
    fprintf(out, "VM 0x%llx LuaJIT 2.1 %s GC64  state: %s",
            (unsigned long long)vm->G, lj_flavor_name(vm->lay->flavor),
            vmstate_name(w->vmstate));
    if (w->vmstate > 0) fprintf(out, " %d", w->vmstate);
    fprintf(out, "  coroutine: 0x%llx%s\n", (unsigned long long)w->curL,
            w->curL == vm->mainL ? " (main)" : "");
    uint64_t L = w->curL;
    for (size_t j = 0; j < w->n; j++) {
      struct lj_frame f;
      lj_symbolize(sym, vm, &w->frames[j], 1, &f);
      if (f.L && f.L != L) {
        fprintf(out, "  -- resumed by coroutine 0x%llx%s\n",
                (unsigned long long)f.L, f.L == vm->mainL ? " (main)" : "");
        L = f.L;
      }
      lj_frame_format(&f, buf, sizeof(buf));
      fprintf(out, "  #%-3zu %s\n", j, buf);
    }
    if (w->partial != LJ_OK)
      fprintf(out, "  (partial: %s)\n", lj_partial_name(w->partial));
  }
}

static void json_hex(struct json *j, const char *key, uint64_t v)
{
  char buf[32];
  snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
  json_key(j, key);
  json_str(j, buf);
}

static int print_json(FILE *out, pid_t pid, const struct lj_target *t,
                      struct lj_walk *walks, struct lj_symbolizer *sym)
{
  char exe[PROC_PATH_MAX] = "", buf[LJ_NAME_MAX + LJ_CHUNK_MAX + 32];
  struct json *j = json_new(out);
  int rc;
  if (!j) return -1; /* json_new said why */
  proc_exe(pid, exe, sizeof(exe));
  json_begin_obj(j);
  json_key(j, "pid");
  json_int(j, pid);
  json_key(j, "exe");
  json_str(j, exe);
  json_key(j, "vms");
  json_begin_arr(j);
  for (size_t i = 0; i < t->nvms; i++) {
    const struct lj_vm *vm = &t->vms[i];
    struct lj_walk *w = &walks[i];
    json_begin_obj(j);
    json_hex(j, "address", vm->G);
    json_key(j, "flavor");
    json_str(j, lj_flavor_name(vm->lay->flavor));
    json_key(j, "gc64");
    json_bool(j, vm->lay->gc64);
    json_key(j, "vmstate");
    json_str(j, vmstate_name(w->vmstate));
    json_key(j, "trace");
    if (w->vmstate > 0)
      json_int(j, w->vmstate);
    else
      json_null(j);
    json_hex(j, "coroutine", w->curL);
    json_hex(j, "main_thread", vm->mainL);
    json_key(j, "frames");
    json_begin_arr(j);
    for (size_t k = 0; k < w->n; k++) {
      struct lj_frame f;
      lj_symbolize(sym, vm, &w->frames[k], 1, &f);
      lj_frame_format(&f, buf, sizeof(buf));
      json_begin_obj(j);
      json_key(j, "kind");
      json_str(j, lj_kind_name(f.kind));
      json_key(j, "name");
      json_str(j, f.name);
      json_key(j, "chunk");
      if (f.chunk[0])
        json_str(j, f.chunk);
      else
        json_null(j);
      json_key(j, "line");
      if (f.line >= 0)
        json_int(j, f.line);
      else
        json_null(j);
      json_key(j, "what");
      json_str(j, f.what ? f.what : "");
      if (f.L) json_hex(j, "coroutine", f.L);
      json_key(j, "frame");
      json_str(j, buf);
      json_end_obj(j);
    }
    json_end_arr(j);
    json_key(j, "partial");
    json_bool(j, w->partial != LJ_OK);
    json_key(j, "partial_reason");
    if (w->partial != LJ_OK)
      json_str(j, lj_partial_name(w->partial));
    else
      json_null(j);
    json_end_obj(j);
  }
  json_end_arr(j);
  json_end_obj(j);
  fputc('\n', out);
  rc = json_done(j); /* says why on failure */
  json_free(j);
  return rc;
}

int cmd_dump(int argc, char **argv)
{
  static const struct option opts[] = {{"pid", required_argument, NULL, 'p'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"no-stop", no_argument, NULL, 'S'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  char why[512];
  pid_t pid = 0;
  int json = 0, nostop = 0, c, rc = 0;
  struct lj_target t;
  struct lj_walk *walks;
  struct proc_stop st = {0};
  struct lj_symbolizer *sym;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":p:jh", opts, NULL)) != -1) {
    switch (c) {
    case 'p':
      if (parse_pids(optarg, &pid, 1) != 1)
        return usage_error("dump", "invalid PID '%s'", optarg);
      break;
    case 'j': json = 1; break;
    case 'S': nostop = 1; break;
    case 'h': usage(stdout); return 0;
    default: return option_error("dump", c, argv);
    }
  }
  if (optind < argc)
    return usage_error("dump", "unexpected argument '%s'", argv[optind]);
  if (!pid) return usage_error("dump", "which process? give -p PID");
  if (cli_parse_only) return 0;
  install_signal_guard(NULL);
  if (proc_check(pid, why, sizeof(why)) ||
      lj_discover(pid, &t, why, sizeof(why))) {
    die_msg("%s", why);
    return 1;
  }
  if (!(walks = calloc(t.nvms, sizeof(*walks)))) {
    die_msg("out of memory");
    lj_target_free(&t);
    return 1;
  }
  for (size_t i = 0; i < t.nvms; i++) {
    walks[i].max = DUMP_FRAMES_MAX;
    walks[i].frames = calloc(DUMP_FRAMES_MAX, sizeof(struct lj_rawframe));
  }
  if (!nostop && needs_regs(pid, &t) &&
      proc_stop_all(pid, &st, why, sizeof(why))) {
    die_msg("%s", why);
    rc = 1;
    goto out;
  }
  for (size_t i = 0; i < t.nvms; i++)
    if (walks[i].frames)
      lj_walk_vm(pid, &t.vms[i], lj_vm_thread(&t.vms[i], &st), &walks[i]);
  proc_resume(&st);
  if (!(sym = lj_symbolizer_new(pid, &t))) {
    die_msg("out of memory");
    rc = 1;
    goto out;
  }
  if (json)
    rc = print_json(stdout, pid, &t, walks, sym) ? 1 : 0;
  else
    print_text(stdout, pid, &t, walks, sym);
  lj_symbolizer_free(sym);
  if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
    die_msg("dump: cannot write output: %s", strerror(errno));
    rc = 1;
  }
out:
  for (size_t i = 0; i < t.nvms; i++) free(walks[i].frames);
  free(walks);
  lj_target_free(&t);
  return rc;
}
