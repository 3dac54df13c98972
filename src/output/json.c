/*
** JSON writer: a stack of open containers decides where commas go.
*/
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "utf8.h"

struct json {
  FILE *out;
  int depth;                   /* open containers */
  bool object[JSON_MAX_DEPTH]; /* the container at a depth is an object */
  bool items[JSON_MAX_DEPTH];  /* it has an item already: next needs ", " */
  bool key;                    /* a key was written, its value is due */
  bool complete;               /* the top-level value is written */
  const char *misuse;          /* first call that broke the structure */
};

struct json *json_new(FILE *out)
{
  struct json *j = calloc(1, sizeof(*j));

  if (!j) {
    fputs("luaspy: out of memory\n", stderr);
    return NULL;
  }
  j->out = out;
  return j;
}

void json_free(struct json *j)
{
  free(j);
}

int json_done(struct json *j)
{
  if (!j->misuse && (j->depth > 0 || !j->complete))
    j->misuse = "value not complete";
  if (j->misuse) {
    fprintf(stderr, "luaspy: internal error: bad JSON output (%s)\n",
            j->misuse);
    return -1;
  }
  if (fflush(j->out) != 0 || ferror(j->out)) {
    fprintf(stderr, "luaspy: writing JSON: %s\n", strerror(errno));
    return -1;
  }
  return 0;
}

/* Prepares for a value; false if one may not come here. */
static bool value(struct json *j)
{
  if (j->misuse) return false;
  if (j->depth == 0) {
    if (j->complete) j->misuse = "second top-level value";
  } else if (j->object[j->depth - 1]) {
    if (!j->key) j->misuse = "object value without a key";
    j->key = false;
  } else if (j->items[j->depth - 1]) {
    fputs(", ", j->out);
  }
  if (j->misuse) return false;
  if (j->depth == 0)
    j->complete = true;
  else
    j->items[j->depth - 1] = true;
  return true;
}

static void put_escaped(FILE *out, const char *s)
{
  putc('"', out);
  while (*s) {
    uint32_t cp;
    size_t n = utf8_decode(s, &cp);
    if (n == 0) {
      fputs("\\ufffd", out);
      s++;
      continue;
    }
    switch (cp) {
    case '"': fputs("\\\"", out); break;
    case '\\': fputs("\\\\", out); break;
    case '\b': fputs("\\b", out); break;
    case '\f': fputs("\\f", out); break;
    case '\n': fputs("\\n", out); break;
    case '\r': fputs("\\r", out); break;
    case '\t': fputs("\\t", out); break;
    default:
      if (cp < 0x20)
        fprintf(out, "\\u%04" PRIx32, cp);
      else
        fwrite(s, 1, n, out);
    }
    s += n;
  }
  putc('"', out);
}

static void begin(struct json *j, bool object)
{
  if (!value(j)) return;
  if (j->depth == JSON_MAX_DEPTH) {
    j->misuse = "nested too deep";
    return;
  }
  j->object[j->depth] = object;
  j->items[j->depth] = false;
  j->depth++;
  putc(object ? '{' : '[', j->out);
}

static void end(struct json *j, bool object)
{
  if (j->misuse) return;
  if (j->depth == 0 || j->object[j->depth - 1] != object || j->key) {
    j->misuse = object ? "unmatched end of object" : "unmatched end of array";
    return;
  }
  j->depth--;
  putc(object ? '}' : ']', j->out);
}

void json_begin_obj(struct json *j)
{
  begin(j, true);
}
void json_end_obj(struct json *j)
{
  end(j, true);
}
void json_begin_arr(struct json *j)
{
  begin(j, false);
}
void json_end_arr(struct json *j)
{
  end(j, false);
}

void json_key(struct json *j, const char *key)
{
  if (j->misuse) return;
  if (j->depth == 0 || !j->object[j->depth - 1] || j->key) {
    j->misuse = "key outside an object or without a value";
    return;
  }
  if (j->items[j->depth - 1]) fputs(", ", j->out);
  put_escaped(j->out, key);
  fputs(": ", j->out);
  j->key = true;
}

void json_str(struct json *j, const char *s)
{
  if (!s)
    json_null(j);
  else if (value(j))
    put_escaped(j->out, s);
}

void json_int(struct json *j, int64_t v)
{
  if (value(j)) fprintf(j->out, "%" PRId64, v);
}

void json_uint(struct json *j, uint64_t v)
{
  if (value(j)) fprintf(j->out, "%" PRIu64, v);
}

void json_double(struct json *j, double v)
{
  char buf[32];

  if (!isfinite(v)) {
    json_null(j);
    return;
  }
  if (!value(j)) return;
  /* The shortest of %.15g..%.17g that reads back as the same double. */
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, sizeof(buf), "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  fputs(buf, j->out);
}

void json_bool(struct json *j, bool v)
{
  if (value(j)) fputs(v ? "true" : "false", j->out);
}

void json_null(struct json *j)
{
  if (value(j)) fputs("null", j->out);
}
