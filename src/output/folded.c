/*
** Folded stacks, both ways.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "folded.h"

/* What may not appear inside a frame of a folded line: the separators. */
#define FOLDED_SPECIAL ";\n\r"

static void put_frame(const char *s, FILE *out)
{
  for (;;) {
    size_t n = strcspn(s, FOLDED_SPECIAL);
    fwrite(s, 1, n, out);
    if (!s[n]) return;
    putc(s[n] == ';' ? ',' : ' ', out);
    s += n + 1;
  }
}

static int put_stack(const char *const *frames, size_t nframes, uint64_t weight,
                     void *arg)
{
  FILE *out = arg;

  for (size_t i = 0; i < nframes; i++) {
    if (i) putc(';', out);
    put_frame(frames[i], out);
  }
  fprintf(out, " %" PRIu64 "\n", weight);
  return ferror(out) ? -1 : 0; /* stop early on a full disk */
}

int folded_write(const struct profile *p, FILE *out)
{
  return profile_foreach_stack(p, put_stack, out);
}

/* Splits "a;b;c" in place into frames, growing *v as needed. */
static int split(char *stack, char ***v, size_t *cap, size_t *n)
{
  *n = 0;
  for (char *s = stack;; s++) {
    if (*n == *cap) {
      size_t c = *cap ? *cap * 2 : 64;
      char **nv = realloc(*v, c * sizeof(*nv));
      if (!nv) {
        fputs("luaspy: out of memory\n", stderr);
        return -1;
      }
      *v = nv;
      *cap = c;
    }
    (*v)[(*n)++] = s;
    if (!(s = strchr(s, ';'))) return 0;
    *s = '\0';
  }
}

/* Parses one line, without its line break, into stack and count.
 * Returns an error message, or NULL. */
static const char *parse_line(char *line, size_t len, char **stack,
                              uint64_t *count)
{
  char *num = line + len, *end;

  if (strlen(line) != len) return "holds a NUL byte";
  /* The count follows the last blank: frames may hold blanks. */
  while (num > line && num[-1] != ' ' && num[-1] != '\t') num--;
  if (num - line < 2) /* no blank, or no stack before it */
    return "expected 'FRAME;FRAME;... COUNT'";
  if (*num < '0' || *num > '9') return "the count is not a whole number";
  errno = 0;
  *count = strtoull(num, &end, 10);
  if (*end) return "the count is not a whole number";
  if (errno == ERANGE) return "the count is too large";
  num[-1] = '\0';
  *stack = line;
  return NULL;
}

int profile_read_folded(struct profile *p, FILE *in)
{
  return profile_read_folded_file(p, in, NULL);
}

/* Where a bad line is: "line N", or "FILE:N" when the file is named. */
static void bad_line(const char *name, uintmax_t lineno, const char *err)
{
  if (name)
    fprintf(stderr, "luaspy: %s:%ju: %s\n", name, lineno, err);
  else
    fprintf(stderr, "luaspy: line %ju: %s\n", lineno, err);
}

int profile_read_folded_file(struct profile *p, FILE *in, const char *name)
{
  char *line = NULL, **frames = NULL;
  size_t line_cap = 0, frames_cap = 0, nframes;
  ssize_t len;
  uintmax_t lineno = 0;
  int ret = 0;

  while ((len = getline(&line, &line_cap, in)) >= 0) {
    const char *err;
    char *stack;
    uint64_t count;

    lineno++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                       line[len - 1] == ' ' || line[len - 1] == '\t'))
      line[--len] = '\0';
    if (len == 0) continue;
    if ((err = parse_line(line, (size_t)len, &stack, &count))) {
      bad_line(name, lineno, err);
      ret = -1;
      break;
    }
    if (count > UINT64_MAX - profile_total(p)) {
      bad_line(name, lineno, "the total count passes 2^64");
      ret = -1;
      break;
    }
    if (split(stack, &frames, &frames_cap, &nframes) < 0 ||
        profile_add(p, (const char *const *)frames, nframes, count) < 0) {
      ret = -1;
      break;
    }
  }
  if (ret == 0 && ferror(in)) {
    fprintf(stderr, "luaspy: reading %s: %s\n", name ? name : "stacks",
            strerror(errno));
    ret = -1;
  }
  free(line);
  free(frames);
  return ret;
}
