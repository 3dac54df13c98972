/*
** Unit tests of src/output: aggregation, folded stacks both ways, the
** bounds and escaping of untrusted frame strings, JSON, that write
** errors are reported, frame strings split for pprof and speedscope, and
** every writer on deep stacks (under the sanitizers). Prints "ok NAME" or "FAIL
*NAME: why" per case.
**
**   test_output            run the cases; exit 1 if any failed
**   test_output --svg OUT  write the flame graph the browser check loads
*/
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diff_svg.h"
#include "folded.h"
#include "frame.h"
#include "json.h"
#include "pprof.h"
#include "profile.h"
#include "speedscope.h"
#include "strmap.h"
#include "svg.h"
#include "utf8.h"

static const char *test_name;
static int test_failed, nfailed;

static void begin(const char *name)
{
  test_name = name;
  test_failed = 0;
}

static void end(void)
{
  if (!test_failed) printf("ok %s\n", test_name);
  fflush(stdout);
}

/* Only a case's first failure is shown: later ones tend to follow. */
static void check_at(int ok, const char *what, int line)
{
  if (ok || test_failed) return;
  printf("FAIL %s: %s (test_output.c:%d)\n", test_name, what, line);
  test_failed = 1;
  nfailed++;
}
#define CHECK(cond) check_at(!!(cond), #cond, __LINE__)

/* stderr into a temporary file, to check messages. */
static int saved_stderr = -1;
static FILE *captured;

static void capture_stderr(void)
{
  fflush(stderr);
  captured = tmpfile();
  saved_stderr = dup(2);
  dup2(fileno(captured), 2);
}

/* The captured text (static buffer), stderr restored. */
static const char *captured_text(void)
{
  static char buf[4096];
  size_t n;

  fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  rewind(captured);
  n = fread(buf, 1, sizeof(buf) - 1, captured);
  buf[n] = '\0';
  fclose(captured);
  return buf;
}

/* A writer's output as a string (malloc'ed). */
struct mem {
  char *buf;
  size_t len;
  FILE *f;
};

static FILE *mem_open(struct mem *m)
{
  m->buf = NULL;
  m->len = 0;
  return m->f = open_memstream(&m->buf, &m->len);
}

static char *mem_close(struct mem *m)
{
  fclose(m->f);
  return m->buf;
}

static int add(struct profile *p, uint64_t weight, ...)
{
  const char *frames[64];
  size_t n = 0;
  va_list ap;

  va_start(ap, weight);
  while ((frames[n] = va_arg(ap, const char *))) n++;
  va_end(ap);
  return profile_add(p, frames, n, weight);
}

static char *folded_of(const struct profile *p)
{
  struct mem m;
  folded_write(p, mem_open(&m));
  return mem_close(&m);
}

static int valid_utf8(const char *s)
{
  uint32_t cp;
  size_t n;

  for (; *s; s += n)
    if (!(n = utf8_decode(s, &cp))) return 0;
  return 1;
}

static size_t count_of(const char *hay, const char *needle)
{
  size_t n = 0, len = strlen(needle);
  /* Not strstr: ASan's checks each call scans all of hay, quadratic. */
  for (const char *s = hay; *s; s++) n += strncmp(s, needle, len) == 0;
  return n;
}

/*
** Aggregation and iteration.
*/

static void test_aggregate(void)
{
  struct profile *p = profile_new(NULL);
  char a[] = "a", b[] = "b";
  const char *stack[] = {"main", a, b};
  char *out;

  begin("aggregate");
  CHECK(strcmp(profile_unit(p), "samples") == 0);
  CHECK(add(p, 3, "main", "a", "b", NULL) == 0);
  CHECK(profile_add(p, stack, 3, 2) == 0); /* other pointers, same names */
  a[0] = 'x';                              /* interned: copies kept */
  b[0] = 'y';
  CHECK(add(p, 1, "main", "a", NULL) == 0);
  CHECK(add(p, 4, "main", "c", NULL) == 0);
  CHECK(add(p, 1, "other", NULL) == 0);
  CHECK(add(p, 0, "zero", NULL) == 0); /* weight 0: nothing */
  CHECK(profile_total(p) == 11);
  out = folded_of(p);
  CHECK(strcmp(out, "main;a 1\nmain;a;b 5\nmain;c 4\nother 1\n") == 0);
  free(out);
  capture_stderr();
  CHECK(profile_add(p, stack, 0, 1) == -1); /* empty stack */
  CHECK(strstr(captured_text(), "luaspy: cannot add an empty stack"));
  capture_stderr();
  CHECK(add(p, UINT64_MAX, "main", NULL) == -1);
  CHECK(strstr(captured_text(), "luaspy: profile weight overflows"));
  CHECK(profile_total(p) == 11);
  end();
  profile_free(p);
}

