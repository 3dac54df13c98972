/*
** ELF symbols via libelf.
*/
#define _GNU_SOURCE
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfsyms.h"

/* Several names often share one address (libm's sqrt, f32xsqrtf64 and
 * __sqrt_finite): the one a programmer wrote is usually the shortest
 * without a leading underscore, so that one sorts first. */
static int name_rank(const char *a, const char *b)
{
  int ua = a[0] == '_', ub = b[0] == '_';
  size_t la = strlen(a), lb = strlen(b);
  if (ua != ub) return ua - ub;
  if (la != lb) return la < lb ? -1 : 1;
  return strcmp(a, b);
}

static int sym_cmp(const void *a, const void *b)
{
  const struct elf_sym *x = a, *y = b;
  if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
  return name_rank(x->name, y->name);
}

/* Loads the function symbols of one symbol table section. */
static int load_symtab(struct elf_file *ef, Elf *elf, Elf_Scn *scn,
                       GElf_Shdr *sh)
{
  Elf_Data *data = elf_getdata(scn, NULL);
  size_t n, i, strbytes = 0, k = 0;
  char *sp;
  if (!data || sh->sh_entsize == 0) return -1;
  n = sh->sh_size / sh->sh_entsize;
  for (i = 0; i < n; i++) {
    GElf_Sym s;
    const char *nm;
    if (!gelf_getsym(data, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
        s.st_value == 0 || !(nm = elf_strptr(elf, sh->sh_link, s.st_name)))
      continue;
    strbytes += strlen(nm) + 1;
    k++;
  }
  if (k == 0) return -1;
  ef->syms = calloc(k, sizeof(*ef->syms));
  ef->strings = malloc(strbytes);
  if (!ef->syms || !ef->strings) return -1;
  sp = ef->strings;
  for (i = 0; i < n && ef->nsyms < k; i++) {
    GElf_Sym s;
    const char *nm;
    size_t l;
    if (!gelf_getsym(data, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
        s.st_value == 0 || !(nm = elf_strptr(elf, sh->sh_link, s.st_name)))
      continue;
    l = strlen(nm) + 1;
    memcpy(sp, nm, l);
    ef->syms[ef->nsyms].addr = s.st_value;
    ef->syms[ef->nsyms].size = s.st_size;
    ef->syms[ef->nsyms].name = sp;
    ef->nsyms++;
    sp += l;
  }
  qsort(ef->syms, ef->nsyms, sizeof(*ef->syms), sym_cmp);
  return 0;
}

static void read_build_id(struct elf_file *ef, Elf *elf)
{
  Elf_Scn *scn = NULL;
  while ((scn = elf_nextscn(elf, scn))) {
    GElf_Shdr sh;
    Elf_Data *d;
    GElf_Nhdr nh;
    size_t off = 0, noff, doff;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE) continue;
    if (!(d = elf_getdata(scn, NULL))) continue;
    while ((off = gelf_getnote(d, off, &nh, &noff, &doff)) > 0) {
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
          !memcmp((char *)d->d_buf + noff, "GNU", 4)) {
        const unsigned char *p = (unsigned char *)d->d_buf + doff;
        for (size_t i = 0; i < nh.n_descsz && i < 20; i++)
          sprintf(ef->build_id + 2 * i, "%02x", p[i]);
        return;
      }
    }
  }
}

#define DEBUGDATA_MAX (64u << 20)

/* Fedora-style MiniDebugInfo: an xz-compressed ELF in .gnu_debugdata whose
 * .symtab names the static functions that the stripped file lacks. */
static void load_debugdata(struct elf_file *ef, Elf *elf)
{
  Elf_Scn *scn = NULL;
  size_t shstrndx;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return;
  while ((scn = elf_nextscn(elf, scn))) {
    GElf_Shdr sh;
    const char *name;
    Elf_Data *d;
    if (!gelf_getshdr(scn, &sh) ||
        !(name = elf_strptr(elf, shstrndx, sh.sh_name)) ||
        strcmp(name, ".gnu_debugdata") || !(d = elf_rawdata(scn, NULL)))
      continue;
    uint64_t memlimit = DEBUGDATA_MAX;
    size_t inpos = 0, outpos = 0, cap = DEBUGDATA_MAX;
    unsigned char *out = malloc(cap);
    Elf *inner;
    Elf_Scn *is = NULL;
    if (!out) return;
    if (lzma_stream_buffer_decode(&memlimit, 0, NULL, d->d_buf, &inpos,
                                  d->d_size, out, &outpos, cap) != LZMA_OK ||
        !(inner = elf_memory((char *)out, outpos))) {
      free(out);
      return;
    }
    while ((is = elf_nextscn(inner, is))) {
      GElf_Shdr ish;
      if (gelf_getshdr(is, &ish) && ish.sh_type == SHT_SYMTAB &&
          load_symtab(ef, inner, is, &ish) == 0) {
        ef->has_symtab = 1;
        break;
      }
    }
    elf_end(inner);
    free(out);
    return;
  }
}

