/*
** Names and lines for raw frames.
**
** Prototypes are copied whole (a GCproto and its bytecode, constants and
** debug info are one allocation of sizept bytes) and cached by address.
** A cached copy is used only while the target's header still matches it,
** so a prototype that was collected and its memory reused is read anew.
*/
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "funcname.h"
#include "luajit.h"

#define PROTO_MAX (4u << 20) /* larger prototypes are garbage */
#define PCACHE_SIZE 4096     /* direct-mapped */
#define NAMEMAP_MAX 8192     /* library functions we learn names of */
#define TABLE_SCAN_MAX 65536 /* hash nodes read per library table */

struct proto {
  uint64_t addr;
  unsigned char *img; /* sizept bytes from addr */
  uint32_t sizept;
  struct lj_protoimg pi;
  char chunk[LJ_CHUNK_MAX];
  int32_t firstline, numline;
  uint64_t lineinfo; /* target address */
};

struct fname {
  uint64_t key; /* ffid for builtins, C function pointer for C */
  char name[96];
};

struct vmnames {
  uint64_t G;
  char *ffname[256];
  struct fname *cfn;
  size_t ncfn;
};

struct lj_symbolizer {
  pid_t pid;
  const struct lj_target *t;
  struct proto pcache[PCACHE_SIZE];
  struct vmnames *vn;
  size_t nvn;
  struct proc_syms syms;
  int have_syms;
  const struct lj_layout *lay; /* of the VM being symbolized */
};

const char *lj_kind_name(enum lj_framekind k)
{
  static const char *const names[] = {"lua", "trace", "c", "builtin", "vm"};
  return names[k];
}

/* Copies a GCstr's bytes (bounded) into buf. */
static int read_str(pid_t pid, const struct lj_layout *lay, uint64_t s,
                    char *buf, size_t len)
{
  uint32_t n;
  buf[0] = '\0';
  if (!s || proc_read_u32(pid, s + lay->str_len, &n)) return -1;
  if (n >= len) n = (uint32_t)len - 1;
  if (proc_read(pid, s + lay->str_data, buf, n)) return -1;
  buf[n] = '\0';
  return 0;
}

/* Pointer into the local image for a target address inside the proto. */
static const unsigned char *img_ptr(const struct proto *p, uint64_t a)
{
  if (a < p->addr || a >= p->addr + p->sizept) return NULL;
  return p->img + (a - p->addr);
}

static const struct proto *get_proto(struct lj_symbolizer *s,
                                     const struct lj_layout *lay, uint64_t pt)
{
  struct proto *p = &s->pcache[(pt >> 3) % PCACHE_SIZE];
  unsigned char hdr[128];
  uint32_t sizept;
  if (lay->pt_size > sizeof(hdr) || proc_read(s->pid, pt, hdr, lay->pt_size))
    return NULL;
  /* Still the same prototype? (The GC header bits change; these don't.) */
  if (p->addr == pt && p->img &&
      !memcmp(p->img + lay->pt_sizebc, hdr + lay->pt_sizebc, 4) &&
      !memcmp(p->img + lay->pt_chunkname, hdr + lay->pt_chunkname,
              lay->pt_size - lay->pt_chunkname))
    return p;
  sizept = lj_get_u32(hdr, lay->pt_sizekgc + 8); /* sizept follows sizekn */
  if (sizept < lay->pt_size || sizept > PROTO_MAX) return NULL;
  free(p->img);
  memset(p, 0, sizeof(*p));
  if (!(p->img = malloc(sizept)) || proc_read(s->pid, pt, p->img, sizept)) {
    free(p->img);
    p->img = NULL;
    return NULL;
  }
  p->addr = pt;
  p->sizept = sizept;
  p->firstline = (int32_t)lj_get_u32(p->img, lay->pt_firstline);
  p->numline = (int32_t)lj_get_u32(p->img, lay->pt_numline);
  p->lineinfo = lj_get_u64(p->img, lay->pt_lineinfo);
  p->pi.sizebc = lj_get_u32(p->img, lay->pt_sizebc);
  p->pi.sizeuv = p->img[lay->pt_sizeuv];
  if ((uint64_t)p->pi.sizebc * 4 > sizept - lay->pt_size) {
    free(p->img);
    p->img = NULL;
    return NULL;
  }
  p->pi.bc = (const uint32_t *)(p->img + lay->pt_size);
  p->pi.uvinfo = img_ptr(p, lj_get_u64(p->img, lay->pt_uvinfo));
  p->pi.varinfo = img_ptr(p, lj_get_u64(p->img, lay->pt_varinfo));
  p->pi.uvinfo_end = p->pi.varinfo_end = p->img + sizept;
  char raw[LJ_CHUNK_MAX];
  read_str(s->pid, lay, lj_get_u64(p->img, lay->pt_chunkname), raw,
           sizeof(raw));
  /* "@file.lua" and "=name" drop their prefix; a source string stays. */
  memcpy(p->chunk, (raw[0] == '@' || raw[0] == '=') ? raw + 1 : raw,
         sizeof(raw) - 1);
  return p;
}