struct seen {
  char text[512];
  size_t n;
};

static int record_walk(const struct profile_frame *f, void *arg)
{
  struct seen *s = arg;
  s->n += (size_t)snprintf(
      s->text + s->n, sizeof(s->text) - s->n, "%s@%zu:%llu+%llu/%llu ", f->name,
      f->depth, (unsigned long long)f->offset, (unsigned long long)f->total,
      (unsigned long long)f->self);
  return strcmp(f->name, "skipme") == 0 ? PROFILE_SKIP : 0;
}

static int count_walk(const struct profile_frame *f, void *arg)
{
  size_t *deepest = arg;
  if (f->depth > *deepest) *deepest = f->depth;
  return 0;
}

static int stop_at_second(const char *const *frames, size_t n, uint64_t w,
                          void *arg)
{
  int *calls = arg;
  (void)frames, (void)n, (void)w;
  return ++*calls == 2 ? 42 : 0;
}

static void test_walk(void)
{
  struct profile *p = profile_new("bytes");
  struct seen s = {"", 0};
  int calls = 0;

  begin("walk order and offsets");
  add(p, 5, "main", "b", NULL);
  add(p, 2, "main", "a", "x", NULL);
  add(p, 1, "main", NULL);
  add(p, 3, "skipme", "hidden", NULL);
  add(p, 4, "main", "a", NULL);
  CHECK(profile_walk(p, record_walk, &s) == 0);
  CHECK(strcmp(s.text, "main@0:0+12/1 a@1:0+6/4 x@2:0+2/2 b@1:6+5/5 "
                       "skipme@0:12+3/0 ") == 0);
  CHECK(profile_foreach_stack(p, stop_at_second, &calls) == 42);
  CHECK(calls == 2);
  end();
  profile_free(p);
}

/* 10,000-frame stacks and many samples: no recursion, no quadratic. */
static void test_big(void)
{
  enum { DEPTH = 10000, SAMPLES = 300000 };
  struct profile *p = profile_new(NULL);
  const char **deep = malloc(DEPTH * sizeof(*deep));
  char(*names)[32] = malloc(DEPTH * sizeof(*names));
  unsigned seed = 1;
  uint64_t sum = 0;
  size_t deepest = 0;
  struct mem m;
  char *out;

  begin("10k-frame stacks, 300k samples");
  for (int i = 0; i < DEPTH; i++) {
    snprintf(names[i], sizeof(names[i]), "f%d (deep.lua:%d)", i % 97, i);
    deep[i] = names[i];
  }
  for (int i = 0; i < 100; i++)
    CHECK(profile_add(p, deep, DEPTH - (size_t)(i % 3), 1) == 0);
  for (int i = 0; i < SAMPLES; i++) {
    const char *st[32];
    size_t n = 1 + (seed >> 16) % 32;
    for (size_t k = 0; k < n; k++) {
      seed = seed * 1103515245 + 12345;
      st[k] = names[(seed >> 16) % 8];
    }
    CHECK(profile_add(p, st, n, 1 + i % 5) == 0);
    sum += 1 + (uint64_t)(i % 5);
  }
  CHECK(profile_total(p) == sum + 100);
  out = folded_of(p);
  CHECK(count_of(out, "\n") > 1000);
  free(out);
  CHECK(svg_write(p, mem_open(&m), NULL) == 0);
  free(mem_close(&m));
  profile_free(p);
  /* Walking a single 10k-deep path needs no C stack either. */
  p = profile_new(NULL);
  CHECK(profile_add(p, deep, DEPTH, 7) == 0);
  CHECK(profile_walk(p, count_walk, &deepest) == 0);
  CHECK(deepest == DEPTH - 1);
  CHECK(svg_write(p, mem_open(&m), NULL) == 0);
  out = mem_close(&m);
  CHECK(strstr(out, "<title>f8 (deep.lua:9999) (7 samples, 100.00%)"));
  free(out);
  end();
  profile_free(p);
  free(deep);
  free(names);
}

