/*
** Profile aggregation: interned frame strings and a call tree whose nodes
** are found by hashing (parent, frame). Adding a stack of depth d costs d
** hash look-ups and no allocation once its frames and prefix are known,
** which is what millions of samples of deep stacks need.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "folded.h"
#include "pprof.h"
#include "profile.h"
#include "speedscope.h"
#include "strmap.h"
#include "svg.h"
#include "utf8.h"

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, marks a cut frame string */
#define ARENA_BLOCK 65536       /* bytes of frame strings per allocation */
#define TABLE_MIN 1024          /* first size of both hash tables */

struct frame { /* one interned frame string */
  const char *name;
  size_t len;
  uint64_t hash;
};

struct node { /* a stack prefix: the parent's prefix plus one frame */
  uint32_t parent, frame;
  uint64_t self, total;
};

struct block { /* frame strings live in blocks freed with the profile */
  struct block *prev;
  size_t used;
  char data[ARENA_BLOCK];
};

struct profile {
  char *unit;
  uint64_t total;
  struct block *block;
  struct frame *frame; /* interned strings, by id */
  uint32_t nframe, frame_cap;
  uint32_t *frame_tab; /* open addressing: frame id + 1, 0 = free */
  uint32_t frame_mask;
  struct node *node; /* node 0 is the root, above every root frame */
  uint32_t nnode, node_cap;
  uint32_t *node_tab; /* open addressing: node id, 0 = free (root) */
  uint32_t node_mask;
};

static void oom(void)
{
  fputs("luaspy: out of memory\n", stderr);
}