/* lj_debug_line: line of bytecode position pos. */
static int proto_line(const struct proto *p, uint32_t pos)
{
  const unsigned char *li = img_ptr(p, p->lineinfo);
  uint32_t w = p->numline < 256 ? 1 : p->numline < 65536 ? 2 : 4, d = 0;
  if (pos > p->pi.sizebc || !li) return -1;
  if (pos == p->pi.sizebc) return p->firstline + p->numline;
  if (pos == 0) return p->firstline;
  pos--;
  if (li + (uint64_t)(pos + 1) * w > p->img + p->sizept) return -1;
  memcpy(&d, li + (uint64_t)pos * w, w);
  return p->firstline + (int)d;
}

static int kstr(void *ud, const struct lj_protoimg *pi, uint32_t idx, char *buf,
                size_t len)
{
  struct lj_symbolizer *s = ud;
  const struct proto *p =
      (const struct proto *)((const char *)pi - offsetof(struct proto, pi));
  const struct lj_layout *lay = s->lay;
  uint64_t k = lj_get_u64(p->img, lay->pt_k), ref;
  const unsigned char *kp = img_ptr(p, k - 8 * ((uint64_t)idx + 1));
  if (!kp) return 0;
  memcpy(&ref, kp, 8);
  return read_str(s->pid, lay, ref, buf, len) == 0;
}

struct lj_symbolizer *lj_symbolizer_new(pid_t pid, const struct lj_target *t)
{
  struct lj_symbolizer *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  s->pid = pid;
  s->t = t;
  s->have_syms = proc_syms_init(&s->syms, pid) == 0;
  return s;
}

void lj_symbolizer_free(struct lj_symbolizer *s)
{
  if (!s) return;
  for (size_t i = 0; i < PCACHE_SIZE; i++) free(s->pcache[i].img);
  for (size_t i = 0; i < s->nvn; i++) {
    for (int j = 0; j < 256; j++) free(s->vn[i].ffname[j]);
    free(s->vn[i].cfn);
  }
  free(s->vn);
  if (s->have_syms) proc_syms_free(&s->syms);
  free(s);
}

/* -- Names of library functions, learnt from package.loaded -------------- */

struct tabview {
  uint64_t node;
  uint32_t hmask;
};

static int read_tab(pid_t pid, const struct lj_layout *lay, uint64_t tab,
                    struct tabview *tv)
{
  return proc_read_u64(pid, tab + lay->tab_node, &tv->node) ||
         proc_read_u32(pid, tab + lay->tab_hmask, &tv->hmask) ||
         tv->hmask >= TABLE_SCAN_MAX;
}

static uint32_t tv_itype(uint64_t v)
{
  return (uint32_t)((int64_t)v >> 47) & 0x1ffff;
}

/* Looks up string key `key` in table tab; returns the value or 0. */
static uint64_t tab_getstr(pid_t pid, const struct lj_layout *lay, uint64_t tab,
                           const char *key)
{
  struct tabview tv;
  char buf[64];
  if (read_tab(pid, lay, tab, &tv)) return 0;
  for (uint32_t i = 0; i <= tv.hmask; i++) {
    uint64_t kv[2];
    if (proc_read(pid, tv.node + (uint64_t)i * lay->node_size, kv, 16))
      return 0;
    if (tv_itype(kv[1]) == LJ_TAG_STR &&
        !read_str(pid, lay, kv[1] & LJ_GC64_PTRMASK, buf, sizeof(buf)) &&
        !strcmp(buf, key))
      return kv[0];
  }
  return 0;
}

static void learn(struct vmnames *vn, pid_t pid, const struct lj_layout *lay,
                  uint64_t fn, const char *name)
{
  uint8_t ffid;
  uint64_t cf;
  if (proc_read(pid, fn + lay->fn_ffid, &ffid, 1)) return;
  if (ffid >= 2) {
    /* The first name wins: _G's "pairs" over a library's alias. */
    if (!vn->ffname[ffid]) vn->ffname[ffid] = strdup(name);
  } else if (ffid == 1 && vn->ncfn < NAMEMAP_MAX &&
             !proc_read_u64(pid, fn + lay->fn_cf, &cf)) {
    struct fname *nf = realloc(vn->cfn, (vn->ncfn + 1) * sizeof(*nf));
    if (!nf) return;
    vn->cfn = nf;
    nf[vn->ncfn].key = cf;
    snprintf(nf[vn->ncfn].name, sizeof(nf->name), "%s", name);
    vn->ncfn++;
  }
}