/*
** Untrusted frame strings.
*/

static void test_bounds(void)
{
  struct profile *p = profile_new(NULL);
  char long1[1300], long2[1300], exact[PROFILE_FRAME_MAX + 1];
  char emoji[1000] = "";
  char *out, *sp;

  begin("frame strings bounded on UTF-8 boundaries");
  /* 650 "é": 1300 bytes; two strings that differ past the cut merge. */
  for (int i = 0; i < 649; i++) memcpy(long1 + 2 * i, "\xc3\xa9", 2);
  memcpy(long2, long1, sizeof(long1));
  long1[1298] = 'x', long2[1298] = 'y';
  long1[1299] = long2[1299] = '\0';
  memset(exact, 'e', PROFILE_FRAME_MAX);
  exact[PROFILE_FRAME_MAX] = '\0';
  for (int i = 0; i < 200; i++)
    strcat(emoji, "\xf0\x9f\x98\x80"); /* U+1F600, 4 bytes */
  add(p, 1, long1, NULL);
  add(p, 2, long2, NULL);
  add(p, 4, exact, NULL);
  add(p, 8, emoji, NULL);
  out = folded_of(p);
  CHECK(valid_utf8(out));
  /* Lines sort by bytes: e..., é..., emoji. */
  CHECK(strncmp(out, exact, PROFILE_FRAME_MAX) == 0 &&
        strncmp(out + PROFILE_FRAME_MAX, " 4\n", 3) == 0);
  sp = strchr(out, '\n') + 1;
  CHECK(strstr(sp, "\xe2\x80\xa6 3\n") == sp + 508); /* 254 é, then … */
  sp = strchr(sp, '\n') + 1;
  CHECK(strstr(sp, "\xe2\x80\xa6 8\n") == sp + 508); /* 127 emoji, … */
  CHECK(strncmp(sp, emoji, 508) == 0);
  free(out);
  end();
  profile_free(p);
}

static void test_folded_escape(void)
{
  struct profile *p = profile_new(NULL);
  char *out;

  begin("folded: separators in frames replaced");
  add(p, 2, "f;g (a;b.lua:1)", "line\nbreak\r", NULL);
  out = folded_of(p);
  CHECK(strcmp(out, "f,g (a,b.lua:1);line break  2\n") == 0);
  free(out);
  end();
  profile_free(p);
}

static void test_round_trip(void)
{
  const char *text = "main chunk (app.lua:40);handle (app.lua:12);C:strlen 17\n"
                     "\r\n"
                     "[GC] 3\r\n"
                     "main chunk (app.lua:40);trace#3 (work.lua:20) 5\n"
                     "  \n"
                     "main chunk (app.lua:40);handle (app.lua:12);C:strlen 4\n"
                     "main chunk (app.lua:40);builtin:string.format\t2\n"
                     "main chunk (app.lua:40);x;;y 1\n";
  struct profile *p = profile_new(NULL), *q = profile_new(NULL);
  FILE *in = fmemopen((void *)text, strlen(text), "r");
  char *once, *twice;

  begin("folded round trip");
  CHECK(profile_read_folded(p, in) == 0);
  fclose(in);
  CHECK(profile_total(p) == 32);
  once = folded_of(p);
  CHECK(strcmp(once, "[GC] 3\n"
                     "main chunk (app.lua:40);builtin:string.format 2\n"
                     "main chunk (app.lua:40);handle (app.lua:12);C:strlen 21\n"
                     "main chunk (app.lua:40);trace#3 (work.lua:20) 5\n"
                     "main chunk (app.lua:40);x;;y 1\n") == 0);
  in = fmemopen(once, strlen(once), "r");
  CHECK(profile_read_folded(q, in) == 0);
  fclose(in);
  twice = folded_of(q);
  CHECK(strcmp(once, twice) == 0);
  free(once);
  free(twice);
  end();
  profile_free(p);
  profile_free(q);
}

