/*
** Differential flame graph. Call paths are matched through an index per
** profile: the key of a node is its parent's number and its frame
** string, so a path is looked up one frame at a time as a walk goes down
** it, and no full path is ever built.
*/
#define _GNU_SOURCE /* asprintf */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diff_svg.h"
#include "strmap.h"
#include "svg.h"

#define NONE UINT32_MAX /* no such node in the other profile */
#define ROOT 0          /* parent number of a stack's root frame */

/* Greys for no change, the strongest red and blue; between, a blend. */
static const int grey[3] = {222, 222, 220};
static const int red[3] = {222, 44, 38};
static const int blue[3] = {40, 96, 222};

struct gone {                /* a call path only in BEFORE */
  const char *name, *caller; /* caller NULL: a stack's root frame */
  uint64_t total;
};

struct diff {
  const struct profile *before, *after;
  double before_total, after_total;
  struct strmap *after_idx;  /* AFTER's nodes: number + 1 is in a_path */
  struct strmap *before_idx; /* BEFORE's nodes that AFTER has too */
  uint64_t *before_weight;   /* by before_idx number */
  size_t weight_cap;
  uint32_t *a_path, *b_path; /* numbers + 1 of the nodes on the path */
  const char **names;        /* frame strings on the path */
  size_t path_cap;
  struct gone *gone;
  size_t ngone, gone_cap;
  double full; /* change in percentage points of the strongest colour */
  int failed;  /* out of memory making the notes, reported */
};

static int oom(struct diff *d)
{
  fputs("luaspy: out of memory\n", stderr);
  d->failed = 1;
  return -1;
}

static int grow(struct diff *d, void *pv, size_t *cap, size_t need, size_t sz)
{
  void **p = pv;
  size_t n = *cap ? *cap : 64;
  void *q;

  if (need < *cap) return 0;
  while (n <= need) n *= 2;
  if (!(q = realloc(*p, n * sz))) return oom(d);
  *p = q;
  *cap = n;
  return 0;
}

/* Room for a path one deeper than depth. */
static int path_room(struct diff *d, size_t depth)
{
  size_t cap = d->path_cap;

  if (grow(d, &d->a_path, &cap, depth, sizeof(*d->a_path)) < 0) return -1;
  cap = d->path_cap;
  if (grow(d, &d->b_path, &cap, depth, sizeof(*d->b_path)) < 0) return -1;
  cap = d->path_cap;
  if (grow(d, &d->names, &cap, depth, sizeof(*d->names)) < 0) return -1;
  d->path_cap = cap;
  return 0;
}

/* The index key of frame name under the node numbered parent. */
static size_t key(char buf[4 + PROFILE_FRAME_MAX], uint32_t parent,
                  const char *name)
{
  size_t len = strlen(name);

  memcpy(buf, &parent, 4);
  memcpy(buf + 4, name, len); /* profile frame strings fit */
  return 4 + len;
}

/* The number + 1 of the node (parent, name) in idx, or NONE. */
static uint32_t find(const struct strmap *idx, uint32_t parent,
                     const char *name)
{
  char k[4 + PROFILE_FRAME_MAX];
  uint32_t id;

  if (parent == NONE) return NONE;
  return strmap_find(idx, k, key(k, parent, name), &id) == 0 ? id + 1 : NONE;
}

static uint32_t parent_of(const uint32_t *path, size_t depth)
{
  return depth ? path[depth - 1] : ROOT;
}

/* Walk 1, over AFTER: number its nodes. */
static int index_after(const struct profile_frame *f, void *arg)
{
  struct diff *d = arg;
  char k[4 + PROFILE_FRAME_MAX];
  uint32_t id;

  if (path_room(d, f->depth) < 0 ||
      strmap_id(d->after_idx, k,
                key(k, parent_of(d->a_path, f->depth), f->name), &id) < 0)
    return -1;
  d->a_path[f->depth] = id + 1;
  return 0;
}

/* Walk 2, over BEFORE: number the nodes AFTER has too, with their
 * weights; note the first node of each path AFTER has not. */
static int index_before(const struct profile_frame *f, void *arg)
{
  struct diff *d = arg;
  char k[4 + PROFILE_FRAME_MAX];
  uint32_t a, id;

  if (path_room(d, f->depth) < 0) return -1;
  d->names[f->depth] = f->name;
  a = find(d->after_idx, parent_of(d->a_path, f->depth), f->name);
  if (a == NONE) {
    if (grow(d, &d->gone, &d->gone_cap, d->ngone, sizeof(*d->gone)) < 0)
      return -1;
    d->gone[d->ngone++] = (struct gone){
        f->name, f->depth ? d->names[f->depth - 1] : NULL, f->total};
    return PROFILE_SKIP; /* what is under it is gone too */
  }
  d->a_path[f->depth] = a;
  if (strmap_id(d->before_idx, k,
                key(k, parent_of(d->b_path, f->depth), f->name), &id) < 0 ||
      grow(d, &d->before_weight, &d->weight_cap, id,
           sizeof(*d->before_weight)) < 0)
    return -1;
  d->before_weight[id] = f->total;
  d->b_path[f->depth] = id + 1;
  return 0;
}