/* splitmix64's finaliser spreads (parent, frame) over the table. */
static uint64_t hash_node(uint32_t parent, uint32_t frame)
{
  uint64_t h = (uint64_t)parent << 32 | frame;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

/* Doubles an array of *cap elements (at least min) of size sz. */
static int grow(void *pv, uint32_t *cap, uint32_t min, size_t sz)
{
  void **p = pv;
  uint32_t n = *cap ? *cap : min;
  void *q;

  if (*cap) {
    if (n > UINT32_MAX / 2) {
      fputs("luaspy: profile too large\n", stderr);
      return -1;
    }
    n *= 2;
  }
  q = realloc(*p, (size_t)n * sz);
  if (!q) {
    oom();
    return -1;
  }
  *p = q;
  *cap = n;
  return 0;
}

struct profile *profile_new(const char *unit)
{
  struct profile *p = calloc(1, sizeof(*p));

  if (!p || !(p->unit = strdup(unit ? unit : "samples")) ||
      grow(&p->node, &p->node_cap, TABLE_MIN, sizeof(*p->node)) < 0) {
    if (p) free(p->unit);
    free(p);
    oom();
    return NULL;
  }
  p->node[0] = (struct node){0, 0, 0, 0};
  p->nnode = 1;
  return p;
}

void profile_free(struct profile *p)
{
  if (!p) return;
  while (p->block) {
    struct block *b = p->block;
    p->block = b->prev;
    free(b);
  }
  free(p->frame);
  free(p->frame_tab);
  free(p->node);
  free(p->node_tab);
  free(p->unit);
  free(p);
}

const char *profile_unit(const struct profile *p)
{
  return p->unit;
}

uint64_t profile_total(const struct profile *p)
{
  return p->total;
}

static char *arena_copy(struct profile *p, const char *s, size_t len)
{
  struct block *b = p->block;
  char *d;

  if (!b || ARENA_BLOCK - b->used < len + 1) {
    if (!(b = malloc(sizeof(*b)))) {
      oom();
      return NULL;
    }
    b->prev = p->block;
    b->used = 0;
    p->block = b;
  }
  d = b->data + b->used;
  memcpy(d, s, len);
  d[len] = '\0';
  b->used += len + 1;
  return d;
}

/* Rebuilds an open-addressing table at twice the size (or TABLE_MIN)
 * from the values lo..hi-1 it holds; hash_of gives a value's hash. */
static int rehash(uint32_t **tab, uint32_t *mask, uint32_t lo, uint32_t hi,
                  uint64_t (*hash_of)(const struct profile *, uint32_t),
                  const struct profile *p)
{
  uint32_t size = *tab ? (*mask + 1) * 2 : TABLE_MIN;
  uint32_t *t;

  if (*tab && size == 0) { /* 2^32 slots: no index type left */
    fputs("luaspy: profile too large\n", stderr);
    return -1;
  }
  if (!(t = calloc(size, sizeof(*t)))) {
    oom();
    return -1;
  }
  for (uint32_t v = lo; v < hi; v++) {
    uint32_t i = (uint32_t)hash_of(p, v) & (size - 1);
    while (t[i]) i = (i + 1) & (size - 1);
    t[i] = v;
  }
  free(*tab);
  *tab = t;
  *mask = size - 1;
  return 0;
}

/* Frame table values are frame id + 1. */
static uint64_t frame_hash_of(const struct profile *p, uint32_t v)
{
  return p->frame[v - 1].hash;
}

/* Node table values are node ids. */
static uint64_t node_hash_of(const struct profile *p, uint32_t v)
{
  return hash_node(p->node[v].parent, p->node[v].frame);
}

/* The id of frame string s, bounded to PROFILE_FRAME_MAX bytes. */
static int intern(struct profile *p, const char *s, uint32_t *id)
{
  char cut[PROFILE_FRAME_MAX + 1];
  size_t len = strnlen(s, PROFILE_FRAME_MAX + 1);
  uint64_t h;
  uint32_t i;

  if (len > PROFILE_FRAME_MAX) {
    size_t keep = utf8_cut(s, PROFILE_FRAME_MAX - strlen(ELLIPSIS));
    memcpy(cut, s, keep);
    memcpy(cut + keep, ELLIPSIS, strlen(ELLIPSIS));
    len = keep + strlen(ELLIPSIS);
    s = cut;
  }
  h = str_hash(s, len);
  if (p->frame_tab) {
    for (i = (uint32_t)h & p->frame_mask; p->frame_tab[i];
         i = (i + 1) & p->frame_mask) {
      const struct frame *f = &p->frame[p->frame_tab[i] - 1];
      if (f->hash == h && f->len == len && memcmp(f->name, s, len) == 0) {
        *id = p->frame_tab[i] - 1;
        return 0;
      }
    }
  }
  /* Not there: keep the table at most half full, then insert. */
  if (p->nframe == p->frame_cap &&
      grow(&p->frame, &p->frame_cap, TABLE_MIN, sizeof(*p->frame)) < 0)
    return -1;
  if ((!p->frame_tab || p->nframe >= (p->frame_mask + 1) / 2) &&
      rehash(&p->frame_tab, &p->frame_mask, 1, p->nframe + 1, frame_hash_of,
             p) < 0)
    return -1;
  struct frame *f = &p->frame[p->nframe];
  if (!(f->name = arena_copy(p, s, len))) return -1;
  f->len = len;
  f->hash = h;
  for (i = (uint32_t)h & p->frame_mask; p->frame_tab[i];
       i = (i + 1) & p->frame_mask)
    ;
  p->frame_tab[i] = p->nframe + 1;
  *id = p->nframe++;
  return 0;
}

/* The node for stack prefix parent + frame, made if new. */
static int child(struct profile *p, uint32_t parent, uint32_t frame,
                 uint32_t *id)
{
  uint64_t h = hash_node(parent, frame);
  uint32_t i;

  if (p->node_tab) {
    for (i = (uint32_t)h & p->node_mask; p->node_tab[i];
         i = (i + 1) & p->node_mask) {
      const struct node *n = &p->node[p->node_tab[i]];
      if (n->parent == parent && n->frame == frame) {
        *id = p->node_tab[i];
        return 0;
      }
    }
  }
  if (p->nnode == p->node_cap &&
      grow(&p->node, &p->node_cap, TABLE_MIN, sizeof(*p->node)) < 0)
    return -1;
  /* The root (node 0) is never in the table, so 0 can mark free slots. */
  if ((!p->node_tab || p->nnode >= (p->node_mask + 1) / 2) &&
      rehash(&p->node_tab, &p->node_mask, 1, p->nnode, node_hash_of, p) < 0)
    return -1;
  p->node[p->nnode] = (struct node){parent, frame, 0, 0};
  for (i = (uint32_t)h & p->node_mask; p->node_tab[i];
       i = (i + 1) & p->node_mask)
    ;
  p->node_tab[i] = p->nnode;
  *id = p->nnode++;
  return 0;
}

/* Walks (making them) the nodes of frames[0..nframes) from node n. */
static int descend(struct profile *p, uint32_t *n, const char *const *frames,
                   size_t nframes)
{
  for (size_t i = 0; i < nframes; i++) {
    uint32_t f;
    if (!frames[i]) {
      fputs("luaspy: cannot add a NULL frame\n", stderr);
      return -1;
    }
    if (intern(p, frames[i], &f) < 0 || child(p, *n, f, n) < 0) return -1;
  }
  return 0;
}

int profile_add(struct profile *p, const char *const *frames, size_t nframes,
                uint64_t weight)
{
  if (nframes == 0) {
    fputs("luaspy: cannot add an empty stack\n", stderr);
    return -1;
  }
  return profile_add_at(p, 0, frames, nframes, weight);
}

int profile_prefix(struct profile *p, const char *const *frames, size_t nframes,
                   uint32_t *node)
{
  *node = 0;
  return descend(p, node, frames, nframes);
}

int profile_extend(struct profile *p, uint32_t node, const char *const *frames,
                   size_t nframes, uint32_t *out)
{
  if (node >= p->nnode) {
    fputs("luaspy: no such profile node\n", stderr);
    return -1;
  }
  *out = node;
  return descend(p, out, frames, nframes);
}

int profile_add_at(struct profile *p, uint32_t node, const char *const *frames,
                   size_t nframes, uint64_t weight)
{
  uint32_t n = node;

  if (node >= p->nnode || (node == 0 && nframes == 0)) {
    fputs("luaspy: cannot add an empty stack\n", stderr);
    return -1;
  }
  if (weight > UINT64_MAX - p->total) {
    fputs("luaspy: profile weight overflows 64 bits\n", stderr);
    return -1;
  }
  if (weight == 0) return 0;
  if (descend(p, &n, frames, nframes) < 0) return -1;
  /* Totals change only now that the whole path exists: a failure above
   * leaves nodes of weight 0, which no iteration shows. */
  p->total += weight;
  p->node[n].self += weight;
  for (;; n = p->node[n].parent) {
    p->node[n].total += weight;
    if (n == 0) break;
  }
  return 0;
}

/*
** Iteration. The tree keeps no child lists (they would cost memory on
** every add); a walk sorts all nodes once by (parent, frame name rank),
** which puts each node's children next to each other, in name order.
*/

struct order {
  uint64_t key; /* parent << 32 | rank of the frame string */
  uint32_t node;
};

struct tree {
  uint32_t *child; /* nodes grouped by parent, each group in name order */
  uint32_t *first; /* child[first[n] .. first[n + 1]) are n's children */
};

/* Pre-order visit; returns 0, PROFILE_SKIP, or a value that stops. */
typedef int (*visit_fn)(const struct profile_frame *f, const char *const *path,
                        void *arg);

struct named {
  const char *name;
  uint32_t frame;
};

static int by_name(const void *a, const void *b)
{
  return strcmp(((const struct named *)a)->name,
                ((const struct named *)b)->name);
}

static int by_key(const void *a, const void *b)
{
  uint64_t x = ((const struct order *)a)->key;
  uint64_t y = ((const struct order *)b)->key;
  return (x > y) - (x < y);
}

static int tree_build(const struct profile *p, struct tree *t)
{
  uint32_t nchild = p->nnode - 1;
  struct named *byname = malloc(((size_t)p->nframe + 1) * sizeof(*byname));
  uint32_t *rank = malloc(((size_t)p->nframe + 1) * sizeof(*rank));
  struct order *o = malloc(((size_t)nchild + 1) * sizeof(*o));
  int ret = -1;

  t->child = malloc(((size_t)nchild + 1) * sizeof(*t->child));
  t->first = calloc((size_t)p->nnode + 1, sizeof(*t->first));
  if (!byname || !rank || !o || !t->child || !t->first) {
    oom();
    free(t->child);
    free(t->first);
    goto out;
  }
  for (uint32_t i = 0; i < p->nframe; i++)
    byname[i] = (struct named){p->frame[i].name, i};
  qsort(byname, p->nframe, sizeof(*byname), by_name);
  for (uint32_t i = 0; i < p->nframe; i++) rank[byname[i].frame] = i;
  for (uint32_t n = 1; n < p->nnode; n++)
    o[n - 1] = (struct order){
        (uint64_t)p->node[n].parent << 32 | rank[p->node[n].frame], n};
  qsort(o, nchild, sizeof(*o), by_key);
  /* Count children per parent, then sum the counts into start indices. */
  for (uint32_t i = 0; i < nchild; i++) {
    t->child[i] = o[i].node;
    t->first[p->node[o[i].node].parent + 1]++;
  }
  for (uint32_t n = 0; n < p->nnode; n++) t->first[n + 1] += t->first[n];
  ret = 0;
out:
  free(byname);
  free(rank);
  free(o);
  return ret;
}

/* One open node of the depth-first walk. */
struct level {
  uint32_t node, next; /* next: index in tree.child of the next child */
  uint64_t cursor;     /* offset of that child */
};

static int reserve(struct level **lv, const char ***path, size_t *cap)
{
  size_t n = *cap ? *cap * 2 : 64;
  struct level *l = realloc(*lv, n * sizeof(*l));
  const char **s;

  if (!l) goto fail;
  *lv = l;
  if (!(s = realloc(*path, n * sizeof(*s)))) goto fail;
  *path = s;
  *cap = n;
  return 0;
fail:
  oom();
  return -1;
}

/* Depth-first, without recursion: stacks can be deeper than C's. */
static int walk(const struct profile *p, visit_fn visit, void *arg)
{
  struct tree t;
  struct level *lv = NULL;  /* lv[0 .. depth] are open, lv[0] the root */
  const char **path = NULL; /* path[i]: frame name of lv[i + 1] */
  size_t cap = 0, depth = 0;
  int ret;

  if (tree_build(p, &t) < 0) return -1;
  if ((ret = reserve(&lv, &path, &cap)) < 0) goto out;
  lv[0] = (struct level){0, t.first[0], 0};
  for (;;) {
    struct level *l = &lv[depth];
    if (l->next == t.first[l->node + 1]) { /* no children left */
      if (depth-- == 0) break;
      continue;
    }
    uint32_t id = t.child[l->next++];
    const struct node *n = &p->node[id];
    if (n->total == 0) continue;
    struct profile_frame f = {p->frame[n->frame].name, depth, l->cursor,
                              n->total, n->self};
    l->cursor += n->total;
    path[depth] = f.name;
    ret = visit(&f, path, arg);
    if (ret == PROFILE_SKIP) continue;
    if (ret != 0) break;
    if (depth + 2 > cap && (ret = reserve(&lv, &path, &cap)) < 0) break;
    lv[++depth] = (struct level){id, t.first[id], f.offset};
  }
out:
  free(lv);
  free(path);
  free(t.child);
  free(t.first);
  return ret == PROFILE_SKIP ? 0 : ret;
}

struct walk_ctx {
  profile_walk_fn fn;
  void *arg;
};

static int walk_visit(const struct profile_frame *f, const char *const *path,
                      void *arg)
{
  const struct walk_ctx *c = arg;
  (void)path;
  return c->fn(f, c->arg);
}

int profile_walk(const struct profile *p, profile_walk_fn fn, void *arg)
{
  struct walk_ctx c = {fn, arg};
  return walk(p, walk_visit, &c);
}

struct stack_ctx {
  profile_stack_fn fn;
  void *arg;
  int ret; /* what fn returned when it stopped the walk */
};

#define STACK_STOP 2 /* neither 0 nor PROFILE_SKIP: ends the walk */

static int stack_visit(const struct profile_frame *f, const char *const *path,
                       void *arg)
{
  struct stack_ctx *c = arg;

  if (f->self == 0) return 0;
  c->ret = c->fn(path, f->depth + 1, f->self, c->arg);
  return c->ret == 0 ? 0 : STACK_STOP;
}

int profile_foreach_stack(const struct profile *p, profile_stack_fn fn,
                          void *arg)
{
  struct stack_ctx c = {fn, arg, 0};
  int ret = walk(p, stack_visit, &c);
  return ret == STACK_STOP ? c.ret : ret;
}

/*
** Output.
*/

static int write_folded(const struct profile *p, FILE *out,
                        const struct render_opts *opts)
{
  (void)opts;
  return folded_write(p, out);
}

/* The writers, by name; the first is standard output's default. */
static const struct {
  const char *name;
  const char *suffix[2]; /* of the file names that pick it */
  int (*write)(const struct profile *p, FILE *out,
               const struct render_opts *opts);
} writers[] = {
    {"folded", {".folded", ".txt"}, write_folded},
    {"svg", {".svg"}, svg_write},
    {"pprof", {".pb.gz"}, pprof_write},
    {"speedscope", {".speedscope.json"}, speedscope_write},
};

#define NWRITERS (sizeof(writers) / sizeof(writers[0]))

static int ends_in(const char *s, const char *suffix)
{
  size_t n = strlen(s), k = suffix ? strlen(suffix) : 0;
  return k && n > k && strcasecmp(s + n - k, suffix) == 0;
}

const char *profile_format(const char *path, const char *format)
{
  const char *base;

  if (format) {
    for (size_t i = 0; i < NWRITERS; i++)
      if (strcmp(format, writers[i].name) == 0) return writers[i].name;
    fprintf(stderr,
            "luaspy: unknown output format '%s' (use folded, svg, pprof or "
            "speedscope)\n",
            format);
    return NULL;
  }
  if (strcmp(path, "-") == 0) return writers[0].name;
  base = strrchr(path, '/');
  base = base ? base + 1 : path;
  for (size_t i = 0; i < NWRITERS; i++)
    if (ends_in(base, writers[i].suffix[0]) ||
        ends_in(base, writers[i].suffix[1]))
      return writers[i].name;
  fprintf(stderr,
          "luaspy: cannot tell the format of '%s' from its name "
          "(end it in .svg, .folded, .txt, .pb.gz or .speedscope.json, or "
          "name a format)\n",
          path);
  return NULL;
}

int output_file(const char *path, int (*write)(FILE *out, void *arg), void *arg)
{
  int to_stdout = strcmp(path, "-") == 0;
  const char *name = to_stdout ? "standard output" : path;
  FILE *out;
  int ret;

  if (!(out = to_stdout ? stdout : fopen(path, "w"))) {
    fprintf(stderr, "luaspy: cannot create %s: %s\n", path, strerror(errno));
    return -1;
  }
  ret = write(out, arg);
  /* stdio keeps a write error until checked: a full disk shows up here,
   * at the latest when the last buffer is flushed or the file closed. */
  if (fflush(out) != 0 || ferror(out)) {
    fprintf(stderr, "luaspy: writing %s: %s\n", name, strerror(errno));
    ret = -1;
  }
  if (!to_stdout && fclose(out) != 0 && ret == 0) {
    fprintf(stderr, "luaspy: writing %s: %s\n", name, strerror(errno));
    ret = -1;
  }
  return ret;
}

struct write_ctx {
  const struct profile *p;
  const struct render_opts *opts;
  int (*write)(const struct profile *p, FILE *out,
               const struct render_opts *opts);
};

static int write_profile(FILE *out, void *arg)
{
  const struct write_ctx *c = arg;
  return c->write(c->p, out, c->opts);
}

int profile_write(const struct profile *p, const char *path, const char *format,
                  const struct render_opts *opts)
{
  const char *fmt = profile_format(path, format);
  struct write_ctx c = {p, opts, NULL};

  if (!fmt) return -1;
  for (size_t i = 0; i < NWRITERS; i++)
    if (fmt == writers[i].name) /* profile_format returned this string */
      c.write = writers[i].write;
  return output_file(path, write_profile, &c);
}