static void test_read_errors(void)
{
  static const struct {
    const char *text, *message;
    size_t len; /* 0: strlen(text) */
  } cases[] = {
      {"a;b 1\na;b\n", "luaspy: line 2: expected 'FRAME;FRAME;... COUNT'", 0},
      {"a;b 1\n\na;b x\n", "luaspy: line 3: the count is not a whole number",
       0},
      {"a;b 1.5\n", "luaspy: line 1: the count is not a whole number", 0},
      {"a;b -1\n", "luaspy: line 1: the count is not a whole number", 0},
      {"12\n", "luaspy: line 1: expected", 0},
      {" 12\n", "luaspy: line 1: expected", 0},
      {"a 99999999999999999999\n", "luaspy: line 1: the count is too large", 0},
      {"a 18446744073709551615\nb 1\n", "luaspy: line 2: the total count", 0},
      {"a\0b 1\n", "luaspy: line 1: holds a NUL byte", 6},
  };

  begin("folded: bad lines named by number");
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct profile *p = profile_new(NULL);
    size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
    FILE *in = fmemopen((void *)cases[i].text, len, "r");
    capture_stderr();
    int r = profile_read_folded(p, in);
    const char *msg = captured_text();
    check_at(r == -1 &&
                 strncmp(msg, cases[i].message, strlen(cases[i].message)) == 0,
             cases[i].message, __LINE__);
    CHECK(strchr(msg, '\n') == msg + strlen(msg) - 1); /* one line */
    fclose(in);
    profile_free(p);
  }
  end();
}

/*
** Writing files.
*/

static void test_format(void)
{
  begin("output format from name");
  CHECK(strcmp(profile_format("-", NULL), "folded") == 0);
  CHECK(strcmp(profile_format("out.svg", NULL), "svg") == 0);
  CHECK(strcmp(profile_format("dir.x/OUT.SVG", NULL), "svg") == 0);
  CHECK(strcmp(profile_format("a.folded", NULL), "folded") == 0);
  CHECK(strcmp(profile_format("a.txt", NULL), "folded") == 0);
  CHECK(strcmp(profile_format("a.png", "svg"), "svg") == 0);
  CHECK(strcmp(profile_format("-", "svg"), "svg") == 0);
  CHECK(strcmp(profile_format("a.pb.gz", NULL), "pprof") == 0);
  CHECK(strcmp(profile_format("d/A.SPEEDSCOPE.JSON", NULL), "speedscope") == 0);
  CHECK(strcmp(profile_format("-", "pprof"), "pprof") == 0);
  CHECK(strcmp(profile_format("a.svg", "speedscope"), "speedscope") == 0);
  capture_stderr();
  CHECK(profile_format("a.json", NULL) == NULL); /* which JSON? */
  CHECK(strstr(captured_text(), ".speedscope.json"));
  capture_stderr();
  CHECK(profile_format(".pb.gz", NULL) == NULL); /* an ending, no name */
  captured_text();
  capture_stderr();
  CHECK(profile_format("a.svg/b", NULL) == NULL);
  CHECK(strstr(captured_text(), "luaspy: cannot tell the format of 'a.svg/b'"));
  capture_stderr();
  CHECK(profile_format("a.svg", "pdf") == NULL);
  CHECK(strstr(captured_text(), "luaspy: unknown output format 'pdf'"));
  end();
}

static void test_write_errors(void)
{
  struct profile *p = profile_new(NULL);
  const char *msg;
  struct json *j;
  FILE *full;

  begin("write errors reported (/dev/full)");
  add(p, 1, "main", "f", NULL);
  capture_stderr();
  CHECK(profile_write(p, "/dev/full", "folded", NULL) == -1);
  msg = captured_text();
  CHECK(strcmp(msg, "luaspy: writing /dev/full: No space left on device\n") ==
        0);
  capture_stderr();
  CHECK(profile_write(p, "/dev/full", "svg", NULL) == -1);
  msg = captured_text();
  CHECK(strcmp(msg, "luaspy: writing /dev/full: No space left on device\n") ==
        0);
  capture_stderr();
  CHECK(profile_write(p, "/nonexistent/dir/x.svg", NULL, NULL) == -1);
  CHECK(
      strstr(captured_text(), "luaspy: cannot create /nonexistent/dir/x.svg"));
  full = fopen("/dev/full", "w");
  j = json_new(full);
  json_begin_obj(j);
  json_key(j, "k");
  json_str(j, "v");
  json_end_obj(j);
  capture_stderr();
  CHECK(json_done(j) == -1);
  CHECK(strstr(captured_text(), "No space left on device"));
  json_free(j);
  fclose(full);
  end();
  profile_free(p);
}

