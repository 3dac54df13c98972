/*
** The fuzz input for the memory-reading targets: a synthetic process
** image. fake_mem.c serves proc_read & co (and process_vm_readv, which
** tmem.c calls directly) from it, in place of src/proc/mem.c, so the
** walker, symbolizer and heap walker run unmodified on fuzzed memory.
**
** Layout, little-endian, no padding:
**   struct image_hdr                       which VM, which registers
**   { u64 addr; u32 len; u8 bytes[len]; }  regions, up to IMAGE_MAX_REGIONS;
**                                          the last one may be cut short
*/
#ifndef LUASPY_FUZZ_IMAGE_H
#define LUASPY_FUZZ_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../../src/luajit/luajit.h"

/* No process has it (pid_max is at most 2^22): a read that escapes the
 * fake memory reaches no real process. */
#define IMAGE_PID ((pid_t)0x3ffffff0)
#define IMAGE_MAX_REGIONS 64

#define IMAGE_USE_REGS 1 /* image_hdr.flags: walk with the registers */

struct image_hdr {
  uint8_t flavor; /* enum lj_flavor; an unknown one is mapped onto 1..3 */
  uint8_t flags;
  uint8_t pad[6];
  uint64_t GG, G, J, dispatch, mainL, code_lo, code_hi;
  uint64_t rip, rsp, rbp, rbx, rdx, r14, r15;
} __attribute__((packed));

struct image {
  struct lj_vm vm;
  struct proc_regs regs;
  int use_regs;
};

/* Parses data into *img and makes it the memory proc_read sees (data must
 * stay valid meanwhile). Returns -1 if data is too short for a header. */
int image_load(const uint8_t *data, size_t size, struct image *img);

#endif
