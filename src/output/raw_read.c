/*
** Reading the raw format, from a file that may be cut short, corrupted
** or made to hurt: chunk lengths are bounded before anything is
** allocated, each chunk's checksum is checked before it is inflated, it
** must inflate to exactly its stated length, and every record is parsed
** within its own length, with ids checked against what came before, so
** stacks only point back (no cycles) and are at most RAW_MAX_DEPTH deep.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "raw.h"
#include "timeline.h"

struct stack {
  uint32_t parent, frame, depth;
};

struct reader {
  FILE *in;
  const char *name;
  struct raw_info *info;
  raw_sample_fn fn;
  void *arg;
  unsigned long chunk; /* chunks read, for messages */
  char **str;          /* frame strings, by id */
  uint32_t nstr, str_cap;
  uint64_t str_bytes;
  struct stack *stack; /* stack id i + 1 */
  uint32_t nstack, stack_cap;
  const char **frames; /* a sample's frames, root first */
  uint64_t time;       /* of the last sample */
};

/* A record's bytes, consumed by the get_ functions; bad is set on the
 * first read past its end, or a malformed value. */
struct cursor {
  const uint8_t *p, *end;
  int bad;
};

static int corrupt(struct reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int corrupt(struct reader *r, const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "luaspy: %s: corrupt recording: chunk %lu: ", r->name,
          r->chunk);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return -1;
}

static int oom(void)
{
  fputs("luaspy: out of memory\n", stderr);
  return -1;
}

static uint64_t get_uint(struct cursor *c)
{
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    uint8_t b;
    if (c->p >= c->end) break;
    b = *c->p++;
    if (shift == 63 && b > 1) break; /* more than 64 bits */
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  c->bad = 1;
  return 0;
}

/* A string of at most RAW_STR_MAX - 1 bytes without NUL, as a new C
 * string; NULL with c->bad set, or after a message if out of memory. */
static char *get_str(struct cursor *c, size_t *len)
{
  uint64_t n = get_uint(c);
  char *s;
  if (c->bad || n >= RAW_STR_MAX || n > (uint64_t)(c->end - c->p) ||
      memchr(c->p, 0, n)) {
    c->bad = 1;
    return NULL;
  }
  if (!(s = malloc(n + 1))) {
    oom();
    return NULL;
  }
  memcpy(s, c->p, n);
  s[n] = '\0';
  c->p += n;
  if (len) *len = n;
  return s;
}

/* Grows array *pv of *cap elements of size sz to hold one more. */
static int grow(void *pv, uint32_t n, uint32_t *cap, size_t sz)
{
  void **p = pv, *q;
  uint32_t c = *cap ? *cap * 2 : 64;
  if (n < *cap) return 0;
  if (!(q = realloc(*p, (size_t)c * sz))) return oom();
  *p = q;
  *cap = c;
  return 0;
}

static int read_meta(struct reader *r, struct cursor *c)
{
  struct raw_info *in = r->info;
  char *v[3];
  if (in->has_meta) return corrupt(r, "a second meta record");
  for (int i = 0; i < 3; i++) v[i] = c->bad ? NULL : get_str(c, NULL);
  in->start_wall_ns = get_uint(c);
  in->hz = (uint32_t)get_uint(c);
  in->line_mode = get_uint(c) & 1;
  if (c->bad || !v[0] || !v[1] || !v[2]) {
    for (int i = 0; i < 3; i++) free(v[i]);
    return c->bad ? corrupt(r, "bad meta record") : -1;
  }
  free(in->version);
  free(in->cmdline);
  free(in->host);
  in->version = v[0];
  in->cmdline = v[1];
  in->host = v[2];
  in->has_meta = 1;
  return 0;
}

static int read_target(struct reader *r, struct cursor *c)
{
  struct raw_info *in = r->info;
  uint64_t pid = get_uint(c);
  char *exe = c->bad ? NULL : get_str(c, NULL);
  struct raw_target_info *t;
  if (!exe) return c->bad ? corrupt(r, "bad target record") : -1;
  if (pid > UINT32_MAX || in->ntargets >= RAW_MAX_VMS) {
    free(exe);
    return corrupt(r, "bad target record");
  }
  if (!(t = realloc(in->targets, (in->ntargets + 1) * sizeof(*t)))) {
    free(exe);
    return oom();
  }
  in->targets = t;
  t[in->ntargets++] = (struct raw_target_info){(uint32_t)pid, exe};
  return 0;
}