static void test_write_file(void)
{
  char path[] = "/tmp/luaspy-test-XXXXXX.folded";
  struct profile *p = profile_new(NULL);
  char buf[64] = "";
  FILE *f;
  int fd = mkstemps(path, 7);

  begin("write a file");
  close(fd);
  add(p, 9, "main", "f", NULL);
  CHECK(profile_write(p, path, NULL, NULL) == 0);
  f = fopen(path, "r");
  CHECK(f && fread(buf, 1, sizeof(buf) - 1, f) > 0);
  CHECK(strcmp(buf, "main;f 9\n") == 0);
  if (f) fclose(f);
  unlink(path);
  end();
  profile_free(p);
}

/*
** JSON.
*/

static void test_json(void)
{
  struct mem m;
  struct json *j = json_new(mem_open(&m));
  char *out;

  begin("json: structure and numbers");
  json_begin_obj(j);
  json_key(j, "a");
  json_int(j, -5);
  json_key(j, "b");
  json_begin_arr(j);
  json_bool(j, true);
  json_bool(j, false);
  json_null(j);
  json_str(j, NULL);
  json_begin_obj(j);
  json_end_obj(j);
  json_begin_arr(j);
  json_end_arr(j);
  json_end_arr(j);
  json_key(j, "u");
  json_uint(j, UINT64_MAX);
  json_key(j, "d");
  json_begin_arr(j);
  json_double(j, 0.1);
  json_double(j, 1.0 / 3);
  json_double(j, 1e300);
  json_double(j, 0.0 / 0.0);
  json_double(j, -1.0 / 0.0);
  json_end_arr(j);
  json_end_obj(j);
  CHECK(json_done(j) == 0);
  json_free(j);
  out = mem_close(&m);
  CHECK(strcmp(out, "{\"a\": -5, \"b\": [true, false, null, null, {}, []], "
                    "\"u\": 18446744073709551615, \"d\": [0.1, "
                    "0.3333333333333333, 1e+300, null, null]}") == 0);
  free(out);
  end();

  begin("json: string escaping");
  j = json_new(mem_open(&m));
  json_begin_arr(j);
  json_str(j, "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f");
  json_str(j, "ok \xc3\xa9 \xf0\x9f\x98\x80"); /* é, U+1F600 */
  json_str(j, "bad \xff \xc0\xaf \xed\xa0\x80 \xe2\x82 end");
  json_end_arr(j);
  CHECK(json_done(j) == 0);
  json_free(j);
  out = mem_close(&m);
  CHECK(strcmp(out, "[\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\", "
                    "\"ok \xc3\xa9 \xf0\x9f\x98\x80\", "
                    "\"bad \\ufffd \\ufffd\\ufffd "
                    "\\ufffd\\ufffd\\ufffd \\ufffd\\ufffd end\"]") == 0);
  free(out);
  end();

  begin("json: misuse detected");
  {
    static const char *const want[] = {"key outside",
                                       "object value without a key",
                                       "unmatched end of array",
                                       "value not complete",
                                       "nested too deep",
                                       "second top-level value"};
    for (int k = 0; k < 6; k++) {
      j = json_new(mem_open(&m));
      switch (k) {
      case 0: json_key(j, "x"); break;
      case 1:
        json_begin_obj(j);
        json_int(j, 1);
        break;
      case 2:
        json_begin_obj(j);
        json_end_arr(j);
        break;
      case 3: json_begin_arr(j); break;
      case 4:
        for (int d = 0; d <= JSON_MAX_DEPTH; d++) json_begin_arr(j);
        break;
      case 5:
        json_int(j, 1);
        json_int(j, 2);
        break;
      }
      capture_stderr();
      int r = json_done(j);
      const char *msg = captured_text();
      check_at(r == -1 && strstr(msg, want[k]), want[k], __LINE__);
      json_free(j);
      free(mem_close(&m));
    }
  }
  end();
}

