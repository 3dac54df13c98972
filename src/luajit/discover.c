/*
** Finding LuaJIT VMs in a stripped process.
**
** 1. The object holding VM code exports the C API; `luaJIT_setmode` tells
**    LuaJIT from PUC Lua, `lua_setexdata` the OpenResty fork.
** 2. Every VM owns a GG_State whose dispatch table is a run of exactly
**    dispatch_len pointers into that object's code. We look for such runs
**    in the process's private writable memory (read-only, no stop).
** 3. The run's place gives GG, and the layout is accepted only when the
**    pointers agree: G->mainthref == GG (main lua_State) and
**    mainL->glref == G.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luajit.h"
#include "vmcode.h"

#define SCAN_CHUNK (1u << 20)
#define SCAN_PAGE 4096u /* mappings are page-aligned */
/* A private mapping larger than this is not scanned (huge heaps, arenas
 * reserved but unused); GG_States live in small lj_alloc/malloc chunks. */
#define SCAN_MAP_MAX (8ull << 30)

static enum lj_flavor object_flavor(pid_t pid, const char *path)
{
  struct elf_file *ef = elf_file_open(pid, path);
  enum lj_flavor fl = LJ_FLAVOR_UNKNOWN;
  if (!ef) return fl;
  if (elf_file_symbol(ef, "luaJIT_setmode"))
    fl = elf_file_symbol(ef, "lua_setexdata") ? LJ_FLAVOR_OPENRESTY
                                              : LJ_FLAVOR_UPSTREAM;
  elf_file_free(ef);
  return fl;
}

/* Collects the objects that hold LuaJIT code and their text ranges. */
static void find_objects(pid_t pid, const struct proc_maps *maps,
                         struct lj_target *t)
{
  for (size_t i = 0; i < maps->n; i++) {
    const struct proc_map *m = &maps->v[i];
    struct lj_object *o = NULL;
    int j;
    if (!m->x || m->path[0] != '/') continue;
    for (j = 0; j < t->nobjs; j++)
      if (!strcmp(t->objs[j].path, m->path)) o = &t->objs[j];
    if (o) {
      if (m->lo < o->text_lo) o->text_lo = m->lo;
      if (m->hi > o->text_hi) o->text_hi = m->hi;
      continue;
    }
    if (t->nobjs == LJ_MAX_OBJECTS) continue;
    enum lj_flavor fl = object_flavor(pid, m->path);
    if (fl == LJ_FLAVOR_UNKNOWN) continue;
    o = &t->objs[t->nobjs++];
    snprintf(o->path, sizeof(o->path), "%s", m->path);
    o->text_lo = m->lo;
    o->text_hi = m->hi;
    o->flavor = fl;
  }
}

/* Is addr inside the code of an object holding LuaJIT? */
static int in_lj_text(const struct lj_target *t, uint64_t addr)
{
  for (int i = 0; i < t->nobjs; i++)
    if (addr >= t->objs[i].text_lo && addr < t->objs[i].text_hi) return 1;
  return 0;
}

int lj_in_vm_code(const struct lj_vm *vm, uint64_t addr)
{
  return addr >= vm->code_lo && addr < vm->code_hi;
}

/* dispatch[0] is lj_vm_asm_begin; its FDE spans the interpreter. */
static void find_vm_code(pid_t pid, const struct lj_target *t, struct lj_vm *vm)
{
  uint64_t begin;
  if (proc_read_u64(pid, vm->dispatch, &begin)) return;
  if (vm_code_range(pid, begin, &vm->code_lo, &vm->code_hi) == 0) return;
  for (int i = 0; i < t->nobjs; i++)
    if (begin >= t->objs[i].text_lo && begin < t->objs[i].text_hi) {
      vm->code_lo = t->objs[i].text_lo;
      vm->code_hi = t->objs[i].text_hi;
    }
}

static int add_vm(struct lj_target *t, const struct lj_vm *vm)
{
  struct lj_vm *nv;
  for (size_t i = 0; i < t->nvms; i++)
    if (t->vms[i].GG == vm->GG) return 0;
  nv = realloc(t->vms, (t->nvms + 1) * sizeof(*nv));
  if (!nv) return -1;
  t->vms = nv;
  t->vms[t->nvms++] = *vm;
  return 0;
}

/* A run of text pointers of the right length: try each layout whose
 * dispatch table has that length, keep the one whose pointers agree. */
