/*
** The address range of a LuaJIT VM's assembler code in a target process.
*/
#ifndef LUASPY_VMCODE_H
#define LUASPY_VMCODE_H

#include <stdint.h>
#include <sys/types.h>

/* The VM code containing addr (give dispatch[0], lj_vm_asm_begin): its
 * runtime range [*lo, *hi). Returns 0, or -1 when the object's unwind
 * tables do not say. */
int vm_code_range(pid_t pid, uint64_t addr, uint64_t *lo, uint64_t *hi);

#endif
