/*
** Writing the raw format. Records collect in a chunk buffer that is
** compressed and written whole, with one fwrite and a flush, so a writer
** killed at any point leaves whole chunks behind and at most the last
** second of samples unwritten. Frame strings and stacks are written once,
** the first time a sample has them; a stack is its parent stack (the
** same frames but the leaf) and its leaf frame, so stacks that share a
** prefix share its records, as in the profile's call tree.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "raw.h"
#include "strmap.h"
#include "utf8.h"

#define CHUNK_FILL 65536          /* write a chunk once it holds this much */
#define CHUNK_EVERY 1000000000ull /* or a sample comes this long after */
#define REC_HEAD 20               /* a record's type and length varints */
#define SLOTS_MIN 1024

struct buf {
  uint8_t *p;
  size_t len, cap;
};

struct stack_slot { /* id 0: free */
  uint32_t parent, frame, id;
};

struct vm_entry {
  uint32_t pid;
  uint64_t G;
};

struct raw_writer {
  FILE *out;
  const char *name;
  int failed;
  struct buf chunk, rec, z;
  uint64_t chunk_time; /* sample time when the last chunk was written */
  uint64_t last_time;  /* of the last sample: times are written as deltas */
  struct strmap *frames;
  struct stack_slot *slot; /* open addressing over (parent, frame) */
  uint32_t mask, nstacks;  /* stack ids are 1..nstacks */
  struct vm_entry *vm;     /* VM id i + 1 */
  uint32_t nvm, vm_cap;
  uint32_t *pid; /* the processes with a target record */
  uint32_t npid, pid_cap;
};

static int fail(struct raw_writer *w, const char *what)
{
  if (!w->failed) fprintf(stderr, "luaspy: writing %s: %s\n", w->name, what);
  w->failed = 1;
  return -1;
}

static int reserve(struct raw_writer *w, struct buf *b, size_t more)
{
  size_t cap = b->cap ? b->cap : 4096;
  uint8_t *p;
  if (b->len + more <= b->cap) return 0;
  while (cap < b->len + more) cap *= 2;
  if (!(p = realloc(b->p, cap))) return fail(w, "out of memory");
  b->p = p;
  b->cap = cap;
  return 0;
}

