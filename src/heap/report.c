/*
** Reports of heap snapshots. The largest tables are ranked by their own
** bytes (header, array and hash parts), not by what they retain: every
** root retains nearly everything. Growth (--diff) compares tables by
** address, which a table keeps while its parts are reallocated, and
** checks that the path is still the same.
*/
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../cmd/common.h"
#include "../output/json.h"
#include "../proc/proc.h"
#include "report.h"

#define PATH_MAX_LEN 1024
#define NODE_BYTES 24 /* a hash node: what a new entry costs, eventually */

/* One table in a report: its index in the snapshot(s). */
struct row {
  uint32_t idx;   /* in the (last) snapshot */
  int64_t before; /* index in the first snapshot, -1 if new */
  int64_t score;
};

static uint64_t peak_rss(void)
{
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) ? 0 : (uint64_t)ru.ru_maxrss * 1024;
}

static int by_score(const void *a, const void *b)
{
  const struct row *x = a, *y = b;
  return x->score < y->score   ? 1
         : x->score > y->score ? -1
                               : (x->idx > y->idx) - (x->idx < y->idx);
}

/* The best rows offered so far, at most cap (by_score's order): a heap
 * whose root is the worst row kept, so that millions of tables cost no
 * more memory than the rows shown. */
struct top {
  struct row *v;
  size_t n, cap;
};

static void swap_rows(struct row *a, struct row *b)
{
  struct row t = *a;
  *a = *b;
  *b = t;
}

static void top_offer(struct top *t, struct row r)
{
  size_t i;
  if (t->n < t->cap) {
    /* Sift up: a worse row goes towards the root. */
    for (i = t->n++, t->v[i] = r;
         i && by_score(&t->v[i], &t->v[(i - 1) / 2]) > 0; i = (i - 1) / 2)
      swap_rows(&t->v[i], &t->v[(i - 1) / 2]);
    return;
  }
  if (!t->n || by_score(&r, &t->v[0]) >= 0) return;
  t->v[0] = r;
  for (i = 0;;) { /* sift down */
    size_t c = 2 * i + 1;
    if (c >= t->n) break;
    if (c + 1 < t->n && by_score(&t->v[c + 1], &t->v[c]) > 0) c++;
    if (by_score(&t->v[c], &t->v[i]) <= 0) break;
    swap_rows(&t->v[c], &t->v[i]);
    i = c;
  }
}

/* The rows kept, best first; the caller frees them. */
static struct row *top_rows(struct top *t, size_t *n)
{
  qsort(t->v, t->n, sizeof(*t->v), by_score);
  *n = t->n;
  return t->v;
}

/* The n largest tables of s (by own bytes). Caller frees. */
static struct row *largest(const struct heap_snap *s, int top, size_t *n)
{
  struct top t = {malloc((size_t)top * sizeof(struct row)), 0, (size_t)top};
  if (!t.v) return NULL;
  for (size_t i = 0; i < s->nobjs; i++)
    if (s->objs[i].type == HEAP_TAB)
      top_offer(&t, (struct row){(uint32_t)i, -1, (int64_t)s->objs[i].bytes});
  return top_rows(&t, n);
}

/* Tables of `after` that grew since `before`, largest growth first. */
static struct row *grown(struct heap_ctx *c, const struct heap_snap *before,
                         const struct heap_snap *after, int top, size_t *n)
{
  struct top t = {malloc((size_t)top * sizeof(struct row)), 0, (size_t)top};
  struct row *rows;
  if (!t.v) return NULL;
  for (size_t i = 0; i < after->nobjs; i++) {
    const struct heap_obj *a = &after->objs[i];
    uint32_t b;
    int64_t bytes0 = 0, entries0 = 0, score;
    int found = a->type == HEAP_TAB &&
                !addrmap_get(&before->seen, a->addr, &b) && b != HEAP_LEAF &&
                before->objs[b].type == HEAP_TAB;
    if (a->type != HEAP_TAB) continue;
    if (found) {
      bytes0 = (int64_t)before->objs[b].bytes;
      entries0 = before->objs[b].entries;
    }
    score = (int64_t)a->bytes - bytes0 +
            NODE_BYTES * ((int64_t)a->entries - entries0);
    if (score > 0)
      top_offer(&t, (struct row){(uint32_t)i, found ? (int64_t)b : -1, score});
  }
  rows = top_rows(&t, n);
  /* The same address under another path is another table (address reuse). */
  for (size_t i = 0; i < *n; i++) {
    char p0[PATH_MAX_LEN], p1[PATH_MAX_LEN];
    if (rows[i].before < 0) continue;
    heap_path(c, before, (uint32_t)rows[i].before, p0, sizeof(p0));
    heap_path(c, after, rows[i].idx, p1, sizeof(p1));
    if (strcmp(p0, p1)) rows[i].before = -1;
  }
  return rows;
}