static int read_vm(struct reader *r, struct cursor *c)
{
  struct raw_info *in = r->info;
  uint64_t id = get_uint(c), pid = get_uint(c), G = get_uint(c);
  char *flavor = c->bad ? NULL : get_str(c, NULL);
  struct raw_vm_info *v;
  if (!flavor) return c->bad ? corrupt(r, "bad VM record") : -1;
  /* Ids are given in order, so a sample's VM is an index. */
  if (id != in->nvms + 1 || pid > UINT32_MAX || in->nvms >= RAW_MAX_VMS) {
    free(flavor);
    return corrupt(r, "VM record %llu out of order", (unsigned long long)id);
  }
  if (!(v = realloc(in->vms, (in->nvms + 1) * sizeof(*v)))) {
    free(flavor);
    return oom();
  }
  in->vms = v;
  v[in->nvms++] = (struct raw_vm_info){(uint32_t)pid, G, flavor};
  return 0;
}

static int read_frame(struct reader *r, struct cursor *c)
{
  size_t len = 0;
  char *s = get_str(c, &len);
  if (!s) return c->bad ? corrupt(r, "bad frame record") : -1;
  if (r->nstr >= RAW_MAX_STRINGS || r->str_bytes + len > RAW_MAX_STR_BYTES) {
    free(s);
    return corrupt(r, "more frame strings than a recording holds");
  }
  if (grow(&r->str, r->nstr, &r->str_cap, sizeof(*r->str))) {
    free(s);
    return -1;
  }
  r->str[r->nstr++] = s;
  r->str_bytes += len;
  return 0;
}

static int read_stack(struct reader *r, struct cursor *c)
{
  uint64_t parent = get_uint(c), frame = get_uint(c);
  uint32_t depth;
  if (c->bad) return corrupt(r, "bad stack record");
  if (parent > r->nstack || frame >= r->nstr)
    return corrupt(r,
                   "stack %u refers to stack %llu or frame %llu, not "
                   "read yet",
                   r->nstack + 1, (unsigned long long)parent,
                   (unsigned long long)frame);
  depth = parent ? r->stack[parent - 1].depth + 1 : 1;
  if (depth > RAW_MAX_DEPTH || r->nstack >= RAW_MAX_STACKS)
    return corrupt(r, "stacks deeper or more than a recording holds");
  if (grow(&r->stack, r->nstack, &r->stack_cap, sizeof(*r->stack))) return -1;
  r->stack[r->nstack++] =
      (struct stack){(uint32_t)parent, (uint32_t)frame, depth};
  return 0;
}

static int read_sample(struct reader *r, struct cursor *c)
{
  struct raw_info *in = r->info;
  uint64_t zz = get_uint(c), pid = get_uint(c), tid = get_uint(c),
           vm = get_uint(c), id = get_uint(c), weight = get_uint(c);
  struct raw_sample s;
  uint32_t depth;
  if (c->bad) return corrupt(r, "bad sample record");
  if (pid > UINT32_MAX || tid > UINT32_MAX || vm > in->nvms || !id ||
      id > r->nstack)
    return corrupt(r, "sample refers to a VM or stack not read yet");
  r->time += (uint64_t)((zz >> 1) ^ -(zz & 1));
  depth = r->stack[id - 1].depth;
  for (uint32_t i = depth; i-- > 0;) {
    const struct stack *st = &r->stack[id - 1];
    r->frames[i] = r->str[st->frame];
    id = st->parent;
  }
  if (weight > UINT64_MAX - in->weight)
    return corrupt(r, "sample weights add up past 2^64");
  in->nsamples++;
  in->weight += weight;
  if (r->time > in->duration_ns && !in->complete) in->duration_ns = r->time;
  s = (struct raw_sample){r->time,   (uint32_t)pid, (uint32_t)tid, (uint32_t)vm,
                          r->frames, depth,         weight};
  return r->fn ? r->fn(&s, r->arg) : 0;
}