/* Names every function in table tab as PREFIX.key, descending `depth`
 * levels into sub-tables (ngx.req.get_headers). */
static void learn_table(struct vmnames *vn, pid_t pid,
                        const struct lj_layout *lay, uint64_t tab,
                        const char *prefix, int depth)
{
  struct tabview tv;
  if (read_tab(pid, lay, tab, &tv)) return;
  for (uint32_t i = 0; i <= tv.hmask; i++) {
    uint64_t kv[2];
    char key[64], name[96];
    if (proc_read(pid, tv.node + (uint64_t)i * lay->node_size, kv, 16)) return;
    if (tv_itype(kv[1]) != LJ_TAG_STR ||
        read_str(pid, lay, kv[1] & LJ_GC64_PTRMASK, key, sizeof(key)))
      continue;
    if (prefix[0])
      snprintf(name, sizeof(name), "%s.%s", prefix, key);
    else
      snprintf(name, sizeof(name), "%s", key);
    if (tv_itype(kv[0]) == LJ_TAG_FUNC)
      learn(vn, pid, lay, kv[0] & LJ_GC64_PTRMASK, name);
    else if (tv_itype(kv[0]) == LJ_TAG_TAB && depth > 0 && prefix[0])
      learn_table(vn, pid, lay, kv[0] & LJ_GC64_PTRMASK, name, depth - 1);
  }
}

static struct vmnames *vm_names(struct lj_symbolizer *s, const struct lj_vm *vm)
{
  const struct lj_layout *lay = vm->lay;
  struct vmnames *vn;
  uint64_t reg, loaded, gtab;
  for (size_t i = 0; i < s->nvn; i++)
    if (s->vn[i].G == vm->G) return &s->vn[i];
  vn = realloc(s->vn, (s->nvn + 1) * sizeof(*vn));
  if (!vn) return NULL;
  s->vn = vn;
  vn = &s->vn[s->nvn++];
  memset(vn, 0, sizeof(*vn));
  vn->G = vm->G;
  if (proc_read_u64(s->pid, vm->G + lay->g_registrytv, &reg) ||
      tv_itype(reg) != LJ_TAG_TAB)
    return vn;
  loaded = tab_getstr(s->pid, lay, reg & LJ_GC64_PTRMASK, "_LOADED");
  if (tv_itype(loaded) != LJ_TAG_TAB) return vn;
  loaded &= LJ_GC64_PTRMASK;
  /* Globals first, so plain names win over library aliases. */
  gtab = tab_getstr(s->pid, lay, loaded, "_G");
  if (tv_itype(gtab) == LJ_TAG_TAB)
    learn_table(vn, s->pid, lay, gtab & LJ_GC64_PTRMASK, "", 0);
  struct tabview tv;
  if (read_tab(s->pid, lay, loaded, &tv)) return vn;
  for (uint32_t i = 0; i <= tv.hmask; i++) {
    uint64_t kv[2];
    char key[64];
    if (proc_read(s->pid, tv.node + (uint64_t)i * lay->node_size, kv, 16))
      break;
    if (tv_itype(kv[1]) != LJ_TAG_STR || tv_itype(kv[0]) != LJ_TAG_TAB ||
        read_str(s->pid, lay, kv[1] & LJ_GC64_PTRMASK, key, sizeof(key)) ||
        !strcmp(key, "_G"))
      continue;
    learn_table(vn, s->pid, lay, kv[0] & LJ_GC64_PTRMASK, key, 1);
  }
  return vn;
}

/* -- Frames --------------------------------------------------------------- */

static void set_lua(struct lj_frame *out, const struct proto *p, int line)
{
  out->kind = LJ_KIND_LUA;
  snprintf(out->chunk, sizeof(out->chunk), "%s", p->chunk);
  out->line = line;
}