/* The change of a node's share, in percentage points; depth counts
 * from the stack's root frame. Follows the walk down AFTER in b_path. */
static double change(struct diff *d, size_t depth, const char *name,
                     uint64_t total)
{
  uint32_t b = find(d->before_idx, parent_of(d->b_path, depth), name);
  double before = b == NONE ? 0 : (double)d->before_weight[b - 1];

  d->b_path[depth] = b;
  return (d->after_total ? 100 * (double)total / d->after_total : 0) -
         (d->before_total ? 100 * before / d->before_total : 0);
}

/* Walk 3, over AFTER: the largest change sets the colour scale. */
static int measure_change(const struct profile_frame *f, void *arg)
{
  struct diff *d = arg;
  double c = fabs(change(d, f->depth, f->name, f->total));

  if (c > d->full) d->full = c;
  return 0;
}

/* svg_paint's hook, while the flame graph draws AFTER. */
static void paint(const char *name, size_t depth, uint64_t total, int rgb[3],
                  char *tip, size_t tip_size, void *arg)
{
  struct diff *d = arg;
  uint64_t before;
  double delta, t;
  const int *to;

  if (depth == 0) { /* "all" */
    before = (uint64_t)d->before_total;
    delta = (d->after_total ? 100.0 : 0) - (d->before_total ? 100.0 : 0);
  } else {
    delta = change(d, depth - 1, name, total);
    before = d->b_path[depth - 1] == NONE
                 ? 0
                 : d->before_weight[d->b_path[depth - 1] - 1];
  }
  t = fmin(fabs(delta) / d->full, 1);
  to = delta > 0 ? red : blue;
  for (int i = 0; i < 3; i++)
    rgb[i] = (int)lround(grey[i] + (to[i] - grey[i]) * t);
  snprintf(tip, tip_size,
           "before %" PRIu64 ", after %" PRIu64 " %s; share %.2f%% -> %.2f%%, "
           "%+.2f%%",
           before, total, profile_unit(d->after),
           d->before_total ? 100 * (double)before / d->before_total : 0,
           d->after_total ? 100 * (double)total / d->after_total : 0, delta);
}

static int by_weight(const void *a, const void *b)
{
  const struct gone *x = a, *y = b;

  if (x->total != y->total) return x->total < y->total ? 1 : -1;
  return strcmp(x->name, y->name);
}

/* The notes: the heaviest paths only in BEFORE, then a sum of the rest. */
static char **gone_notes(struct diff *d, size_t *n)
{
  size_t shown = d->ngone < DIFF_GONE_MAX ? d->ngone : DIFF_GONE_MAX;
  char **notes = calloc(shown + 3, sizeof(*notes)); /* NULL-ended */
  uint64_t rest = 0;
  int len = 0;

  *n = 0;
  if (!notes || d->ngone == 0) {
    if (!notes) oom(d);
    return notes;
  }
  qsort(d->gone, d->ngone, sizeof(*d->gone), by_weight);
  len = asprintf(&notes[(*n)++],
                 "Only in BEFORE, not drawn (%zu call path%s):", d->ngone,
                 d->ngone == 1 ? "" : "s");
  for (size_t i = 0; len >= 0 && i < d->ngone; i++) {
    const struct gone *g = &d->gone[i];
    double share = 100 * (double)g->total / d->before_total;
    if (i >= shown) {
      rest += g->total;
      continue;
    }
    len = asprintf(&notes[(*n)++], "-%.2f%% %s: %" PRIu64 " %s, %s%s", share,
                   g->name, g->total, profile_unit(d->before),
                   g->caller ? "called from " : "a root frame",
                   g->caller ? g->caller : "");
  }
  if (len >= 0 && rest)
    len = asprintf(&notes[(*n)++], "-%.2f%% in %zu more call paths",
                   100 * (double)rest / d->before_total, d->ngone - shown);
  if (len < 0) {
    notes[--*n] = NULL; /* asprintf leaves it undefined */
    oom(d);
  }
  return notes;
}

int diff_svg_write(const struct profile *before, const struct profile *after,
                   FILE *out, const struct render_opts *opts)
{
  struct diff d = {.before = before,
                   .after = after,
                   .before_total = (double)profile_total(before),
                   .after_total = (double)profile_total(after),
                   .full = DIFF_FULL_COLOUR_MIN};
  struct svg_paint sp = {.frame = paint, .arg = &d};
  char **notes = NULL;
  int ret = -1;

  if (!(d.after_idx = strmap_new()) || !(d.before_idx = strmap_new())) goto out;
  if (profile_walk(after, index_after, &d) != 0 ||
      profile_walk(before, index_before, &d) != 0 ||
      profile_walk(after, measure_change, &d) != 0 || d.failed)
    goto out;
  if (!(notes = gone_notes(&d, &sp.nnotes)) || d.failed) goto out;
  sp.notes = (const char *const *)notes;
  ret = svg_render(after, out, opts, &sp);
out:
  for (size_t i = 0; notes && notes[i]; i++) free(notes[i]);
  free(notes);
  strmap_free(d.after_idx);
  strmap_free(d.before_idx);
  free(d.before_weight);
  free(d.a_path);
  free(d.b_path);
  free(d.names);
  free(d.gone);
  return ret;
}