static int read_counters(struct reader *r, struct cursor *c)
{
  struct raw_info *in = r->info;
  uint64_t n = get_uint(c);
  struct raw_counter *v;
  if (c->bad || n > RAW_MAX_COUNTERS) return corrupt(r, "bad counters record");
  if (!(v = calloc(n ? n : 1, sizeof(*v)))) return oom();
  for (uint64_t i = 0; i < n && !c->bad; i++) {
    v[i].name = get_str(c, NULL);
    v[i].value = get_uint(c);
    if (!v[i].name) c->bad = 1;
  }
  if (c->bad) {
    for (uint64_t i = 0; i < n; i++) free(v[i].name);
    free(v);
    return corrupt(r, "bad counters record");
  }
  for (size_t i = 0; i < in->ncounters; i++) free(in->counters[i].name);
  free(in->counters);
  in->counters = v;
  in->ncounters = n;
  return 0;
}

/* The records of one inflated chunk; 1 after the end record. */
static int read_records(struct reader *r, const uint8_t *p, size_t len)
{
  struct cursor all = {p, p + len, 0};
  while (all.p < all.end) {
    uint64_t type = get_uint(&all), n = get_uint(&all);
    struct cursor c;
    int ret = 0;
    if (all.bad || n > (uint64_t)(all.end - all.p))
      return corrupt(r, "record runs past the chunk");
    c = (struct cursor){all.p, all.p + n, 0};
    all.p += n;
    switch (type) {
    case RAW_META: ret = read_meta(r, &c); break;
    case RAW_TARGET: ret = read_target(r, &c); break;
    case RAW_VM: ret = read_vm(r, &c); break;
    case RAW_FRAME: ret = read_frame(r, &c); break;
    case RAW_STACK: ret = read_stack(r, &c); break;
    case RAW_SAMPLE: ret = read_sample(r, &c); break;
    case RAW_COUNTERS: ret = read_counters(r, &c); break;
    case RAW_END:
      r->info->duration_ns = get_uint(&c);
      if (c.bad) return corrupt(r, "bad end record");
      r->info->complete = 1;
      return 1;
    default: break; /* a later version's: skipped, as its length says */
    }
    if (ret) return ret;
  }
  return 0;
}