static void symbolize_func(struct lj_symbolizer *s, const struct lj_vm *vm,
                           const struct lj_rawframe *rf, int line_mode,
                           struct lj_frame *out)
{
  const struct lj_layout *lay = vm->lay;
  unsigned char hdr[48];
  uint8_t ffid;
  if (proc_read(s->pid, rf->fn, hdr, sizeof(hdr))) {
    snprintf(out->name, sizeof(out->name), "<unreadable function>");
    out->kind = LJ_KIND_VM;
    return;
  }
  ffid = hdr[lay->fn_ffid];
  if (ffid == 0) { /* Lua function */
    uint64_t pc = lj_get_u64(hdr, lay->fn_pc);
    const struct proto *p = get_proto(s, lay, pc - lay->pt_size);
    int line;
    if (!p) {
      snprintf(out->name, sizeof(out->name), "<unreadable prototype>");
      out->kind = LJ_KIND_VM;
      return;
    }
    line = p->firstline;
    if (line_mode && rf->pc) {
      uint64_t bc0 = p->addr + lay->pt_size;
      int64_t pos = ((int64_t)(rf->pc - bc0)) / 4 - 1;
      if (rf->pc >= bc0 && pos >= 0 && pos < p->pi.sizebc)
        line = proto_line(p, (uint32_t)pos);
    }
    set_lua(out, p, line);
    if (p->firstline == 0) {
      snprintf(out->name, sizeof(out->name), "main chunk");
      out->what = "main";
      return;
    }
    out->what = NULL;
    if (rf->callfn && rf->callpc) {
      unsigned char chdr[48];
      const struct proto *cp;
      if (!proc_read(s->pid, rf->callfn, chdr, sizeof(chdr)) &&
          chdr[lay->fn_ffid] == 0 &&
          (cp = get_proto(s, lay,
                          lj_get_u64(chdr, lay->fn_pc) - lay->pt_size))) {
        uint64_t bc0 = cp->addr + lay->pt_size;
        int64_t pos = ((int64_t)(rf->callpc - bc0)) / 4 - 1;
        if (rf->callpc >= bc0 && pos >= 0 && pos < cp->pi.sizebc)
          out->what = lj_funcname(&cp->pi, (uint32_t)pos, kstr, s, out->name,
                                  sizeof(out->name));
      }
    }
    if (!out->what || !out->name[0]) {
      snprintf(out->name, sizeof(out->name), "<anonymous>");
      out->what = "";
    }
    return;
  }
  struct vmnames *vn = vm_names(s, vm);
  if (ffid >= 2) {
    out->kind = LJ_KIND_BUILTIN;
    if (vn && vn->ffname[ffid])
      snprintf(out->name, sizeof(out->name), "%s", vn->ffname[ffid]);
    else
      snprintf(out->name, sizeof(out->name), "builtin#%d", ffid);
    return;
  }
  /* A lua_CFunction: its ELF symbol, else the name Lua code knows it by,
   * else object+offset. */
  uint64_t cf = lj_get_u64(hdr, lay->fn_cf);
  char sym[LJ_NAME_MAX];
  out->kind = LJ_KIND_C;
  if (s->have_syms) {
    const struct proc_map *m;
    struct elf_file *ef = proc_syms_file(&s->syms, cf, &m);
    const struct elf_sym *es;
    if (ef && (es = elf_file_lookup(ef, elf_file_vaddr(ef, m, cf)))) {
      snprintf(out->name, sizeof(out->name), "%s", es->name);
      return;
    }
  }
  for (size_t i = 0; vn && i < vn->ncfn; i++)
    if (vn->cfn[i].key == cf) {
      snprintf(out->name, sizeof(out->name), "%s", vn->cfn[i].name);
      return;
    }
  if (s->have_syms && proc_syms_name(&s->syms, cf, sym, sizeof(sym)) == 0)
    snprintf(out->name, sizeof(out->name), "%s", sym);
  else
    snprintf(out->name, sizeof(out->name), "0x%llx", (unsigned long long)cf);
}

