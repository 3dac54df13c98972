/*
** Kernel symbols from /proc/kallsyms, to name kernel stack addresses.
*/
#ifndef LUASPY_KSYMS_H
#define LUASPY_KSYMS_H

#include <stdint.h>

struct ksyms;

/* Reads /proc/kallsyms. NULL if unreadable or empty (addresses hidden
 * by kptr_restrict read as 0). */
struct ksyms *ksyms_load(void);
void ksyms_free(struct ksyms *ks);
/* The function containing addr, or NULL. */
const char *ksyms_name(const struct ksyms *ks, uint64_t addr);

#endif