static void total(const struct heap_tally *t, uint64_t *objs, uint64_t *bytes)
{
  *objs = *bytes = 0;
  for (int i = 0; i < HEAP_NTYPES; i++) {
    *objs += t->objects[i];
    *bytes += t->bytes[i];
  }
}

static const char *measured(const struct heap_run *r, char *buf, size_t len)
{
  if (!r->stopped) return "live snapshot, target not stopped";
  snprintf(buf, len, "target stopped (ptrace) for %.3f s while walked",
           r->stopped_seconds);
  return buf;
}

/* -- text ----------------------------------------------------------------- */

static void text_types(FILE *out, const struct heap_snap *s)
{
  uint64_t co, cb, go, gb;
  fprintf(out, "  %-10s %12s %14s %12s %14s\n", "type", "objects", "bytes",
          "reached", "reached bytes");
  for (int i = 0; i < HEAP_NTYPES; i++)
    fprintf(out,
            "  %-10s %12" PRIu64 " %14" PRIu64 " %12" PRIu64 " %14" PRIu64 "\n",
            heap_type_name(i), s->census.objects[i], s->census.bytes[i],
            s->graph.objects[i], s->graph.bytes[i]);
  total(&s->census, &co, &cb);
  total(&s->graph, &go, &gb);
  fprintf(out,
          "  %-10s %12" PRIu64 " %14" PRIu64 " %12" PRIu64 " %14" PRIu64 "\n",
          "all", co, cb, go, gb);
  fprintf(out, "  objects/bytes: every object on the GC lists (garbage not "
               "yet swept included);\n  reached: from package.loaded, _G, "
               "the registry, the main thread, VM roots\n");
  fprintf(out,
          "  skipped as inconsistent: %" PRIu64 " on the GC lists, %" PRIu64
          " reached%s%s%s%s\n",
          s->census.skipped, s->graph.skipped,
          s->census.incomplete ? "; GC lists: " : "",
          s->census.incomplete ? s->census.incomplete : "",
          s->graph.incomplete ? "; graph: " : "",
          s->graph.incomplete ? s->graph.incomplete : "");
  if (s->entries_capped)
    fprintf(out,
            "  %" PRIu64 " tables/stacks read only up to "
            "--max-entries\n",
            s->entries_capped);
}

static void text_vm_header(FILE *out, const struct heap_snap *s)
{
  fprintf(out, "VM 0x%" PRIx64 " (LuaJIT 2.1 %s): GC total %" PRIu64 " bytes\n",
          s->vm->G, lj_flavor_name(s->vm->lay->flavor), s->gc_total);
}

static void text_largest(FILE *out, struct heap_ctx *c,
                         const struct heap_snap *s, int top)
{
  size_t n;
  struct row *rows = largest(s, top, &n);
  if (!rows) return;
  fprintf(out, "  largest tables (own bytes: header, array and hash parts; "
               "retained: first reached through it):\n");
  fprintf(out, "  %12s %10s %14s  %s\n", "bytes", "entries", "retained",
          "path");
  for (size_t i = 0; i < n; i++) {
    const struct heap_obj *o = &s->objs[rows[i].idx];
    char path[PATH_MAX_LEN];
    heap_path(c, s, rows[i].idx, path, sizeof(path));
    fprintf(out, "  %12u %10u %14" PRIu64 "  %s\n", o->bytes, o->entries,
            o->retained, path);
  }
  free(rows);
}

