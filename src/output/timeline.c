/*
** Timeline writer. Weights are kept by (fine bucket, function) in a hash
** table; drawing merges fine buckets into at most BARS bars and the
** functions into the top TIMELINE_TOP and "other". Widths are "nice"
** (1, 2 or 5 times a power of ten ms), so are the times on the axis: fine
** buckets start at 1 ms and grow 1, 2, 10, 20, 100 ms..., and a bar is
** the smallest nice multiple of them that fits the recording in BARS.
**
** As in svg.c, no string of the profile goes into the script: names are
** escaped XML character data in each bar's <title>, which the HTML
** page's script copies into the details line with textContent.
*/
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "frame.h"
#include "strmap.h"
#include "svg.h"
#include "timeline.h"

#define FINE_START 1000000ull /* ns: 1 ms, the first fine bucket width */
#define BARS 150              /* at most this many bars */
#define WIDTH 1200
#define LEFT 70 /* pixels left of the bars: the y axis labels */
#define RIGHT 20
#define TOP 60
#define PLOT_HEIGHT 320
#define LEGEND_LINE 18
#define NAME_MAX_CHARS 140 /* of a function name in the legend */
#define SLOTS_MIN 1024

struct cell {
  uint32_t bucket, fn;
  uint64_t weight;
};

struct timeline {
  uint64_t width; /* ns per fine bucket */
  int twos;       /* width is 2 times a power of ten: grows 5 times */
  uint32_t last;  /* the last fine bucket with a sample, or the span's */
  struct strmap *fns;
  uint64_t *fn_total; /* by function id */
  uint32_t fn_cap;
  struct cell *cell; /* open addressing; weight 0: free */
  uint32_t ncell, mask;
  uint64_t total;
};

static int oom(void)
{
  fputs("luaspy: out of memory\n", stderr);
  return -1;
}

struct timeline *timeline_new(void)
{
  struct timeline *tl = calloc(1, sizeof(*tl));
  if (!tl || !(tl->cell = calloc(SLOTS_MIN, sizeof(*tl->cell))) ||
      !(tl->fns = strmap_new())) {
    if (tl) free(tl->cell);
    free(tl);
    oom();
    return NULL;
  }
  tl->width = FINE_START;
  tl->mask = SLOTS_MIN - 1;
  return tl;
}

void timeline_free(struct timeline *tl)
{
  if (!tl) return;
  strmap_free(tl->fns);
  free(tl->fn_total);
  free(tl->cell);
  free(tl);
}

static struct cell *find_cell(struct cell *cell, uint32_t mask, uint32_t bucket,
                              uint32_t fn)
{
  uint64_t h = ((uint64_t)bucket << 32 | fn) * 0x9e3779b97f4a7c15ull;
  uint32_t i = (uint32_t)(h >> 32) & mask;
  while (cell[i].weight && (cell[i].bucket != bucket || cell[i].fn != fn))
    i = (i + 1) & mask;
  return &cell[i];
}

/* Re-adds every cell to a table of mask + 1 slots, its bucket divided
 * by div (merging neighbours when the width grows). */
static int rehash(struct timeline *tl, uint32_t mask, uint32_t div)
{
  struct cell *cell = calloc((size_t)mask + 1, sizeof(*cell));
  uint32_t n = 0;
  if (!cell) return oom();
  for (uint32_t i = 0; i <= tl->mask; i++) {
    struct cell *c = &tl->cell[i], *d;
    if (!c->weight) continue;
    d = find_cell(cell, mask, c->bucket / div, c->fn);
    if (!d->weight) {
      *d = (struct cell){c->bucket / div, c->fn, 0};
      n++;
    }
    d->weight += c->weight;
  }
  free(tl->cell);
  tl->cell = cell;
  tl->mask = mask;
  tl->ncell = n;
  return 0;
}

/* The fine bucket of time t, widening the buckets until it fits. */
static int bucket_of(struct timeline *tl, uint64_t t, uint32_t *bucket)
{
  while (t / tl->width >= TIMELINE_FINE) {
    uint32_t grow = tl->twos ? 5 : 2;
    if (rehash(tl, tl->mask, grow)) return -1;
    tl->width *= grow;
    tl->last /= grow;
    tl->twos = !tl->twos;
  }
  *bucket = (uint32_t)(t / tl->width);
  if (*bucket > tl->last) tl->last = *bucket;
  return 0;
}

/* The frame a sample counts for: the innermost Lua function. */
static const char *running(const char *const *frames, size_t n)
{
  for (size_t i = n; i-- > 0;) {
    struct frame_parts fp;
    frame_parse(frames[i], &fp);
    if (fp.chunk_len && strncmp(frames[i], "trace#", 6)) return frames[i];
  }
  return frames[n - 1];
}

