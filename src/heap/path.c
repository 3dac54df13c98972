/*
** Reference paths from a root to an object, written the way Lua code
** would reach it: _G.foo, package.loaded["metrics"].lookup, registry[3],
** upvalue "cache" of handler (x.lua:10).
*/
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "heap.h"

#define PATH_DEPTH_MAX 256
#define KEY_SHOW_MAX 48     /* string key bytes shown */
#define COLLAPSE_ENTRIES 64 /* bigger tables: one [*] frame for all */

static const char *const lua_keywords[] = {
    "and",      "break",  "do",   "else", "elseif", "end",  "false", "for",
    "function", "goto",   "if",   "in",   "local",  "nil",  "not",   "or",
    "repeat",   "return", "then", "true", "until",  "while"};

static int is_ident(const char *s, size_t n)
{
  if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return 0;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return 0;
  for (size_t i = 0; i < sizeof(lua_keywords) / sizeof(*lua_keywords); i++)
    if (strlen(lua_keywords[i]) == n && !memcmp(lua_keywords[i], s, n))
      return 0;
  return 1;
}

/* A GCstr's first bytes; returns its length (-1 if unreadable). */
static long read_str(struct heap_ctx *c, uint64_t s, char *buf, size_t len)
{
  uint32_t n;
  size_t k;
  if (tmem_u32(c->mem, s + c->lay->str_len, &n)) return -1;
  k = n < len ? n : len;
  if (tmem_read(c->mem, s + c->lay->str_data, buf, k)) return -1;
  return n;
}

/* ["..."] with Lua escapes, cut at KEY_SHOW_MAX bytes. */
static void quoted(char *out, size_t len, const char *s, long n)
{
  size_t o = 0;
  long shown = n < KEY_SHOW_MAX ? n : KEY_SHOW_MAX;
  o += (size_t)snprintf(out + o, len - o, "[\"");
  for (long i = 0; i < shown && o + 8 < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\')
      o += (size_t)snprintf(out + o, len - o, "\\%c", ch);
    else if (ch < 32 || ch == 127)
      o += (size_t)snprintf(out + o, len - o, "\\%d", ch);
    else
      out[o++] = (char)ch;
  }
  snprintf(out + o, len - o, "%s\"]", shown < n ? "..." : "");
}

/* The key of a table entry: .name, ["str"], [3], [true], [table 0x...]. */
static void key_label(struct heap_ctx *c, uint64_t key, int brackets, char *buf,
                      size_t len)
{
  uint32_t tag = (uint32_t)(key >> 47);
  if (tag == LJ_TAG_STR) {
    char s[KEY_SHOW_MAX];
    long n = read_str(c, key & LJ_GC64_PTRMASK, s, sizeof(s));
    if (n < 0)
      snprintf(buf, len, "[?]");
    else if (!brackets && n <= KEY_SHOW_MAX && is_ident(s, (size_t)n))
      snprintf(buf, len, ".%.*s", (int)n, s);
    else
      quoted(buf, len, s, n);
  } else if (tag < 0x1fff2) { /* a number */
    double d;
    memcpy(&d, &key, 8);
    if (d == (double)(int64_t)d)
      snprintf(buf, len, "[%" PRId64 "]", (int64_t)d);
    else
      snprintf(buf, len, "[%.17g]", d);
  } else if (tag == 0x1fffe || tag == 0x1fffd) {
    snprintf(buf, len, "[%s]", tag == 0x1fffd ? "true" : "false");
  } else if (tag == 0x1fffc) {
    snprintf(buf, len, "[lightuserdata 0x%" PRIx64 "]",
             (uint64_t)(key & LJ_GC64_PTRMASK));
  } else {
    int type = (int)(~tag & 0xff) - LJ_GCT_STR;
    snprintf(buf, len, "[%s 0x%" PRIx64 "]", heap_type_name(type),
             (uint64_t)(key & LJ_GC64_PTRMASK));
  }
}

/* "handler (x.lua:10)": a function by the name it was reached under. */
static void func_label(struct heap_ctx *c, const struct heap_snap *s,
                       uint32_t fidx, char *buf, size_t len)
{
  const struct heap_obj *f = &s->objs[fidx];
  const struct lj_layout *lay = c->lay;
  char name[KEY_SHOW_MAX + 1] = "function", chunk[256] = "?";
  uint64_t pc, cn;
  uint32_t line = 0;
  if (f->edge == HEAP_EDGE_HASH && (uint32_t)(f->key >> 47) == LJ_TAG_STR) {
    long n = read_str(c, f->key & LJ_GC64_PTRMASK, name, sizeof(name) - 1);
    name[n < 0 ? 0 : n < KEY_SHOW_MAX ? n : KEY_SHOW_MAX] = '\0';
  }
  if (!tmem_u64(c->mem, f->addr + lay->fn_pc, &pc) &&
      !tmem_u64(c->mem, pc - lay->pt_size + lay->pt_chunkname, &cn) &&
      !tmem_u32(c->mem, pc - lay->pt_size + lay->pt_firstline, &line)) {
    long n = read_str(c, cn, chunk, sizeof(chunk) - 1);
    chunk[n < 0                         ? 0
          : n < (long)sizeof(chunk) - 1 ? n
                                        : (long)sizeof(chunk) - 1] = '\0';
  }
  /* Long chunk names are cut: the label only has to identify the place. */
  snprintf(buf, len, "%s (%.200s:%u)", name,
           chunk[0] == '@' || chunk[0] == '=' ? chunk + 1 : chunk, line);
}

/* Name of upvalue number n of the Lua function at f: the prototype's
 * uvinfo holds the names, NUL-terminated, in order. */