static void text_grown(FILE *out, struct heap_ctx *c, const struct heap_snap *b,
                       const struct heap_snap *a, int top)
{
  size_t n;
  struct row *rows = grown(c, b, a, top, &n);
  uint64_t bo, bb, ao, ab;
  if (!rows) return;
  total(&b->census, &bo, &bb);
  total(&a->census, &ao, &ab);
  fprintf(out,
          "  GC lists: %" PRIu64 " -> %" PRIu64 " objects, %" PRIu64
          " -> %" PRIu64 " bytes; GC total %" PRIu64 " -> %" PRIu64 " bytes\n",
          bo, ao, bb, ab, b->gc_total, a->gc_total);
  if (!n)
    fprintf(out, "  no table grew\n");
  else
    fprintf(out,
            "  tables that grew (bytes and entries before -> after):\n"
            "  %23s %21s  %s\n",
            "bytes", "entries", "path");
  for (size_t i = 0; i < n; i++) {
    const struct heap_obj *o = &a->objs[rows[i].idx];
    const struct heap_obj *p =
        rows[i].before >= 0 ? &b->objs[rows[i].before] : NULL;
    char path[PATH_MAX_LEN];
    heap_path(c, a, rows[i].idx, path, sizeof(path));
    fprintf(out, "  %10u -> %10u %8u -> %8u  %s%s\n", p ? p->bytes : 0,
            o->bytes, p ? p->entries : 0, o->entries, path, p ? "" : " (new)");
  }
  free(rows);
}

void heap_report_text(FILE *out, const struct heap_run *r)
{
  char comm[64] = "?", how[96];
  proc_comm(r->pid, comm, sizeof(comm));
  if (r->after)
    fprintf(out, "pid %d (%s): heap growth over %.1f s, %zu Lua VM%s, %s\n",
            (int)r->pid, comm, r->interval, r->nvms, r->nvms == 1 ? "" : "s",
            measured(r, how, sizeof(how)));
  else
    fprintf(out, "pid %d (%s): heap of %zu Lua VM%s, %s\n", (int)r->pid, comm,
            r->nvms, r->nvms == 1 ? "" : "s", measured(r, how, sizeof(how)));
  for (size_t i = 0; i < r->nvms; i++) {
    const struct heap_snap *s = r->after ? &r->after[i] : &r->before[i];
    text_vm_header(out, s);
    text_types(out, s);
    if (r->after)
      text_grown(out, &r->ctxs[i], &r->before[i], s, r->top);
    else
      text_largest(out, &r->ctxs[i], s, r->top);
  }
  if (r->flame) fprintf(out, "flame graph: %s\n", r->flame);
  fprintf(out,
          "snapshot%s: %.3f s, %" PRIu64 " bytes read from the target; "
          "luaspy peak RSS %" PRIu64 " bytes\n",
          r->after ? "s" : "", r->seconds, r->bytes_read, peak_rss());
}

/* -- JSON ----------------------------------------------------------------- */

static void json_hex(struct json *j, const char *key, uint64_t v)
{
  char buf[32];
  snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
  json_key(j, key);
  json_str(j, buf);
}

static void json_tally(struct json *j, const char *key,
                       const struct heap_tally *t)
{
  uint64_t o, b;
  json_key(j, key);
  json_begin_obj(j);
  json_key(j, "types");
  json_begin_obj(j);
  for (int i = 0; i < HEAP_NTYPES; i++) {
    json_key(j, heap_type_name(i));
    json_begin_obj(j);
    json_key(j, "objects");
    json_uint(j, t->objects[i]);
    json_key(j, "bytes");
    json_uint(j, t->bytes[i]);
    json_end_obj(j);
  }
  json_end_obj(j);
  total(t, &o, &b);
  json_key(j, "objects");
  json_uint(j, o);
  json_key(j, "bytes");
  json_uint(j, b);
  json_key(j, "skipped");
  json_uint(j, t->skipped);
  json_key(j, "incomplete");
  json_str(j, t->incomplete);
  json_end_obj(j);
}

