/*
** UTF-8 decoding as RFC 3629 defines it, strictly: a lenient decoder
** would let overlong or surrogate forms through to XML and JSON readers
** that reject them.
*/
#include "utf8.h"

static int cont(unsigned char c)
{
  return (c & 0xc0) == 0x80;
}

size_t utf8_decode(const char *str, uint32_t *cp)
{
  const unsigned char *s = (const unsigned char *)str;
  unsigned char c = s[0];
  uint32_t v, min;
  size_t n;

  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2, v = c & 0x1f, min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3, v = c & 0x0f, min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0; /* a stray continuation byte, 0xc0, 0xc1 or 0xf5..0xff */
  }
  /* Checking each byte before reading the next keeps us within a NUL-
   * terminated string: NUL is not a continuation byte. */
  for (size_t i = 1; i < n; i++) {
    if (!cont(s[i])) return 0;
    v = v << 6 | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return n;
}

size_t utf8_cut(const char *str, size_t n)
{
  const unsigned char *s = (const unsigned char *)str;
  size_t i = n;

  /* A character is at most 4 bytes: step back over at most 3
   * continuation bytes; more than that is not UTF-8 anyway. */
  while (i > 0 && n - i < 3 && cont(s[i])) i--;
  return cont(s[i]) ? n : i;
}
