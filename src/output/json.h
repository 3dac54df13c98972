/*
** A small streaming JSON writer for the --json output of every command.
** Commas and the ": " after keys are placed automatically; strings are
** escaped fully (control characters, invalid UTF-8 as U+FFFD), so any
** string from the target can be passed as is.
**
** Output is one line, with ", " and ": " between items as in the
** examples of docs/. Calls that do not form one JSON value (a key
** outside an object, a value without its key, unbalanced ends, nesting
** deeper than JSON_MAX_DEPTH) stop the output; json_done reports them.
*/
#ifndef LUASPY_JSON_H
#define LUASPY_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

struct json;

/* NULL (after a message) when out of memory. */
struct json *json_new(FILE *out);
/* 0 if one complete value was written and out has had no error
 * (flushed); else -1 after a message. Writes no line break. */
int json_done(struct json *j);
void json_free(struct json *j);

void json_begin_obj(struct json *j);
void json_end_obj(struct json *j);
void json_begin_arr(struct json *j);
void json_end_arr(struct json *j);
void json_key(struct json *j, const char *key);

void json_str(struct json *j, const char *s); /* NULL writes null */
void json_int(struct json *j, int64_t v);
void json_uint(struct json *j, uint64_t v);
void json_double(struct json *j, double v); /* NaN, infinities: null */
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

#endif