/*
** SVG.
*/

/* The fill of the frame whose <title> starts with name. */
static int fill_of(const char *svg, const char *name, int rgb[3])
{
  char key[256];
  const char *s;

  snprintf(key, sizeof(key), "<title>%s (", name);
  if (!(s = strstr(svg, key)) || !(s = strstr(s, "fill=\"rgb("))) return -1;
  return sscanf(s, "fill=\"rgb(%d,%d,%d)", &rgb[0], &rgb[1], &rgb[2]) == 3 ? 0
                                                                           : -1;
}

static void test_svg(void)
{
  struct profile *p = profile_new(NULL);
  struct render_opts o = {.title = "T<i>&\"'", .subtitle = "sub]]>title"};
  struct mem m;
  char *out, *again;
  int lua[3], tr[3], c[3], bi[3], vm[3];

  begin("svg: untrusted strings stay text");
  add(p, 30, "main chunk (app.lua:1)", "<script>alert(1)</script> (x.lua:1)",
      NULL);
  add(p, 20, "main chunk (app.lua:1)", "]]> (cdata.lua:2)", NULL);
  add(p, 10, "bad \xff\xfe\xc0\xaf utf8 \x01\x1b\x7f (\"q'&.lua:3)", NULL);
  add(p, 10, "trace#7 (work.lua:20)", "C:strlen", NULL);
  add(p, 10, "builtin:string.format", NULL);
  add(p, 10, "[GC]", NULL);
  CHECK(svg_write(p, mem_open(&m), &o) == 0);
  out = mem_close(&m);
  CHECK(count_of(out, "<script") == 1);
  CHECK(count_of(out, "]]>") == 1);
  CHECK(count_of(out, "<![CDATA[") == 1);
  CHECK(strstr(out, "<title>&lt;script&gt;alert(1)&lt;/script&gt; (x.lua:1) "
                    "(30 samples, 33.33%)</title>"));
  CHECK(strstr(out, "]]&gt; (cdata.lua:2)"));
  CHECK(strstr(out, "bad \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                    "utf8 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                    "(&quot;q&#39;&amp;.lua:3)"));
  CHECK(strstr(out, ">T&lt;i&gt;&amp;&quot;&#39;</text>"));
  CHECK(strstr(out, ">sub]]&gt;title</text>"));
  CHECK(valid_utf8(out));
  for (const char *s = out; *s; s++)
    CHECK((unsigned char)*s >= 0x20 || *s == '\n');
  end();

  begin("svg: colours by frame kind");
  CHECK(fill_of(out, "main chunk (app.lua:1)", lua) == 0);
  CHECK(fill_of(out, "trace#7 (work.lua:20)", tr) == 0);
  CHECK(fill_of(out, "C:strlen", c) == 0);
  CHECK(fill_of(out, "builtin:string.format", bi) == 0);
  CHECK(fill_of(out, "[GC]", vm) == 0);
  CHECK(lua[0] > lua[2] + 60 && lua[0] >= lua[1]); /* warm: red leads */
  CHECK(tr[1] > tr[0] && tr[1] > tr[2]);           /* green */
  CHECK(c[2] > c[0] && c[2] > c[1]);               /* blue */
  CHECK(bi[2] > bi[1] && bi[0] > bi[1]);           /* violet */
  CHECK(vm[0] == vm[1] && vm[1] == vm[2]);         /* grey */
  end();

  begin("svg: deterministic");
  CHECK(svg_write(p, mem_open(&m), &o) == 0);
  again = mem_close(&m);
  CHECK(strcmp(out, again) == 0);
  free(again);
  free(out);
  end();
  profile_free(p);

  begin("svg: narrow frames left out");
  p = profile_new("us");
  add(p, 1000000, "big (a.lua:1)", NULL);
  add(p, 1, "tiny (a.lua:2)", "tinier (a.lua:3)", NULL);
  CHECK(svg_write(p, mem_open(&m), NULL) == 0);
  out = mem_close(&m);
  CHECK(strstr(out, "big (a.lua:1) (1,000,000 us, 100.00%)"));
  CHECK(!strstr(out, "tiny"));
  free(out);
  o = (struct render_opts){.min_width = 1e-9};
  CHECK(svg_write(p, mem_open(&m), &o) == 0);
  out = mem_close(&m);
  CHECK(strstr(out, "tinier (a.lua:3) (1 us, 0.00%)"));
  free(out);
  end();
  profile_free(p);

  begin("svg: empty profile");
  p = profile_new(NULL);
  CHECK(svg_write(p, mem_open(&m), NULL) == 0);
  out = mem_close(&m);
  CHECK(strstr(out, "No stacks in this profile"));
  CHECK(strstr(out, "</svg>\n"));
  free(out);
  end();
  profile_free(p);
}

