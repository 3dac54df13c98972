/*
** Option values shared by `luaspy offcpu` and `luaspy syscalls`.
*/
#ifndef LUASPY_TARGS_H
#define LUASPY_TARGS_H

#include <stdint.h>
#include <sys/types.h>

/* A positive number of seconds, as "30" or "2.5". Returns 0 or -1. */
int targs_seconds(const char *s, double *v);
/* A whole number in [0, max]. Returns 0 or -1. */
int targs_uint(const char *s, uint64_t max, uint64_t *v);
/* One process ID. Returns 0 or -1. */
int targs_pid(const char *s, pid_t *pid);
/* Whether path can be written ("-" is stdout); else one error line. */
int targs_writable(const char *cmd, const char *path);

#endif