int timeline_add(struct timeline *tl, uint64_t time_ns,
                 const char *const *frames, size_t n, uint64_t weight)
{
  const char *name;
  uint32_t bucket, fn;
  struct cell *c;
  int ret;
  if (!n || !weight) return 0;
  if (weight > UINT64_MAX - tl->total) {
    fputs("luaspy: timeline: sample weights add up past 2^64\n", stderr);
    return -1;
  }
  name = running(frames, n);
  if (bucket_of(tl, time_ns, &bucket)) return -1;
  if ((ret = strmap_id(tl->fns, name, strlen(name), &fn)) < 0) return -1;
  if (fn >= tl->fn_cap) {
    uint32_t cap = tl->fn_cap ? tl->fn_cap * 2 : 64;
    uint64_t *t = realloc(tl->fn_total, cap * sizeof(*t));
    if (!t) return oom();
    memset(t + tl->fn_cap, 0, (cap - tl->fn_cap) * sizeof(*t));
    tl->fn_total = t;
    tl->fn_cap = cap;
  }
  if (tl->ncell >= tl->mask / 2 && rehash(tl, tl->mask * 2 + 1, 1)) return -1;
  c = find_cell(tl->cell, tl->mask, bucket, fn);
  if (!c->weight) {
    *c = (struct cell){bucket, fn, 0};
    tl->ncell++;
  }
  c->weight += weight;
  tl->fn_total[fn] += weight;
  tl->total += weight;
  return 0;
}

int timeline_span(struct timeline *tl, uint64_t duration_ns)
{
  uint32_t bucket;
  /* The end of the span is in the bucket before, when it is a border. */
  return bucket_of(tl, duration_ns ? duration_ns - 1 : 0, &bucket);
}

/*
** Drawing.
*/

