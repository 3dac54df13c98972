/*
** ELF symbol tables of the objects mapped into a target (libelf).
** Stripped distro builds have only .dynsym; .symtab is used when present.
*/
#ifndef LUASPY_ELFSYMS_H
#define LUASPY_ELFSYMS_H

#include <stddef.h>
#include <stdint.h>

#include "proc.h"

struct elf_sym {
  uint64_t addr, size; /* link-time virtual address */
  const char *name;
};

struct elf_file {
  char path[PROC_PATH_MAX]; /* path inside the target's mount namespace */
  struct elf_sym *syms;     /* sorted by addr */
  size_t nsyms;
  char *strings; /* backing store of the names */
  /* PT_LOAD segments, to turn file offsets into link-time addresses */
  struct {
    uint64_t vaddr, offset, filesz;
  } load[16];
  int nload;
  int has_symtab;
  char build_id[41];
};

/* Opens path (as seen through /proc/PID/root). Returns NULL on failure. */
struct elf_file *elf_file_open(pid_t pid, const char *path);
void elf_file_free(struct elf_file *ef);

/* Symbol containing the link-time address, or NULL. */
const struct elf_sym *elf_file_lookup(const struct elf_file *ef,
                                      uint64_t vaddr);
/* Link-time address of a named symbol; 0 when absent. */
uint64_t elf_file_symbol(const struct elf_file *ef, const char *name);

/* Runtime address -> link-time address through the mapping containing it. */
uint64_t elf_file_vaddr(const struct elf_file *ef, const struct proc_map *m,
                        uint64_t addr);
/* Runtime load bias of the object: runtime = link-time + bias. */
uint64_t elf_file_bias(const struct elf_file *ef, const struct proc_map *m);

/* The objects of one process, opened on demand, for naming native code. */
struct proc_syms {
  pid_t pid;
  struct proc_maps maps;
  struct elf_file **files; /* parallel to maps.v; NULL when not opened */
  unsigned char *tried;
};

int proc_syms_init(struct proc_syms *ps, pid_t pid);
void proc_syms_free(struct proc_syms *ps);
/* Names native code: "SYMBOL", or "OBJECT+0xOFFSET" without a symbol.
 * Returns 0 when addr lies in a mapping, -1 otherwise. */
int proc_syms_name(struct proc_syms *ps, uint64_t addr, char *buf, size_t len);
/* The elf_file of the mapping containing addr, or NULL. */
struct elf_file *proc_syms_file(struct proc_syms *ps, uint64_t addr,
                                const struct proc_map **map);

#endif
