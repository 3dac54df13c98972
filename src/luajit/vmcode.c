/*
** Where a VM's hand-written assembler code lies (lj_vm_asm_begin up to its
** end): there, and only there, rdx and rbx hold BASE and PC. The rest of
** the LuaJIT object is compiled C (lj_tab_*, lj_str_*, ...), called by the
** interpreter with BASE and PC saved in memory and the registers reused.
**
** The dispatch table's first entry is lj_vm_asm_begin, and buildvm gives
** the whole assembler blob a single FDE in .eh_frame, so the FDE covering
** that address is the range. It is found through .eh_frame_hdr's sorted
** table, as an unwinder would. Stripped objects keep both sections.
*/
#define _GNU_SOURCE
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>

#include "../proc/elfsyms.h"
#include "vmcode.h"

/* The encodings every x86_64 toolchain (and buildvm) writes: the header's
 * eh_frame_ptr pcrel|sdata4, fde_count udata4, table datarel|sdata4; an
 * FDE's pc_begin pcrel|sdata4. Others are not decoded. */
#define EH_HDR_VERSION 1
#define EH_PCREL_SDATA4 0x1b
#define EH_UDATA4 0x03
#define EH_DATAREL_SDATA4 0x3b

struct section {
  uint64_t addr;
  const unsigned char *p;
  size_t size;
};

static int find_section(Elf *e, const char *name, struct section *sec)
{
  size_t shstrndx;
  Elf_Scn *scn = NULL;
  if (elf_getshdrstrndx(e, &shstrndx)) return -1;
  while ((scn = elf_nextscn(e, scn))) {
    GElf_Shdr sh;
    Elf_Data *d;
    const char *n;
    if (!gelf_getshdr(scn, &sh) || !(n = elf_strptr(e, shstrndx, sh.sh_name)) ||
        strcmp(n, name))
      continue;
    if (!(d = elf_getdata(scn, NULL)) || !d->d_buf) return -1;
    sec->addr = sh.sh_addr;
    sec->p = d->d_buf;
    sec->size = d->d_size;
    return 0;
  }
  return -1;
}

static int32_t s32(const unsigned char *p)
{
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* The FDE range [*lo, *hi) (link-time addresses) covering vaddr. */
static int fde_range(Elf *e, uint64_t vaddr, uint64_t *lo, uint64_t *hi)
{
  struct section hdr, eh;
  uint32_t count, a = 0, b;
  const unsigned char *tab;
  if (find_section(e, ".eh_frame_hdr", &hdr) ||
      find_section(e, ".eh_frame", &eh) || hdr.size < 12 ||
      hdr.p[0] != EH_HDR_VERSION || hdr.p[1] != EH_PCREL_SDATA4 ||
      hdr.p[2] != EH_UDATA4 || hdr.p[3] != EH_DATAREL_SDATA4)
    return -1;
  memcpy(&count, hdr.p + 8, 4);
  tab = hdr.p + 12;
  if (count == 0 || (hdr.size - 12) / 8 < count) return -1;
  /* The last entry whose initial location is <= vaddr. */
  b = count;
  while (b - a > 1) {
    uint32_t m = a + (b - a) / 2;
    if (hdr.addr + s32(tab + 8 * m) <= vaddr)
      a = m;
    else
      b = m;
  }
  uint64_t start = hdr.addr + s32(tab + 8 * a);
  uint64_t fde = hdr.addr + s32(tab + 8 * a + 4);
  if (start > vaddr || fde < eh.addr || fde - eh.addr + 16 > eh.size) return -1;
  const unsigned char *f = eh.p + (fde - eh.addr);
  uint32_t range;
  memcpy(&range, f + 12, 4);
  /* pc_begin (pcrel from its own field) must agree with the table. */
  if (fde + 8 + s32(f + 8) != start || vaddr >= start + range) return -1;
  *lo = start;
  *hi = start + range;
  return 0;
}

int vm_code_range(pid_t pid, uint64_t addr, uint64_t *lo, uint64_t *hi)
{
  struct proc_maps maps;
  const struct proc_map *m;
  struct elf_file *ef = NULL;
  char path[PROC_PATH_MAX + 64];
  Elf *e = NULL;
  int fd = -1, rc = -1;
  if (proc_maps_read(pid, &maps)) return -1;
  if (!(m = proc_maps_find(&maps, addr)) || m->path[0] != '/' ||
      !(ef = elf_file_open(pid, m->path)))
    goto out;
  proc_root_path(pid, m->path, path, sizeof(path));
  if (elf_version(EV_CURRENT) == EV_NONE || (fd = open(path, O_RDONLY)) < 0 ||
      !(e = elf_begin(fd, ELF_C_READ, NULL)))
    goto out;
  uint64_t bias = elf_file_bias(ef, m);
  if (!fde_range(e, addr - bias, lo, hi)) {
    *lo += bias;
    *hi += bias;
    rc = 0;
  }
out:
  if (e) elf_end(e);
  if (fd >= 0) close(fd);
  elf_file_free(ef);
  proc_maps_free(&maps);
  return rc;
}