static uint32_t get_u32le(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

/* Reads n bytes: 1, 0 if the file ends first, -1 on a read error. */
static int read_full(struct reader *r, void *p, size_t n, size_t *got)
{
  *got = fread(p, 1, n, r->in);
  if (*got == n) return 1;
  if (ferror(r->in)) {
    fprintf(stderr, "luaspy: reading %s: %s\n", r->name, strerror(errno));
    return -1;
  }
  return 0;
}

/* Makes *buf hold n bytes: buffers grow to the largest chunk read. */
static int hold(uint8_t **buf, size_t *cap, size_t n)
{
  uint8_t *p;
  if (n <= *cap) return 0;
  if (!(p = realloc(*buf, n))) return oom();
  *buf = p;
  *cap = n;
  return 0;
}

static int read_chunks(struct reader *r)
{
  uint8_t head[RAW_CHUNK_HEAD];
  uint8_t *z = NULL, *raw = NULL;
  size_t zcap = 0, rawcap = 0, got;
  int ret = 0;
  for (;;) {
    uint32_t zlen, len;
    uLongf out;
    r->chunk++;
    if ((ret = read_full(r, head, sizeof(head), &got)) <= 0) break;
    zlen = get_u32le(head);
    len = get_u32le(head + 4);
    if (zlen == 0 || zlen > compressBound(RAW_CHUNK_MAX) || len == 0 ||
        len > RAW_CHUNK_MAX) {
      ret = corrupt(r, "bad chunk lengths");
      break;
    }
    if ((ret = hold(&z, &zcap, zlen)) < 0) break;
    if ((ret = read_full(r, z, zlen, &got)) <= 0) break;
    if (get_u32le(head + 8) != (uint32_t)crc32(crc32(0, head, 8), z, zlen)) {
      ret = corrupt(r, "checksum mismatch");
      break;
    }
    if ((ret = hold(&raw, &rawcap, len)) < 0) break;
    out = len;
    if (uncompress(raw, &out, z, zlen) != Z_OK || out != len) {
      ret = corrupt(r, "does not inflate to its length");
      break;
    }
    if ((ret = read_records(r, raw, len))) break;
  }
  free(z);
  free(raw);
  return ret < 0 ? ret : 0; /* the end record, the end of the file */
}

int raw_sniff(FILE *in)
{
  int ch = getc(in);
  if (ch == EOF) return 0;
  ungetc(ch, in);
  return ch == (unsigned char)RAW_MAGIC[0];
}

int raw_read(FILE *in, const char *name, raw_sample_fn fn, void *arg,
             struct raw_info *info)
{
  struct reader r = {
      .in = in, .name = name, .info = info, .fn = fn, .arg = arg};
  uint8_t head[RAW_MAGIC_LEN + 1];
  size_t got;
  int ret;
  memset(info, 0, sizeof(*info));
  info->raw = 1;
  if (!(info->version = strdup("")) || !(info->cmdline = strdup("")) ||
      !(info->host = strdup("")))
    return oom();
  if ((ret = read_full(&r, head, sizeof(head), &got)) < 0) return -1;
  if (!ret || memcmp(head, RAW_MAGIC, RAW_MAGIC_LEN)) {
    fprintf(stderr, "luaspy: %s: not a luaspy recording\n", name);
    return -1;
  }
  if (head[RAW_MAGIC_LEN] != RAW_VERSION) {
    fprintf(stderr,
            "luaspy: %s: recording format version %d, this luaspy reads "
            "version %d\n",
            name, head[RAW_MAGIC_LEN], RAW_VERSION);
    return -1;
  }
  if (!(r.frames = malloc(RAW_MAX_DEPTH * sizeof(*r.frames)))) return oom();
  ret = read_chunks(&r);
  for (uint32_t i = 0; i < r.nstr; i++) free(r.str[i]);
  free(r.str);
  free(r.stack);
  free(r.frames);
  return ret;
}

void raw_info_free(struct raw_info *info)
{
  free(info->version);
  free(info->cmdline);
  free(info->host);
  for (size_t i = 0; i < info->ntargets; i++) free(info->targets[i].exe);
  free(info->targets);
  for (size_t i = 0; i < info->nvms; i++) free(info->vms[i].flavor);
  free(info->vms);
  for (size_t i = 0; i < info->ncounters; i++) free(info->counters[i].name);
  free(info->counters);
  memset(info, 0, sizeof(*info));
}

struct sinks {
  struct profile *p;
  struct timeline *tl;
};

static int add_sample(const struct raw_sample *s, void *arg)
{
  struct sinks *k = arg;
  if (profile_add(k->p, s->frames, s->nframes, s->weight)) return -1;
  return k->tl
             ? timeline_add(k->tl, s->time_ns, s->frames, s->nframes, s->weight)
             : 0;
}

int recording_read(struct profile *p, struct timeline *tl, FILE *in,
                   const char *name, struct raw_info *info)
{
  struct sinks k = {p, tl};
  memset(info, 0, sizeof(*info));
  if (!raw_sniff(in)) {
    if (!tl) return profile_read_folded_file(p, in, name);
    fprintf(stderr,
            "luaspy: %s: folded stacks have no times; a timeline needs a raw "
            "recording (luaspy record -o FILE.luaspy)\n",
            name);
    return -1;
  }
  if (raw_read(in, name, add_sample, &k, info)) return -1;
  if (!info->complete)
    fprintf(stderr,
            "luaspy: %s: truncated: the recording was cut short; using its "
            "%llu samples\n",
            name, (unsigned long long)info->nsamples);
  return tl ? timeline_span(tl, info->duration_ns) : 0;
}

void raw_describe(const struct raw_info *info, char *buf, size_t len)
{
  char when[64] = "";
  time_t t = (time_t)(info->start_wall_ns / 1000000000u);
  struct tm tm;
  size_t nproc = info->ntargets, nvms = info->nvms;
  if (info->start_wall_ns && gmtime_r(&t, &tm))
    strftime(when, sizeof(when), ", %Y-%m-%d %H:%M:%S UTC", &tm);
  snprintf(buf, len, "%llu samples at %u Hz%s%s%s, %zu process%s, %zu VM%s%s",
           (unsigned long long)info->nsamples, info->hz, when,
           info->host[0] ? " on " : "", info->host, nproc,
           nproc == 1 ? "" : "es", nvms, nvms == 1 ? "" : "s",
           info->complete ? "" : " (cut short)");
}