/* The profile the browser check (flamegraph_check.html) knows. */
static int write_demo_svg(const char *path)
{
  struct profile *p = profile_new(NULL);
  struct render_opts o = {.title = "luaspy test <graph>",
                          .subtitle = "demo profile"};
  int ret;

  add(p, 50, "main chunk (app.lua:40)", "handle (app.lua:12)",
      "heavy (work.lua:7)", NULL);
  add(p, 10, "main chunk (app.lua:40)", "handle (app.lua:12)", "C:strlen",
      NULL);
  add(p, 20, "main chunk (app.lua:40)", "trace#3 (work.lua:20)", NULL);
  add(p, 5, "main chunk (app.lua:40)", "builtin:string.format", NULL);
  add(p, 6, "main chunk (app.lua:40)", "heavy (work.lua:7)", NULL);
  add(p, 4, "main chunk (app.lua:40)", "heavy (work.lua:7)",
      "heavy (work.lua:7)", NULL);
  add(p, 10, "[GC]", NULL);
  add(p, 3, "main chunk (app.lua:40)", "<script>alert(1)</script> (evil.lua:1)",
      NULL);
  add(p, 3, "main chunk (app.lua:40)",
      "\"><script>window.pwned=1</script><x a=\" (evil.lua:2)", NULL);
  add(p, 3, "main chunk (app.lua:40)", "]]><script>window.pwned=2</script>",
      NULL);
  add(p, 6, "main chunk (app.lua:40)", "bad \xff\xfe utf8 (evil.lua:3)", NULL);
  ret = profile_write(p, path, "svg", &o);
  profile_free(p);
  return ret < 0 ? 1 : 0;
}

/*
** Frame strings split, strings numbered, every writer on deep stacks.
*/

/* frame_parse(s) as "name|chunk|line". */
static const char *parts_of(const char *s)
{
  static char buf[1200];
  struct frame_parts fp;

  frame_parse(s, &fp);
  snprintf(buf, sizeof(buf), "%.*s|%.*s|%ld", (int)fp.name_len, fp.name,
           (int)fp.chunk_len, fp.chunk_len ? fp.chunk : "", fp.line);
  return buf;
}

static void test_frame_parse(void)
{
  begin("frame strings split into name, chunk, line");
  CHECK(strcmp(parts_of("foo (app.lua:10)"), "foo|app.lua|10") == 0);
  CHECK(strcmp(parts_of("main chunk (app.lua:40)"), "main chunk|app.lua|40") ==
        0);
  CHECK(strcmp(parts_of("trace#3 (a.lua:5)"), "trace#3|a.lua|5") == 0);
  CHECK(strcmp(parts_of("M:get (/srv/a:b.lua:7)"), "M:get|/srv/a:b.lua|7") ==
        0);
  CHECK(strcmp(parts_of("f ([string \"g (x)\"]:3)"),
               "f|[string \"g (x)\"]|3") == 0);
  CHECK(strcmp(parts_of("f (app.lua)"), "f|app.lua|0") == 0);
  CHECK(strcmp(parts_of("f (app.lua:)"), "f|app.lua:|0") == 0);
  CHECK(strcmp(parts_of("f (:12)"), "f|:12|0") == 0);
  CHECK(strcmp(parts_of("C:strlen"), "C:strlen||0") == 0);
  CHECK(strcmp(parts_of("C:f (x.c:1)"), "C:f (x.c:1)||0") == 0);
  CHECK(strcmp(parts_of("builtin:string.format"), "builtin:string.format||0") ==
        0);
  CHECK(strcmp(parts_of("[GC]"), "[GC]||0") == 0);
  CHECK(strcmp(parts_of("f ()"), "f ()||0") == 0);
  CHECK(strcmp(parts_of(" (a.lua:1)"), " (a.lua:1)||0") == 0);
  CHECK(strcmp(parts_of("f (a.lua:1) tail"), "f (a.lua:1) tail||0") == 0);
  CHECK(strcmp(parts_of(""), "||0") == 0);
  end();
}

