/*
** System call names of x86_64, as the kernel spells them (mmap, clone).
*/
#ifndef LUASPY_SYSNAMES_H
#define LUASPY_SYSNAMES_H

/* The name of syscall nr, or NULL if unknown. */
const char *sysname(long nr);
/* The number of a named syscall, or -1. */
long sysnr(const char *name);

#endif
