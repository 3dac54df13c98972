/*
** Strings to dense numbers: the first string a map sees is 0, the next
** new one 1, and so on. Writers use it to give frames, file names and
** call paths the indices their formats refer to them by (pprof's string
** table and ids, speedscope's frame list).
*/
#ifndef LUASPY_STRMAP_H
#define LUASPY_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap;

/* NULL after a message when out of memory. */
struct strmap *strmap_new(void);
void strmap_free(struct strmap *m);

/* The number of the len bytes at s (no NUL needed), made if new.
 * Returns 1 if new, 0 if known, -1 after a message. */
int strmap_id(struct strmap *m, const char *s, size_t len, uint32_t *id);

/* The number of s without adding it: 0, or -1 if s is not there. */
int strmap_find(const struct strmap *m, const char *s, size_t len,
                uint32_t *id);

/* FNV-1a of len bytes: the string hash of every luaspy table. */
uint64_t str_hash(const char *s, size_t len);

uint32_t strmap_count(const struct strmap *m);
const char *strmap_key(const struct strmap *m, uint32_t id); /* ends in NUL */

#endif