static void try_candidate(pid_t pid, struct lj_target *t, uint64_t run,
                          size_t len)
{
  static const enum lj_flavor order[] = {LJ_FLAVOR_OPENRESTY,
                                         LJ_FLAVOR_UPSTREAM, LJ_FLAVOR_HEAD};
  for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
    const struct lj_layout *lay = lj_layout_for(order[i]);
    uint64_t GG, G, mainL, glref;
    struct lj_vm vm;
    if (lay->dispatch_len != len || run < lay->gg_dispatch) continue;
    GG = run - lay->gg_dispatch;
    G = GG + lay->gg_g;
    if (proc_read_u64(pid, G + lay->g_mainthref, &mainL) != 0 || mainL != GG ||
        proc_read_u64(pid, GG + lay->L_glref, &glref) != 0 || glref != G)
      continue;
    vm.GG = GG;
    vm.G = G;
    vm.J = GG + lay->gg_J;
    vm.dispatch = run;
    vm.mainL = mainL;
    vm.lay = lay;
    vm.code_lo = vm.code_hi = 0;
    find_vm_code(pid, t, &vm);
    add_vm(t, &vm);
    return;
  }
}

static int known_length(size_t len)
{
  return len == 243 || len == 257;
}

static void scan_region(pid_t pid, struct lj_target *t, uint64_t lo,
                        uint64_t hi, uint64_t *buf)
{
  uint64_t run = 0;
  size_t runlen = 0;
  for (uint64_t a = lo; a < hi; a += SCAN_CHUNK) {
    size_t n = hi - a < SCAN_CHUNK ? hi - a : SCAN_CHUNK;
    int ok = proc_read(pid, a, buf, n) == 0;
    /* A mapping may have merged in /proc/PID/maps with a neighbour that is
     * gone by now (LuaJIT's misplaced mcode blocks during an mcode storm
     * come and go next to the Lua heap): then read the chunk page by page
     * and scan what is still there. */
    int some = ok;
    for (size_t p = 0; !ok && p < n; p += SCAN_PAGE) {
      if (proc_read(pid, a + p, (char *)buf + p, SCAN_PAGE) == 0)
        some = 1;
      else
        memset((char *)buf + p, 0, SCAN_PAGE); /* ends any run */
    }
    /* Nothing left of this chunk: the part of a merged mapping that went
     * away. The rest of the mapping may still hold a GG_State. */
    if (!some) continue;
    t->scanned_bytes += n;
    for (size_t i = 0; i < n / 8; i++) {
      if (in_lj_text(t, buf[i])) {
        if (runlen++ == 0) run = a + 8 * i;
        continue;
      }
      if (known_length(runlen)) try_candidate(pid, t, run, runlen);
      runlen = 0;
    }
  }
  if (known_length(runlen)) try_candidate(pid, t, run, runlen);
}

int lj_discover(pid_t pid, struct lj_target *t, char *why, size_t len)
{
  struct proc_maps maps;
  uint64_t *buf;
  memset(t, 0, sizeof(*t));
  t->pid = pid;
  if (proc_maps_read(pid, &maps) != 0) {
    snprintf(why, len, "cannot read the mappings of process %d: %s", (int)pid,
             strerror(errno));
    return -1;
  }
  find_objects(pid, &maps, t);
  if (t->nobjs == 0) {
    char comm[64] = "?";
    proc_comm(pid, comm, sizeof(comm));
    snprintf(why, len,
             "process %d (%s) has no LuaJIT: no mapped object exports "
             "luaJIT_setmode",
             (int)pid, comm);
    proc_maps_free(&maps);
    return -1;
  }
  if (!(buf = malloc(SCAN_CHUNK))) {
    snprintf(why, len, "out of memory");
    proc_maps_free(&maps);
    return -1;
  }
  /* A process that maps and unmaps big blocks while we scan can move the
   * ground under one pass: a second pass reads its mappings anew. */
  for (int pass = 0; pass < 2 && t->nvms == 0; pass++) {
    if (pass && proc_maps_read(pid, &maps) != 0) break;
    for (size_t i = 0; i < maps.n; i++) {
      const struct proc_map *m = &maps.v[i];
      int anon = m->path[0] == '\0' || !strcmp(m->path, "[heap]");
      if (!m->r || !m->w || !m->p || !anon || m->hi - m->lo > SCAN_MAP_MAX)
        continue;
      scan_region(pid, t, m->lo, m->hi, buf);
    }
    proc_maps_free(&maps);
  }
  free(buf);
  if (t->nvms == 0) {
    /* A target that died under the scan has no VM left to find: say so
     * (proc_check's reason) rather than blame the LuaJIT build. */
    if (proc_check(pid, why, len)) return -1;
    snprintf(why, len,
             "process %d maps LuaJIT (%s) but no Lua VM passed validation "
             "(no lua_State created yet, or an unknown LuaJIT build)",
             (int)pid, t->objs[0].path);
    return -1;
  }
  return 0;
}

void lj_target_free(struct lj_target *t)
{
  free(t->vms);
  t->vms = NULL;
  t->nvms = 0;
}