struct elf_file *elf_file_open(pid_t pid, const char *path)
{
  char full[PROC_PATH_MAX + 64];
  struct elf_file *ef;
  Elf_Scn *scn = NULL, *dyn = NULL, *sym = NULL;
  GElf_Shdr dynsh, symsh;
  size_t phnum;
  Elf *elf;
  int fd;
  if (path[0] != '/') return NULL;
  elf_version(EV_CURRENT);
  proc_root_path(pid, path, full, sizeof(full));
  if ((fd = open(full, O_RDONLY | O_CLOEXEC)) < 0 &&
      (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return NULL;
  if (!(elf = elf_begin(fd, ELF_C_READ_MMAP, NULL)) ||
      elf_kind(elf) != ELF_K_ELF) {
    if (elf) elf_end(elf);
    close(fd);
    return NULL;
  }
  ef = calloc(1, sizeof(*ef));
  if (!ef) goto out;
  snprintf(ef->path, sizeof(ef->path), "%s", path);
  if (elf_getphdrnum(elf, &phnum) == 0) {
    for (size_t i = 0; i < phnum && ef->nload < 16; i++) {
      GElf_Phdr ph;
      if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
        ef->load[ef->nload].vaddr = ph.p_vaddr;
        ef->load[ef->nload].offset = ph.p_offset;
        ef->load[ef->nload].filesz = ph.p_filesz;
        ef->nload++;
      }
    }
  }
  while ((scn = elf_nextscn(elf, scn))) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    if (sh.sh_type == SHT_SYMTAB) sym = scn, symsh = sh;
    if (sh.sh_type == SHT_DYNSYM) dyn = scn, dynsh = sh;
  }
  /* .symtab is a superset of .dynsym when present. */
  if (sym && load_symtab(ef, elf, sym, &symsh) == 0) ef->has_symtab = 1;
  if (!ef->has_symtab) load_debugdata(ef, elf);
  if (!ef->has_symtab && dyn) load_symtab(ef, elf, dyn, &dynsh);
  read_build_id(ef, elf);
out:
  elf_end(elf);
  close(fd);
  return ef;
}

void elf_file_free(struct elf_file *ef)
{
  if (!ef) return;
  free(ef->syms);
  free(ef->strings);
  free(ef);
}

const struct elf_sym *elf_file_lookup(const struct elf_file *ef, uint64_t vaddr)
{
  size_t lo = 0, hi = ef->nsyms;
  const struct elf_sym *s;
  while (lo < hi) { /* last symbol with addr <= vaddr */
    size_t mid = (lo + hi) / 2;
    if (ef->syms[mid].addr <= vaddr)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0) return NULL;
  s = &ef->syms[lo - 1];
  while (s > ef->syms && s[-1].addr == s->addr) s--; /* the preferred alias */
  /* Sizeless symbols (hand-written assembly) cover up to 64 KiB. */
  if (vaddr < s->addr + (s->size ? s->size : 0x10000)) return s;
  return NULL;
}

uint64_t elf_file_symbol(const struct elf_file *ef, const char *name)
{
  for (size_t i = 0; i < ef->nsyms; i++)
    if (!strcmp(ef->syms[i].name, name)) return ef->syms[i].addr;
  return 0;
}

uint64_t elf_file_vaddr(const struct elf_file *ef, const struct proc_map *m,
                        uint64_t addr)
{
  uint64_t off = addr - m->lo + m->offset;
  for (int i = 0; i < ef->nload; i++)
    if (off >= ef->load[i].offset &&
        off < ef->load[i].offset + ef->load[i].filesz)
      return off - ef->load[i].offset + ef->load[i].vaddr;
  return off;
}

uint64_t elf_file_bias(const struct elf_file *ef, const struct proc_map *m)
{
  return m->lo - elf_file_vaddr(ef, m, m->lo);
}

int proc_syms_init(struct proc_syms *ps, pid_t pid)
{
  memset(ps, 0, sizeof(*ps));
  ps->pid = pid;
  if (proc_maps_read(pid, &ps->maps) != 0) return -1;
  ps->files = calloc(ps->maps.n, sizeof(*ps->files));
  ps->tried = calloc(ps->maps.n, 1);
  if (!ps->files || !ps->tried) {
    proc_syms_free(ps);
    return -1;
  }
  return 0;
}

void proc_syms_free(struct proc_syms *ps)
{
  for (size_t i = 0; ps->files && i < ps->maps.n; i++) {
    /* Several mappings of one object share its elf_file. */
    struct elf_file *ef = ps->files[i];
    if (!ef) continue;
    for (size_t j = i; j < ps->maps.n; j++)
      if (ps->files[j] == ef) ps->files[j] = NULL;
    elf_file_free(ef);
  }
  free(ps->files);
  free(ps->tried);
  proc_maps_free(&ps->maps);
}

struct elf_file *proc_syms_file(struct proc_syms *ps, uint64_t addr,
                                const struct proc_map **map)
{
  const struct proc_map *m = proc_maps_find(&ps->maps, addr);
  size_t i;
  if (map) *map = m;
  if (!m || m->path[0] != '/') return NULL;
  i = (size_t)(m - ps->maps.v);
  if (!ps->tried[i]) {
    ps->tried[i] = 1;
    for (size_t j = 0; j < ps->maps.n; j++)
      if (ps->files[j] && !strcmp(ps->maps.v[j].path, m->path)) {
        ps->files[i] = ps->files[j];
        break;
      }
    if (!ps->files[i]) ps->files[i] = elf_file_open(ps->pid, m->path);
  }
  return ps->files[i];
}

int proc_syms_name(struct proc_syms *ps, uint64_t addr, char *buf, size_t len)
{
  const struct proc_map *m;
  struct elf_file *ef = proc_syms_file(ps, addr, &m);
  const struct elf_sym *s;
  const char *base;
  if (!m) {
    snprintf(buf, len, "0x%llx", (unsigned long long)addr);
    return -1;
  }
  if (ef && (s = elf_file_lookup(ef, elf_file_vaddr(ef, m, addr)))) {
    snprintf(buf, len, "%s", s->name);
    return 0;
  }
  base = strrchr(m->path, '/');
  base = base ? base + 1 : (m->path[0] ? m->path : "anon");
  snprintf(buf, len, "%s+0x%llx", base,
           (unsigned long long)(ef ? elf_file_vaddr(ef, m, addr)
                                   : addr - m->lo + m->offset));
  return 0;
}
