/*
** Frame strings back into name, chunk and line. The split is at the
** first " (": names come from identifiers and table keys, while chunk
** names such as [string "f (x)"] often hold parentheses themselves.
*/
#include <string.h>

#include "frame.h"

static int has_prefix(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

void frame_parse(const char *s, struct frame_parts *fp)
{
  size_t len = strlen(s);
  const char *open = strstr(s, " (");
  const char *in, *end, *colon;

  *fp = (struct frame_parts){s, NULL, len, 0, 0};
  if (!open || open == s || len < 2 || s[len - 1] != ')' ||
      has_prefix(s, "C:") || has_prefix(s, "builtin:") || s[0] == '[')
    return;
  in = open + 2;
  end = s + len - 1;
  if (in == end) return;
  fp->name_len = (size_t)(open - s);
  fp->chunk = in;
  fp->chunk_len = (size_t)(end - in);
  /* CHUNK:LINE, the line all digits; else the whole of it is the chunk. */
  colon = end;
  while (colon > in && colon[-1] >= '0' && colon[-1] <= '9') colon--;
  if (colon < end && colon > in + 1 && colon[-1] == ':' && end - colon <= 9) {
    long line = 0;
    for (const char *d = colon; d < end; d++) line = line * 10 + (*d - '0');
    fp->chunk_len = (size_t)(colon - 1 - in);
    fp->line = line;
  }
}