static void put_bytes(struct raw_writer *w, struct buf *b, const void *s,
                      size_t n)
{
  if (reserve(w, b, n)) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void put_uint(struct raw_writer *w, struct buf *b, uint64_t v)
{
  uint8_t tmp[10];
  size_t n = 0;
  do {
    tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  put_bytes(w, b, tmp, n);
}

/* Strings are cut to RAW_STR_MAX - 1 bytes on a character boundary. */
static void put_str(struct raw_writer *w, struct buf *b, const char *s)
{
  size_t n = s ? strlen(s) : 0;
  if (n >= RAW_STR_MAX) n = utf8_cut(s, RAW_STR_MAX - 1);
  put_uint(w, b, n);
  put_bytes(w, b, s, n);
}

static void put_u32le(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Compresses the chunk buffer and writes it. */
static int write_chunk(struct raw_writer *w)
{
  uLongf zlen;
  uint8_t head[RAW_CHUNK_HEAD];
  uint32_t crc;
  if (w->failed) return -1;
  if (!w->chunk.len) return 0;
  zlen = compressBound(w->chunk.len);
  w->z.len = 0;
  if (reserve(w, &w->z, zlen)) return -1;
  if (compress2(w->z.p, &zlen, w->chunk.p, w->chunk.len, 6) != Z_OK)
    return fail(w, "compression failed");
  put_u32le(head, (uint32_t)zlen);
  put_u32le(head + 4, (uint32_t)w->chunk.len);
  crc = (uint32_t)crc32(0, head, 8);
  crc = (uint32_t)crc32(crc, w->z.p, zlen);
  put_u32le(head + 8, crc);
  if (fwrite(head, 1, sizeof(head), w->out) != sizeof(head) ||
      fwrite(w->z.p, 1, zlen, w->out) != zlen || fflush(w->out))
    return fail(w, strerror(errno));
  w->chunk.len = 0;
  return 0;
}

/* Appends the record built in w->rec, in a new chunk if it does not fit
 * in this one. */
static int end_record(struct raw_writer *w, enum raw_rec type)
{
  if (w->failed) return -1;
  if (w->rec.len + REC_HEAD > RAW_CHUNK_MAX) return fail(w, "record too large");
  if (w->chunk.len + w->rec.len + REC_HEAD > RAW_CHUNK_MAX && write_chunk(w))
    return -1;
  put_uint(w, &w->chunk, type);
  put_uint(w, &w->chunk, w->rec.len);
  put_bytes(w, &w->chunk, w->rec.p, w->rec.len);
  w->rec.len = 0;
  return w->failed ? -1 : 0;
}

int raw_output(const char *path, const char *format)
{
  size_t n = strlen(path), k = strlen(".luaspy");
  if (format) return !strcmp(format, "raw");
  return n > k && !strcasecmp(path + n - k, ".luaspy");
}

struct raw_writer *raw_writer_new(FILE *out, const char *name,
                                  const struct raw_meta *m)
{
  struct raw_writer *w = calloc(1, sizeof(*w));
  uint8_t version = RAW_VERSION;
  if (!w || !(w->slot = calloc(SLOTS_MIN, sizeof(*w->slot))) ||
      !(w->frames = strmap_new())) {
    fputs("luaspy: out of memory\n", stderr);
    if (w) free(w->slot);
    free(w);
    return NULL;
  }
  w->out = out;
  w->name = name;
  w->mask = SLOTS_MIN - 1;
  if (fwrite(RAW_MAGIC, 1, RAW_MAGIC_LEN, out) != RAW_MAGIC_LEN ||
      fwrite(&version, 1, 1, out) != 1)
    fail(w, strerror(errno));
  put_str(w, &w->rec, m->version);
  put_str(w, &w->rec, m->cmdline);
  put_str(w, &w->rec, m->host);
  put_uint(w, &w->rec, m->start_wall_ns);
  put_uint(w, &w->rec, m->hz);
  put_uint(w, &w->rec, m->line_mode ? 1 : 0);
  /* The meta goes out at once: a file killed early still says what it is. */
  if (end_record(w, RAW_META) || write_chunk(w)) {
    raw_writer_free(w);
    return NULL;
  }
  return w;
}

/* Makes room for one more element in array *pv of *cap of size sz. */
static int room(struct raw_writer *w, void *pv, uint32_t n, uint32_t *cap,
                size_t sz)
{
  void **p = pv, *q;
  uint32_t c = *cap ? 2 * *cap : 16;
  if (n < *cap) return 0;
  if (!(q = realloc(*p, (size_t)c * sz))) return fail(w, "out of memory");
  *p = q;
  *cap = c;
  return 0;
}

int raw_writer_knows(const struct raw_writer *w, uint32_t pid)
{
  for (uint32_t i = 0; i < w->npid; i++)
    if (w->pid[i] == pid) return 1;
  return 0;
}

int raw_writer_vm(struct raw_writer *w, uint32_t pid, uint64_t G,
                  const char *flavor, uint32_t *id)
{
  *id = 0;
  for (uint32_t i = 0; i < w->nvm; i++)
    if (w->vm[i].pid == pid && w->vm[i].G == G) {
      *id = i + 1;
      return 0;
    }
  /* G 0, or more VMs than a file holds: unknown. */
  if (!G || w->nvm == RAW_MAX_VMS) return 0;
  if (room(w, &w->vm, w->nvm, &w->vm_cap, sizeof(*w->vm))) return -1;
  w->vm[w->nvm++] = (struct vm_entry){pid, G};
  *id = w->nvm;
  put_uint(w, &w->rec, *id);
  put_uint(w, &w->rec, pid);
  put_uint(w, &w->rec, G);
  put_str(w, &w->rec, flavor);
  return end_record(w, RAW_VM);
}

int raw_writer_target(struct raw_writer *w, uint32_t pid, const char *exe)
{
  if (w->npid == RAW_MAX_VMS) return 0; /* more than a file holds */
  if (room(w, &w->pid, w->npid, &w->pid_cap, sizeof(*w->pid))) return -1;
  w->pid[w->npid++] = pid;
  put_uint(w, &w->rec, pid);
  put_str(w, &w->rec, exe);
  return end_record(w, RAW_TARGET);
}

static uint64_t hash_pair(uint32_t parent, uint32_t frame)
{
  uint64_t h = (uint64_t)parent << 32 | frame;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

static struct stack_slot *find_slot(struct stack_slot *slot, uint32_t mask,
                                    uint32_t parent, uint32_t frame)
{
  uint32_t i = (uint32_t)hash_pair(parent, frame) & mask;
  while (slot[i].id && (slot[i].parent != parent || slot[i].frame != frame))
    i = (i + 1) & mask;
  return &slot[i];
}

/* Doubles the stack table when it is half full. */
static int grow_stacks(struct raw_writer *w)
{
  uint32_t mask = w->mask * 2 + 1;
  struct stack_slot *slot;
  if (w->nstacks < w->mask / 2) return 0;
  if (w->nstacks >= RAW_MAX_STACKS - 1) return fail(w, "too many stacks");
  if (!(slot = calloc((size_t)mask + 1, sizeof(*slot))))
    return fail(w, "out of memory");
  for (uint32_t i = 0; i <= w->mask; i++)
    if (w->slot[i].id)
      *find_slot(slot, mask, w->slot[i].parent, w->slot[i].frame) = w->slot[i];
  free(w->slot);
  w->slot = slot;
  w->mask = mask;
  return 0;
}

/* The id of frame string s, written first if new. */
static int frame_id(struct raw_writer *w, const char *s, uint32_t *id)
{
  size_t n = strlen(s);
  int ret;
  if (n >= RAW_STR_MAX) n = utf8_cut(s, RAW_STR_MAX - 1);
  if (strmap_count(w->frames) >= RAW_MAX_STRINGS &&
      strmap_find(w->frames, s, n, id))
    return fail(w, "too many distinct frames");
  if ((ret = strmap_id(w->frames, s, n, id)) < 0) return fail(w, "no memory");
  if (!ret) return 0;
  put_uint(w, &w->rec, n);
  put_bytes(w, &w->rec, s, n);
  return end_record(w, RAW_FRAME);
}

/* The id of the stack frames[0..n), written first if new. */
static int stack_id(struct raw_writer *w, const char *const *frames, size_t n,
                    uint32_t *id)
{
  uint32_t parent = 0, frame;
  if (n > RAW_MAX_DEPTH) n = RAW_MAX_DEPTH; /* the root end is kept */
  for (size_t i = 0; i < n; i++) {
    struct stack_slot *s;
    if (frame_id(w, frames[i], &frame) || grow_stacks(w)) return -1;
    s = find_slot(w->slot, w->mask, parent, frame);
    if (!s->id) {
      *s = (struct stack_slot){parent, frame, ++w->nstacks};
      put_uint(w, &w->rec, parent);
      put_uint(w, &w->rec, frame);
      if (end_record(w, RAW_STACK)) return -1;
    }
    parent = s->id;
  }
  *id = parent;
  return 0;
}

int raw_writer_sample(struct raw_writer *w, uint64_t time_ns, uint32_t pid,
                      uint32_t tid, uint32_t vm, const char *const *frames,
                      size_t nframes, uint64_t weight)
{
  uint32_t stack;
  int64_t delta = (int64_t)(time_ns - w->last_time);
  if (w->failed) return -1;
  if (!nframes) return fail(w, "a sample without frames");
  if (stack_id(w, frames, nframes, &stack)) return -1;
  /* Samples come from per-CPU buffers, a little out of order: the time
   * delta is signed, zigzag-encoded. */
  put_uint(w, &w->rec, ((uint64_t)delta << 1) ^ (uint64_t)(delta >> 63));
  put_uint(w, &w->rec, pid);
  put_uint(w, &w->rec, tid);
  put_uint(w, &w->rec, vm);
  put_uint(w, &w->rec, stack);
  put_uint(w, &w->rec, weight);
  w->last_time = time_ns;
  if (end_record(w, RAW_SAMPLE)) return -1;
  if (w->chunk.len >= CHUNK_FILL || time_ns - w->chunk_time >= CHUNK_EVERY) {
    w->chunk_time = time_ns;
    return write_chunk(w);
  }
  return 0;
}

int raw_writer_finish(struct raw_writer *w, const char *const *names,
                      const uint64_t *values, size_t n, uint64_t duration_ns)
{
  if (n > RAW_MAX_COUNTERS) n = RAW_MAX_COUNTERS;
  put_uint(w, &w->rec, n);
  for (size_t i = 0; i < n; i++) {
    put_str(w, &w->rec, names[i]);
    put_uint(w, &w->rec, values[i]);
  }
  if (end_record(w, RAW_COUNTERS)) return -1;
  put_uint(w, &w->rec, duration_ns);
  if (end_record(w, RAW_END)) return -1;
  return write_chunk(w);
}

void raw_writer_free(struct raw_writer *w)
{
  if (!w) return;
  strmap_free(w->frames);
  free(w->slot);
  free(w->vm);
  free(w->pid);
  free(w->chunk.p);
  free(w->rec.p);
  free(w->z.p);
  free(w);
}