/* trace#N: its start, or the snapshot the machine code is at. */
static void symbolize_trace(struct lj_symbolizer *s, const struct lj_vm *vm,
                            const struct lj_rawframe *rf, struct lj_frame *out)
{
  const struct lj_layout *lay = vm->lay;
  uint64_t traces, T, startpt, startpc, snap, snapmap, mcode;
  uint32_t sizetrace, szmcode;
  uint16_t nsnap;
  const struct proto *p;
  out->kind = LJ_KIND_TRACE;
  snprintf(out->name, sizeof(out->name), "trace#%d", rf->aux);
  if (proc_read_u64(s->pid, vm->J + lay->J_trace, &traces) ||
      proc_read_u32(s->pid, vm->J + lay->J_sizetrace, &sizetrace) ||
      (uint32_t)rf->aux >= sizetrace ||
      proc_read_u64(s->pid, traces + 8 * (uint64_t)rf->aux, &T) || !T ||
      proc_read_u64(s->pid, T + lay->tr_startpt, &startpt) ||
      proc_read_u64(s->pid, T + lay->tr_startpc, &startpc) ||
      !(p = get_proto(s, lay, startpt & LJ_GC64_PTRMASK)))
    return;
  uint64_t bc0 = p->addr + lay->pt_size, pc = startpc;
  /* Inside the trace's machine code: the last snapshot before rip. */
  if (rf->pc && !proc_read_u64(s->pid, T + lay->tr_mcode, &mcode) &&
      !proc_read_u32(s->pid, T + lay->tr_szmcode, &szmcode) &&
      rf->pc >= mcode && rf->pc < mcode + szmcode &&
      !proc_read(s->pid, T + lay->tr_nsnap, &nsnap, 2) && nsnap < 4096 &&
      !proc_read_u64(s->pid, T + lay->tr_snap, &snap) &&
      !proc_read_u64(s->pid, T + lay->tr_snapmap, &snapmap)) {
    for (int i = nsnap - 1; i >= 0; i--) {
      unsigned char sn[16];
      uint32_t mapofs;
      uint16_t mcofs;
      uint64_t spc;
      if (proc_read(s->pid, snap + (uint64_t)i * lay->snap_size, sn,
                    lay->snap_size))
        break;
      memcpy(&mapofs, sn + lay->snap_mapofs, 4);
      memcpy(&mcofs, sn + lay->snap_mcofs, 2);
      if (mcofs > rf->pc - mcode) continue;
      if (!proc_read_u64(s->pid,
                         snapmap + 4 * ((uint64_t)mapofs + sn[lay->snap_nent]),
                         &spc) &&
          (spc >> 8) >= bc0 && (spc >> 8) < bc0 + 4ull * p->pi.sizebc)
        pc = spc >> 8;
      break;
    }
  }
  snprintf(out->chunk, sizeof(out->chunk), "%s", p->chunk);
  out->line = proto_line(p, (uint32_t)((pc - bc0) / 4));
}

void lj_symbolize(struct lj_symbolizer *s, const struct lj_vm *vm,
                  const struct lj_rawframe *rf, int line_mode,
                  struct lj_frame *out)
{
  memset(out, 0, sizeof(*out));
  s->lay = vm->lay;
  out->line = -1;
  out->what = "";
  out->L = rf->L;
  switch (rf->kind) {
  case LJ_RAW_FUNC: symbolize_func(s, vm, rf, line_mode, out); break;
  case LJ_RAW_TRACE: symbolize_trace(s, vm, rf, out); break;
  case LJ_RAW_VM:
    out->kind = LJ_KIND_VM;
    snprintf(out->name, sizeof(out->name), "%s",
             rf->aux == LJ_VMST_GC ? "GC"
             : rf->aux == LJ_VMST_INTERP || rf->aux == LJ_VMST_EXIT
                 ? "interpreter"
                 : "JIT compiler");
    break;
  case LJ_RAW_NATIVE:
    out->kind = LJ_KIND_C;
    if (!s->have_syms ||
        proc_syms_name(&s->syms, rf->pc, out->name, sizeof(out->name)))
      snprintf(out->name, sizeof(out->name), "0x%llx",
               (unsigned long long)rf->pc);
    break;
  }
}

void lj_frame_format(const struct lj_frame *f, char *buf, size_t len)
{
  switch (f->kind) {
  case LJ_KIND_LUA:
  case LJ_KIND_TRACE:
    if (f->line >= 0)
      snprintf(buf, len, "%s (%s:%d)", f->name, f->chunk, f->line);
    else
      snprintf(buf, len, "%s (%s)", f->name, f->chunk);
    break;
  case LJ_KIND_C: snprintf(buf, len, "C:%s", f->name); break;
  case LJ_KIND_BUILTIN: snprintf(buf, len, "builtin:%s", f->name); break;
  case LJ_KIND_VM: snprintf(buf, len, "[%s]", f->name); break;
  }
}

int lj_proto_where(struct lj_symbolizer *s, const struct lj_vm *vm, uint64_t pt,
                   uint64_t pc, char *chunk, size_t len, int *line)
{
  const struct proto *p;
  uint64_t bc0;
  s->lay = vm->lay;
  if (!(p = get_proto(s, vm->lay, pt))) return -1;
  bc0 = p->addr + vm->lay->pt_size;
  snprintf(chunk, len, "%s", p->chunk);
  *line = pc >= bc0 && pc < bc0 + 4ull * p->pi.sizebc
              ? proto_line(p, (uint32_t)((pc - bc0) / 4))
              : p->firstline;
  return 0;
}