static void test_strmap(void)
{
  struct strmap *m = strmap_new();
  char key[32];
  uint32_t id;
  int ok = 1;

  begin("strmap numbers strings densely");
  CHECK(strmap_id(m, "", 0, &id) == 1 && id == 0);
  CHECK(strmap_id(m, "abc", 2, &id) == 1 && id == 1); /* "ab" */
  CHECK(strmap_id(m, "ab", 2, &id) == 0 && id == 1);
  CHECK(strmap_find(m, "abc", 3, &id) == -1);
  CHECK(strcmp(strmap_key(m, 1), "ab") == 0);
  for (int i = 0; i < 20000; i++) { /* past several table growths */
    int n = snprintf(key, sizeof(key), "k%d", i);
    ok &= strmap_id(m, key, (size_t)n, &id) == 1 && id == (uint32_t)i + 2;
  }
  for (int i = 0; i < 20000; i++) {
    int n = snprintf(key, sizeof(key), "k%d", i);
    ok &= strmap_find(m, key, (size_t)n, &id) == 0 && id == (uint32_t)i + 2;
  }
  CHECK(ok);
  CHECK(strmap_count(m) == 20002);
  end();
  strmap_free(m);
}

/* Every writer, the differential one included, on stacks 5000 deep with
 * frames of every kind and the longest frame strings: no crash, no leak,
 * no sanitizer report, and output. */
static void test_deep_writers(void)
{
  static const char *frames[5000];
  static char names[5000][24];
  char longest[PROFILE_FRAME_MAX + 8];
  struct profile *a = profile_new(NULL), *b = profile_new(NULL);
  struct render_opts o = {.sample_hz = 99};
  struct mem m;

  begin("writers on deep stacks");
  for (int i = 0; i < 5000; i++) {
    snprintf(names[i], sizeof(names[i]),
             i % 4 == 0   ? "f%d (a.lua:%d)"
             : i % 4 == 1 ? "C:c%d"
             : i % 4 == 2 ? "trace#%d (b.lua:%d)"
                          : "[GC]%d",
             i, i);
    frames[i] = names[i];
  }
  memset(longest, 'x', sizeof(longest) - 1);
  memcpy(longest + sizeof(longest) - 12, " (a.lua:9)", 11);
  CHECK(profile_add(a, frames, 5000, 7) == 0);
  CHECK(profile_add(a, frames, 2500, 3) == 0);
  frames[100] = longest;
  CHECK(profile_add(a, frames, 200, 1) == 0);
  CHECK(profile_add(b, frames, 4000, 2) == 0);
  frames[100] = names[100];
  CHECK(profile_add(b, frames, 3000, 5) == 0);
  CHECK(pprof_write(a, mem_open(&m), &o) == 0);
  mem_close(&m);
  CHECK(m.len > 20 && (unsigned char)m.buf[0] == 0x1f); /* gzip */
  free(m.buf);
  CHECK(speedscope_write(a, mem_open(&m), &o) == 0);
  CHECK(strstr(mem_close(&m), "\"unit\": \"nanoseconds\""));
  free(m.buf);
  CHECK(diff_svg_write(b, a, mem_open(&m), NULL) == 0);
  CHECK(count_of(mem_close(&m), "Only in BEFORE") == 1);
  free(m.buf);
  CHECK(diff_svg_write(a, b, mem_open(&m), NULL) == 0);
  CHECK(count_of(mem_close(&m), "<g class=\"f\"") > 1000);
  free(m.buf);
  end();
  profile_free(a);
  profile_free(b);
}

int main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "--svg") == 0)
    return write_demo_svg(argv[2]);
  test_aggregate();
  test_walk();
  test_big();
  test_bounds();
  test_folded_escape();
  test_round_trip();
  test_read_errors();
  test_format();
  test_write_errors();
  test_write_file();
  test_json();
  test_svg();
  test_frame_parse();
  test_strmap();
  test_deep_writers();
  return nfailed ? 1 : 0;
}
