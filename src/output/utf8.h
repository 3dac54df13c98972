/*
** UTF-8 checks for strings that come from the target: frame names are
** whatever bytes a chunk name or symbol held, and every writer must turn
** them into text its format accepts.
*/
#ifndef LUASPY_UTF8_H
#define LUASPY_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_REPLACEMENT 0xfffd /* U+FFFD, stands in for bad bytes */

/* Decodes the character at s into *cp and returns its length (1 to 4),
 * or 0 if the bytes there are not well-formed UTF-8 (overlong forms,
 * surrogates and values past U+10FFFF included); the caller then skips
 * one byte. Stops at a NUL byte, so it never reads past a C string. */
size_t utf8_decode(const char *s, uint32_t *cp);

/* The largest n' <= n that does not split a character of s, for a
 * string longer than n. */
size_t utf8_cut(const char *s, size_t n);

#endif