/* Ten colours apart from each other, then grey for "other". */
static const char *const colors[TIMELINE_TOP + 1] = {
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#86bcb6", "#bab0ac"};

struct chart {
  const struct timeline *tl;
  uint32_t top[TIMELINE_TOP]; /* function ids, heaviest first */
  int ntop;
  uint64_t bar_ns;
  uint32_t per_bar;           /* fine buckets per bar */
  uint32_t nbars, tick_every; /* bars between labelled ticks */
  uint64_t *bars; /* nbars x (ntop + 1) weights; the last column "other" */
  uint64_t ymax;
};

/* Heaviest first; equal weights by name, so output is reproducible. */
static int heavier(const struct timeline *tl, uint32_t a, uint32_t b)
{
  if (tl->fn_total[a] != tl->fn_total[b])
    return tl->fn_total[a] > tl->fn_total[b];
  return strcmp(strmap_key(tl->fns, a), strmap_key(tl->fns, b)) < 0;
}

/* The smallest of 1, 2, 5, 10, 20, 50... that is at least x. */
static uint64_t nice(uint64_t x)
{
  uint64_t v = 1;
  for (;;) {
    if (v >= x) return v;
    if (2 * v >= x) return 2 * v;
    if (5 * v >= x) return 5 * v;
    if (v > UINT64_MAX / 100) return 10 * v;
    v *= 10;
  }
}

static int layout(struct chart *c)
{
  const struct timeline *tl = c->tl;
  uint32_t nfn = strmap_count(tl->fns), nfine = tl->last + 1;
  int cols;
  /* The top functions: insertion into a list of TIMELINE_TOP. */
  for (uint32_t f = 0; f < nfn; f++) {
    int i;
    if (c->ntop < TIMELINE_TOP) {
      i = c->ntop++;
    } else {
      if (!heavier(tl, f, c->top[TIMELINE_TOP - 1])) continue;
      i = TIMELINE_TOP - 1;
    }
    for (; i > 0 && heavier(tl, f, c->top[i - 1]); i--)
      c->top[i] = c->top[i - 1];
    c->top[i] = f;
  }
  cols = c->ntop + 1;
  c->bar_ns = nice((uint64_t)(nfine + BARS - 1) / BARS * tl->width);
  while (c->bar_ns % tl->width) c->bar_ns = nice(c->bar_ns + 1);
  c->per_bar = (uint32_t)(c->bar_ns / tl->width);
  c->nbars = (nfine + c->per_bar - 1) / c->per_bar;
  c->tick_every = (uint32_t)nice((c->nbars + 9) / 10);
  if (!(c->bars = calloc((size_t)c->nbars * cols, sizeof(*c->bars))))
    return oom();
  for (uint32_t i = 0; i <= tl->mask; i++) {
    const struct cell *cl = &tl->cell[i];
    int col = c->ntop;
    if (!cl->weight) continue;
    for (int k = 0; k < c->ntop; k++)
      if (c->top[k] == cl->fn) col = k;
    c->bars[(size_t)(cl->bucket / c->per_bar) * cols + col] += cl->weight;
  }
  for (uint32_t b = 0; b < c->nbars; b++) {
    uint64_t sum = 0;
    for (int k = 0; k < cols; k++) sum += c->bars[(size_t)b * cols + k];
    if (sum > c->ymax) c->ymax = sum;
  }
  return 0;
}

/* Seconds with as many decimals as steps of step_ns need. */
static void put_seconds(FILE *out, uint64_t ns, uint64_t step_ns)
{
  int prec = 0;
  for (uint64_t s = 1000000000u; step_ns < s && prec < 6; s /= 10) prec++;
  fprintf(out, "%.*f", prec, (double)ns / 1e9);
}

static const char *band_name(const struct chart *c, int k)
{
  return k < c->ntop ? strmap_key(c->tl->fns, c->top[k]) : "other";
}

static void put_bars(FILE *out, const struct chart *c, double plot_w)
{
  int cols = c->ntop + 1;
  uint64_t bar_ns = c->bar_ns;
  double bw = plot_w / c->nbars,
         scale = c->ymax ? PLOT_HEIGHT / (double)c->ymax : 0;
  fputs("<g id=\"bars\">\n", out);
  for (uint32_t b = 0; b < c->nbars; b++) {
    const uint64_t *w = &c->bars[(size_t)b * cols];
    uint64_t sum = 0, below = 0;
    for (int k = 0; k < cols; k++) sum += w[k];
    for (int k = 0; k < cols; k++) {
      double y, h;
      if (!w[k]) continue;
      h = w[k] * scale;
      y = TOP + PLOT_HEIGHT - (below + w[k]) * scale;
      below += w[k];
      fprintf(out,
              "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
              "fill=\"%s\"><title>",
              LEFT + b * bw, y, bw > 1.5 ? bw - 0.5 : bw, h, colors[k]);
      put_seconds(out, (uint64_t)b * bar_ns, bar_ns);
      fputs("-", out);
      put_seconds(out, (uint64_t)(b + 1) * bar_ns, bar_ns);
      fputs(" s: ", out);
      svg_put_xml(out, band_name(c, k), SIZE_MAX);
      fprintf(out,
              ": %" PRIu64 " of %" PRIu64 " samples (%.1f%%)</title></rect>\n",
              w[k], sum, 100.0 * w[k] / sum);
    }
  }
  fputs("</g>\n", out);
}

static void put_axes(FILE *out, const struct chart *c, double plot_w)
{
  uint64_t bar_ns = c->bar_ns;
  uint32_t every = c->tick_every;
  int base = TOP + PLOT_HEIGHT;
  fprintf(out,
          "<line x1=\"%d\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#444\"/>\n"
          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n",
          LEFT, base, LEFT + plot_w, base, LEFT, TOP, LEFT, base);
  for (uint32_t b = 0; b <= c->nbars; b += every) {
    double x = LEFT + b * plot_w / c->nbars;
    fprintf(out,
            "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" "
            "stroke=\"#444\"/><text class=\"tick\" x=\"%.2f\" y=\"%d\">",
            x, base, x, base + 4, x, base + 16);
    put_seconds(out, (uint64_t)b * bar_ns, bar_ns * every);
    fputs(" s</text>\n", out);
  }
  fprintf(out,
          "<text class=\"ylabel\" x=\"%d\" y=\"%d\">%" PRIu64 "</text>\n"
          "<text class=\"ylabel\" x=\"%d\" y=\"%d\">0</text>\n"
          "<text x=\"%d\" y=\"%d\">samples per %g ms</text>\n",
          LEFT - 6, TOP + 4, c->ymax, LEFT - 6, base, LEFT, TOP - 6,
          (double)bar_ns / 1e6);
}

static void put_legend(FILE *out, const struct chart *c, int y)
{
  int cols = c->ntop + 1;
  for (int k = 0; k < cols; k++, y += LEGEND_LINE) {
    uint64_t w = k < c->ntop ? c->tl->fn_total[c->top[k]] : 0;
    if (k == c->ntop) {
      for (uint32_t b = 0; b < c->nbars; b++)
        w += c->bars[(size_t)b * cols + k];
      if (!w) break;
    }
    fprintf(out,
            "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" "
            "fill=\"%s\"/><text x=\"%d\" y=\"%d\">%" PRIu64 " (%.1f%%) ",
            LEFT, y - 10, colors[k], LEFT + 18, y, w,
            c->tl->total ? 100.0 * w / c->tl->total : 0);
    svg_put_xml(out, band_name(c, k), NAME_MAX_CHARS);
    fputs("</text>\n", out);
  }
}

static const char style[] =
    "<style>\n"
    "text { font-family: monospace; font-size: 12px; fill: #000; }\n"
    "#title { font-size: 17px; text-anchor: middle; }\n"
    "#subtitle { fill: #555; text-anchor: middle; }\n"
    ".tick { text-anchor: middle; }\n"
    ".ylabel { text-anchor: end; }\n"
    "#bars rect:hover { stroke: #000; stroke-width: 1; }\n"
    "</style>\n";

/* The page's script has no '<' or '&': the page stays well-formed XML. */
static const char script[] =
    "<script>\n"
    "\"use strict\";\n"
    "(function () {\n"
    "  var details = document.getElementById(\"details\");\n"
    "  var bars = document.getElementById(\"bars\");\n"
    "  bars.addEventListener(\"mouseover\", function (e) {\n"
    "    var t = e.target.querySelector(\"title\");\n"
    "    if (t) details.textContent = t.textContent;\n"
    "  });\n"
    "})();\n"
    "</script>\n";

static void put_svg(FILE *out, const struct chart *c, int html,
                    const struct render_opts *o)
{
  double plot_w = WIDTH - LEFT - RIGHT;
  int legend_y = TOP + PLOT_HEIGHT + 44;
  int height = legend_y + (c->ntop + 1) * LEGEND_LINE + 10;
  fprintf(out,
          "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" "
          "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
          WIDTH, height, WIDTH, height);
  if (!html) fputs(style, out);
  fputs("<rect width=\"100%\" height=\"100%\" fill=\"#f7f6f2\"/>\n", out);
  fprintf(out, "<text id=\"title\" x=\"%d\" y=\"22\">", WIDTH / 2);
  svg_put_xml(out, o && o->title ? o->title : "Timeline", SIZE_MAX);
  fputs("</text>\n", out);
  if (o && o->subtitle) {
    fprintf(out, "<text id=\"subtitle\" x=\"%d\" y=\"40\">", WIDTH / 2);
    svg_put_xml(out, o->subtitle, SIZE_MAX);
    fputs("</text>\n", out);
  }
  if (c->nbars && c->ymax) {
    put_axes(out, c, plot_w);
    put_bars(out, c, plot_w);
  } else {
    fprintf(out,
            "<text x=\"%d\" y=\"%d\">No samples in this recording</text>\n",
            LEFT, TOP + PLOT_HEIGHT / 2);
    fputs("<g id=\"bars\"></g>\n", out);
  }
  put_legend(out, c, legend_y);
  fputs("</svg>\n", out);
}

int timeline_write(const struct timeline *tl, FILE *out, int html,
                   const struct render_opts *o)
{
  struct chart c = {.tl = tl};
  if (layout(&c)) return -1;
  if (html) {
    fputs("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\n"
          "<head>\n<meta charset=\"utf-8\"/>\n<title>",
          out);
    svg_put_xml(out, o && o->title ? o->title : "Timeline", SIZE_MAX);
    fprintf(out, "</title>\n%s</head>\n<body>\n", style);
  } else {
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n",
          out);
  }
  put_svg(out, &c, html, o);
  if (html) {
    fputs("<pre id=\"details\">Hover a bar: its time, function and "
          "samples.</pre>\n",
          out);
    fputs(script, out);
    fputs("</body>\n</html>\n", out);
  }
  free(c.bars);
  return ferror(out) ? -1 : 0;
}

static int ends_in(const char *s, const char *suffix)
{
  size_t n = strlen(s), k = strlen(suffix);
  return n > k && !strcasecmp(s + n - k, suffix);
}

int timeline_output(const char *path, const char *format, int flag, int *html)
{
  *html = -1;
  if (format && !strcmp(format, "html"))
    *html = 1;
  else if (format && flag && !strcmp(format, "svg"))
    *html = 0;
  else if (!format && ends_in(path, ".html"))
    *html = 1;
  else if (!format && flag && ends_in(path, ".svg"))
    *html = 0;
  else if (!format && flag && !strcmp(path, "-"))
    *html = 1;
  if (flag && *html < 0) {
    fprintf(stderr,
            "luaspy: a timeline is HTML or SVG: end '%s' in .html or "
            ".svg, or give --format html or svg\n",
            path);
    return -1;
  }
  return 0;
}