static void upvalue_name(struct heap_ctx *c, uint64_t f, uint32_t n, char *buf,
                         size_t len)
{
  const struct lj_layout *lay = c->lay;
  uint64_t pc, pt, uvinfo;
  uint32_t sizept;
  char names[1024];
  size_t k;
  snprintf(buf, len, "#%u", n + 1);
  if (tmem_u64(c->mem, f + lay->fn_pc, &pc)) return;
  pt = pc - lay->pt_size;
  if (tmem_u64(c->mem, pt + lay->pt_uvinfo, &uvinfo) ||
      tmem_u32(c->mem, pt + lay->pt_sizept, &sizept) || uvinfo < pt ||
      uvinfo >= pt + sizept)
    return;
  /* The names are colocated with the prototype, up to its end. */
  k = pt + sizept - uvinfo < sizeof(names) ? pt + sizept - uvinfo
                                           : sizeof(names);
  if (tmem_read(c->mem, uvinfo, names, k)) return;
  for (size_t o = 0, i = 0; o < k; i++) {
    size_t l = strnlen(names + o, k - o);
    if (o + l == k) return;
    if (i == n) {
      snprintf(buf, len, "\"%s\"", names + o);
      return;
    }
    o += l + 1;
  }
}

static const char *root_name(uint64_t key, uint32_t nroots, char *buf,
                             size_t len)
{
  switch (key) {
  case HEAP_ROOT_LOADED: return "package.loaded";
  case HEAP_ROOT_GLOBALS: return "_G";
  case HEAP_ROOT_REGISTRY: return "registry";
  case HEAP_ROOT_MAIN: return "main thread";
  }
  /* g->gcroot[]: metamethod names, then one base metatable per type tag
   * (~itype, 14 of them), then io.input and io.output (lj_obj.h). */
  static const char *const tags[14] = {
      "nil",     "false",  "true",      "lightuserdata", "string",
      "upvalue", "thread", "prototype", "function",      "trace",
      "cdata",   "table",  "userdata",  "number"};
  uint64_t i = key - HEAP_ROOT_VM, basemt = nroots - 2 - 14;
  if (i + 2 == nroots) return "io.input";
  if (i + 1 == nroots) return "io.output";
  if (i >= basemt && i < basemt + 14)
    snprintf(buf, len, "metatable of all %ss", tags[i - basemt]);
  else
    snprintf(buf, len, "metamethod name %u", (unsigned)i);
  return buf;
}

void heap_label(struct heap_ctx *c, const struct heap_snap *s, uint32_t idx,
                int collapse, char *buf, size_t len)
{
  const struct heap_obj *o = &s->objs[idx];
  const struct heap_obj *p =
      o->parent == HEAP_NOPARENT ? NULL : &s->objs[o->parent];
  char tmp[320];
  if (!p) {
    snprintf(buf, len, "%s",
             root_name(o->key, c->lay->g_ngcroot, tmp, sizeof(tmp)));
    return;
  }
  if (collapse && p->type == HEAP_TAB && p->entries > COLLAPSE_ENTRIES &&
      (o->edge == HEAP_EDGE_ARRAY || o->edge == HEAP_EDGE_HASH ||
       o->edge == HEAP_EDGE_KEY)) {
    snprintf(buf, len, o->edge == HEAP_EDGE_KEY ? "<keys>" : "[*]");
    return;
  }
  switch (o->edge) {
  case HEAP_EDGE_ARRAY: snprintf(buf, len, "[%" PRIu64 "]", o->key); break;
  case HEAP_EDGE_HASH:
    /* package.loaded["name"]: module names are file-like, bracket them. */
    key_label(c, o->key,
              p->edge == HEAP_EDGE_ROOT && p->key == HEAP_ROOT_LOADED, buf,
              len);
    break;
  case HEAP_EDGE_KEY: snprintf(buf, len, "<key>"); break;
  case HEAP_EDGE_META: snprintf(buf, len, "<metatable>"); break;
  case HEAP_EDGE_ENV: snprintf(buf, len, "<env>"); break;
  case HEAP_EDGE_PROTO: snprintf(buf, len, "<prototype>"); break;
  case HEAP_EDGE_CONST:
    snprintf(buf, len, "<constant %" PRIu64 ">", o->key);
    break;
  case HEAP_EDGE_STACK:
    snprintf(buf, len, "<stack %" PRIu64 ">", o->key);
    break;
  case HEAP_EDGE_CUPVAL:
    snprintf(buf, len, "<C upvalue %" PRIu64 ">", o->key + 1);
    break;
  case HEAP_EDGE_UPVAL: {
    char fn[300], uv[64];
    func_label(c, s, o->parent, fn, sizeof(fn));
    upvalue_name(c, p->addr, (uint32_t)o->key, uv, sizeof(uv));
    snprintf(buf, len, "upvalue %s of %s", uv, fn);
    break;
  }
  default: snprintf(buf, len, "<?>"); break;
  }
}

void heap_path(struct heap_ctx *c, const struct heap_snap *s, uint32_t idx,
               char *buf, size_t len)
{
  uint32_t chain[PATH_DEPTH_MAX];
  int n = 0;
  size_t o = 0;
  for (uint32_t i = idx; i != HEAP_NOPARENT && n < PATH_DEPTH_MAX;
       i = s->objs[i].parent)
    chain[n++] = i;
  buf[0] = '\0';
  if (n == PATH_DEPTH_MAX) o += (size_t)snprintf(buf, len, "...");
  while (n-- > 0 && o < len) {
    char label[512];
    heap_label(c, s, chain[n], 0, label, sizeof(label));
    /* An upvalue names its function by itself: the path starts over. */
    if (s->objs[chain[n]].edge == HEAP_EDGE_UPVAL) o = 0;
    o += (size_t)snprintf(buf + o, len - o, "%s", label);
  }
}