static void json_table(struct json *j, struct heap_ctx *c,
                       const struct heap_snap *s, uint32_t idx)
{
  const struct heap_obj *o = &s->objs[idx];
  char path[PATH_MAX_LEN];
  heap_path(c, s, idx, path, sizeof(path));
  json_key(j, "path");
  json_str(j, path);
  json_hex(j, "address", o->addr);
  json_key(j, "bytes");
  json_uint(j, o->bytes);
  json_key(j, "entries");
  json_uint(j, o->entries);
  json_key(j, "retained_bytes");
  json_uint(j, o->retained);
}

static void json_vm(struct json *j, const struct heap_run *r, size_t i)
{
  const struct heap_snap *s = r->after ? &r->after[i] : &r->before[i];
  struct heap_ctx *c = &r->ctxs[i];
  size_t n;
  struct row *rows;
  json_begin_obj(j);
  json_hex(j, "address", s->vm->G);
  json_key(j, "flavor");
  json_str(j, lj_flavor_name(s->vm->lay->flavor));
  json_key(j, "gc_total_bytes");
  json_uint(j, s->gc_total);
  json_tally(j, "census", &s->census);
  json_tally(j, "reached", &s->graph);
  json_key(j, "entries_capped");
  json_uint(j, s->entries_capped);
  json_key(j, "largest_tables");
  json_begin_arr(j);
  if ((rows = largest(s, r->top, &n))) {
    for (size_t k = 0; k < n; k++) {
      json_begin_obj(j);
      json_table(j, c, s, rows[k].idx);
      json_end_obj(j);
    }
    free(rows);
  }
  json_end_arr(j);
  if (r->after) {
    const struct heap_snap *b = &r->before[i];
    json_key(j, "before");
    json_begin_obj(j);
    json_key(j, "gc_total_bytes");
    json_uint(j, b->gc_total);
    json_tally(j, "census", &b->census);
    json_tally(j, "reached", &b->graph);
    json_end_obj(j);
    json_key(j, "grown_tables");
    json_begin_arr(j);
    if ((rows = grown(c, b, s, r->top, &n))) {
      for (size_t k = 0; k < n; k++) {
        const struct heap_obj *p =
            rows[k].before >= 0 ? &b->objs[rows[k].before] : NULL;
        json_begin_obj(j);
        json_table(j, c, s, rows[k].idx);
        json_key(j, "bytes_before");
        json_uint(j, p ? p->bytes : 0);
        json_key(j, "entries_before");
        json_uint(j, p ? p->entries : 0);
        json_key(j, "retained_bytes_before");
        json_uint(j, p ? p->retained : 0);
        json_key(j, "new");
        json_bool(j, !p);
        json_end_obj(j);
      }
      free(rows);
    }
    json_end_arr(j);
  }
  json_end_obj(j);
}

int heap_report_json(FILE *out, const struct heap_run *r)
{
  char exe[PROC_PATH_MAX] = "", how[96];
  struct json *j = json_new(out);
  int rc;
  if (!j) return -1;
  proc_exe(r->pid, exe, sizeof(exe));
  json_begin_obj(j);
  json_key(j, "pid");
  json_int(j, r->pid);
  json_key(j, "exe");
  json_str(j, exe);
  json_key(j, "measured");
  json_str(j, measured(r, how, sizeof(how)));
  json_key(j, "stopped");
  json_bool(j, r->stopped);
  json_key(j, "stopped_seconds");
  json_double(j, r->stopped ? r->stopped_seconds : 0);
  json_key(j, "diff_seconds");
  if (r->after)
    json_double(j, r->interval);
  else
    json_null(j);
  json_key(j, "vms");
  json_begin_arr(j);
  for (size_t i = 0; i < r->nvms; i++) json_vm(j, r, i);
  json_end_arr(j);
  json_key(j, "flame_graph");
  json_str(j, r->flame);
  json_key(j, "snapshot_seconds");
  json_double(j, r->seconds);
  json_key(j, "bytes_read");
  json_uint(j, r->bytes_read);
  json_key(j, "peak_rss_bytes");
  json_uint(j, peak_rss());
  json_end_obj(j);
  rc = json_done(j);
  json_free(j);
  if (!rc) fputc('\n', out);
  return rc;
}
