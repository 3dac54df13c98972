/*
** SVG flame graph writer.
**
** Every frame is a <g class="f"> holding a <title> (full name, weight,
** share of the total), a <rect> and a <text> label cut to fit. The
** script finds everything it needs in the document: the layout in data-*
** attributes, names in the <title>s. No profile string ever goes into
** the script: strings only appear as escaped XML character data, so a
** frame named "<script>" is text and "]]>" cannot end the CDATA section.
*/
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "svg.h"
#include "utf8.h"

#define PAD 10         /* pixels left and right of the frames */
#define FONT_SIZE 12   /* labels, in a monospace font */
#define CHAR_WIDTH 7.3 /* a monospace advance at FONT_SIZE, rounded up */
#define TITLE_Y 24     /* baseline of the title and the buttons */
#define SUBTITLE_Y 44
#define BOTTOM 30                  /* below the root row: the details line */
#define NOTE_HEIGHT 16             /* a line of the notes below the details */
#define HIGHLIGHT "rgb(230,0,230)" /* search matches */

struct svg {
  FILE *out;
  const char *unit;
  uint64_t total;
  double scale;                  /* pixels per unit of weight */
  double min_width;              /* pixels */
  int fh;                        /* frame height */
  int base;                      /* y of the bottom edge of the root row */
  size_t depth;                  /* stack levels drawn, "all" excluded */
  const struct svg_paint *paint; /* NULL: colours by frame kind */
};

/* The next character of s as XML can hold it: bad UTF-8 and characters
 * XML 1.0 forbids or discourages (controls, U+FFFE, U+FFFF) turn into
 * U+FFFD (*cp). Returns the bytes consumed; *ok: s holds *cp as is. */
static size_t xml_char(const char *s, uint32_t *cp, int *ok)
{
  size_t n = utf8_decode(s, cp);

  *ok = n > 0 && *cp >= 0x20 && !(*cp >= 0x7f && *cp <= 0x9f) &&
        *cp != 0xfffe && *cp != 0xffff;
  if (!*ok) *cp = UTF8_REPLACEMENT;
  return n ? n : 1;
}

/* Characters in s, as put_xml writes them. */
static size_t xml_len(const char *s)
{
  size_t len = 0;
  uint32_t cp;
  int ok;

  for (; *s; len++) s += xml_char(s, &cp, &ok);
  return len;
}

/* Writes at most max characters of s, escaped for text and attributes. */
static void put_xml(FILE *out, const char *s, size_t max)
{
  for (; *s && max > 0; max--) {
    uint32_t cp;
    int ok;
    size_t n = xml_char(s, &cp, &ok);
    switch (cp) {
    case '&': fputs("&amp;", out); break;
    case '<': fputs("&lt;", out); break;
    case '>': fputs("&gt;", out); break;
    case '"': fputs("&quot;", out); break;
    case '\'': fputs("&#39;", out); break;
    default:
      if (ok)
        fwrite(s, 1, n, out);
      else
        fputs("\xef\xbf\xbd", out); /* U+FFFD */
    }
    s += n;
  }
}

/* The label of a frame w pixels wide: the name, or its start and "..",
 * or nothing. The script's fit() does the same after a zoom. */
static void put_label(FILE *out, const char *name, double w)
{
  double room = floor((w - 6) / CHAR_WIDTH);

  if (room < 3) return;
  if ((double)xml_len(name) <= room) {
    put_xml(out, name, SIZE_MAX);
  } else {
    put_xml(out, name, (size_t)room - 2);
    fputs("..", out);
  }
}

/* "1234567" as "1,234,567". */
static const char *grouped(uint64_t v, char buf[32])
{
  char digits[24];
  int n = snprintf(digits, sizeof(digits), "%" PRIu64, v);
  char *d = buf;

  for (int i = 0; i < n; i++) {
    if (i > 0 && (n - i) % 3 == 0) *d++ = ',';
    *d++ = digits[i];
  }
  *d = '\0';
  return buf;
}

/*
** Colours: a hue range per frame kind of the naming contract, and a
** place in it from a hash of the name, so a function keeps its colour
** from one graph to the next.
*/

struct palette {
  double hue, hue_range; /* degrees */
  double sat, light;     /* 0..1, varied a little by the hash */
};

static const struct palette lua_pal = {0, 45, 0.85, 0.58};       /* warm */
static const struct palette trace_pal = {95, 45, 0.55, 0.55};    /* green */
static const struct palette c_pal = {195, 25, 0.60, 0.62};       /* blue */
static const struct palette builtin_pal = {255, 35, 0.50, 0.70}; /* violet */
static const struct palette vm_pal = {0, 0, 0, 0.72};            /* grey */

static const struct palette *palette_of(const char *name)
{
  size_t len = strlen(name);

  if (strncmp(name, "trace#", 6) == 0) return &trace_pal;
  if (strncmp(name, "C:", 2) == 0) return &c_pal;
  if (strncmp(name, "builtin:", 8) == 0) return &builtin_pal;
  /* [GC], [JIT compiler], [interpreter]; Lua frames end in ')'. */
  if (len > 1 && name[0] == '[' && name[len - 1] == ']') return &vm_pal;
  return &lua_pal;
}

static void color(const char *name, const struct palette *pal, int rgb[3])
{
  uint32_t h = 2166136261u; /* FNV-1a, 32 bits */
  double v[3], c, x, m, hue, sat, light;
  int sector;

  for (const char *s = name; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  for (int i = 0; i < 3; i++) v[i] = (h >> (8 * i) & 0xff) / 255.0;
  hue = pal->hue + pal->hue_range * v[0];
  sat = pal->sat * (0.85 + 0.15 * v[1]);
  light = pal->light + 0.08 * (v[2] - 0.5);
  /* HSL to RGB. */
  c = (1 - fabs(2 * light - 1)) * sat;
  x = c * (1 - fabs(fmod(hue / 60, 2) - 1));
  m = light - c / 2;
  sector = (int)(hue / 60) % 6;
  double r[6] = {c, x, 0, 0, x, c}, g[6] = {x, c, c, x, 0, 0},
         b[6] = {0, 0, x, c, c, x};
  rgb[0] = (int)lround((r[sector] + m) * 255);
  rgb[1] = (int)lround((g[sector] + m) * 255);
  rgb[2] = (int)lround((b[sector] + m) * 255);
}

/*
** Frames.
*/

static void put_frame(struct svg *s, const char *name, size_t depth,
                      uint64_t offset, uint64_t total)
{
  double x = PAD + (double)offset * s->scale;
  double w = (double)total * s->scale;
  double y = s->base - (double)(depth + 1) * s->fh;
  double pct = s->total ? 100.0 * (double)total / (double)s->total : 0;
  char num[32], tip[256];
  int rgb[3];

  if (s->paint) {
    s->paint->frame(name, depth, total, rgb, tip, sizeof(tip), s->paint->arg);
  } else {
    /* The root, "all", is no function: grey like the VM states. */
    color(name, depth == 0 ? &vm_pal : palette_of(name), rgb);
    snprintf(tip, sizeof(tip), "%s %s, %.2f%%", grouped(total, num), s->unit,
             pct);
  }
  fprintf(s->out,
          "<g class=\"f\" data-o=\"%" PRIu64 "\" data-w=\"%" PRIu64
          "\" data-d=\"%zu\"><title>",
          offset, total, depth);
  put_xml(s->out, name, SIZE_MAX);
  fputs(" (", s->out);
  put_xml(s->out, tip, SIZE_MAX);
  fprintf(s->out,
          ")</title><rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" "
          "height=\"%d\" fill=\"rgb(%d,%d,%d)\"/><text x=\"%.2f\" "
          "y=\"%.1f\">",
          x, y, w, s->fh - 1, rgb[0], rgb[1], rgb[2], x + 3,
          y + s->fh / 2.0 + FONT_SIZE * 0.35);
  put_label(s->out, name, w);
  fputs("</text></g>\n", s->out);
}

/* Frames narrower than min_width are left out, and so their children. */
static int measure(const struct profile_frame *f, void *arg)
{
  struct svg *s = arg;

  if ((double)f->total * s->scale < s->min_width) return PROFILE_SKIP;
  if (f->depth + 1 > s->depth) s->depth = f->depth + 1;
  return 0;
}

static int draw(const struct profile_frame *f, void *arg)
{
  struct svg *s = arg;

  if ((double)f->total * s->scale < s->min_width) return PROFILE_SKIP;
  put_frame(s, f->name, f->depth + 1, f->offset, f->total);
  return ferror(s->out) ? -1 : 0; /* stop early on a full disk */
}

/*
** The document. The script is ours alone; it reads the frames from the
** DOM, and changes them through attributes and textContent only.
*/

static const char style[] =
    "<style>\n"
    "text { font-family: monospace; font-size: 12px; fill: #000; }\n"
    "#title { font-size: 17px; text-anchor: middle; }\n"
    "#subtitle { fill: #555; text-anchor: middle; }\n"
    "#search, #matched { text-anchor: end; }\n"
    ".button { fill: #1d4e89; cursor: pointer; }\n"
    ".button:hover { text-decoration: underline; }\n"
    ".hidden { display: none; }\n"
    "g.f { cursor: pointer; }\n"
    "g.f text { pointer-events: none; }\n"
    "g.f:hover rect { stroke: #222; stroke-width: 0.5; }\n"
    "g.parent rect { opacity: 0.5; }\n"
    "</style>\n";

/* One string per line: C compilers need not take longer literals. */
static const char *const script[] = {
    "<script type=\"text/ecmascript\"><![CDATA[\n",
    "\"use strict\";\n",
    "(function () {\n",
    "  var svg = document.documentElement;\n",
    "  var total = Number(svg.getAttribute(\"data-total\"));\n",
    "  var pad = Number(svg.getAttribute(\"data-pad\"));\n",
    "  var charw = Number(svg.getAttribute(\"data-charw\"));\n",
    "  var avail = Number(svg.getAttribute(\"width\")) - 2 * pad;\n",
    "  var details = document.getElementById(\"details\");\n",
    "  var matched = document.getElementById(\"matched\");\n",
    "  var unzoomButton = document.getElementById(\"unzoom\");\n",
    "  var searchButton = document.getElementById(\"search\");\n",
    "  var area = document.getElementById(\"frames\");\n",
    "  var frames = [], byNode = new Map(), term = null;\n",
    "\n",
    "  Array.prototype.forEach.call(area.children, function (g) {\n",
    "    var tip = g.querySelector(\"title\").textContent;\n",
    "    var f = {g: g, rect: g.querySelector(\"rect\"),\n",
    "             text: g.querySelector(\"text\"), tip: tip,\n",
    "             name: tip.slice(0, tip.lastIndexOf(\" (\")),\n",
    "             off: Number(g.getAttribute(\"data-o\")),\n",
    "             w: Number(g.getAttribute(\"data-w\")),\n",
    "             d: Number(g.getAttribute(\"data-d\"))};\n",
    "    f.fill = f.rect.getAttribute(\"fill\");\n",
    "    frames.push(f);\n",
    "    byNode.set(g, f);\n",
    "  });\n",
    "  var root = frames[0];\n",
    "\n",
    "  function percent(v) {\n",
    "    return (total ? 100 * v / total : 0).toFixed(2) + \"%\";\n",
    "  }\n",
    "\n",
    "  /* The label for a frame px wide; as put_label() in svg.c. */\n",
    "  function fit(name, px) {\n",
    "    var room = Math.floor((px - 6) / charw);\n",
    "    if (room < 3) return \"\";\n",
    "    var chars = Array.from(name);\n",
    "    return chars.length <= room ? name :\n",
    "        chars.slice(0, room - 2).join(\"\") + \"..\";\n",
    "  }\n",
    "\n",
    "  function place(f, x, w) {\n",
    "    f.rect.setAttribute(\"x\", x.toFixed(2));\n",
    "    f.rect.setAttribute(\"width\", w.toFixed(2));\n",
    "    f.text.setAttribute(\"x\", (x + 3).toFixed(2));\n",
    "    f.text.textContent = fit(f.name, w);\n",
    "  }\n",
    "\n",
    "  /* Frame z fills the width; its descendants scale with it, its\n",
    "   * ancestors span the width, dimmed; all else hides. Offsets and\n",
    "   * widths are in units of weight, exact in doubles up to 2^53. */\n",
    "  function zoom(z) {\n",
    "    if (!z || z.w === 0) return;\n",
    "    var scale = avail / z.w, end = z.off + z.w;\n",
    "    frames.forEach(function (f) {\n",
    "      var inside = f.d >= z.d && f.off >= z.off && f.off + f.w <= end;\n",
    "      var above = f.d < z.d && f.off <= z.off && f.off + f.w >= end;\n",
    "      f.g.classList.toggle(\"hidden\", !inside && !above);\n",
    "      f.g.classList.toggle(\"parent\", above);\n",
    "      if (inside) place(f, pad + (f.off - z.off) * scale, f.w * scale);\n",
    "      else if (above) place(f, pad, avail);\n",
    "    });\n",
    "    unzoomButton.classList.toggle(\"hidden\", z === root);\n",
    "  }\n",
    "\n",
    "  /* Highlights the frames whose name matches regular expression re\n",
    "   * and shows their share: the union of their spans, so a match\n",
    "   * inside another counts once. */\n",
    "  function search(re) {\n",
    "    var rx;\n",
    "    try {\n",
    "      rx = new RegExp(re);\n",
    "    } catch (e) {\n",
    "      details.textContent = \"Bad regular expression: \" + e.message;\n",
    "      return;\n",
    "    }\n",
    "    var hits = frames.filter(function (f) {\n",
    "      var hit = f !== root && rx.test(f.name);\n",
    "      f.rect.setAttribute(\"fill\", hit ? \"" HIGHLIGHT "\" : f.fill);\n",
    "      return hit;\n",
    "    });\n",
    "    hits.sort(function (a, b) { return a.off - b.off; });\n",
    "    var sum = 0, end = 0;\n",
    "    hits.forEach(function (f) {\n",
    "      var from = Math.max(f.off, end), to = f.off + f.w;\n",
    "      if (to > from) {\n",
    "        sum += to - from;\n",
    "        end = to;\n",
    "      }\n",
    "    });\n",
    "    term = re;\n",
    "    matched.textContent = \"Matched: \" + percent(sum);\n",
    "    searchButton.textContent = \"Reset Search\";\n",
    "  }\n",
    "\n",
    "  function resetSearch() {\n",
    "    frames.forEach(function (f) { f.rect.setAttribute(\"fill\", f.fill); "
    "});\n",
    "    term = null;\n",
    "    matched.textContent = \"\";\n",
    "    searchButton.textContent = \"Search\";\n",
    "  }\n",
    "\n",
    "  function ask() {\n",
    "    var re = window.prompt(\"Search frames (regular expression):\",\n",
    "                           term || \"\");\n",
    "    if (re) search(re);\n",
    "  }\n",
    "\n",
    "  function frameOf(e) {\n",
    "    var g = e.target.closest(\"g.f\");\n",
    "    return g ? byNode.get(g) : null;\n",
    "  }\n",
    "\n",
    "  area.addEventListener(\"click\", function (e) { zoom(frameOf(e)); });\n",
    "  area.addEventListener(\"mouseover\", function (e) {\n",
    "    var f = frameOf(e);\n",
    "    if (f) details.textContent = f.tip;\n",
    "  });\n",
    "  area.addEventListener(\"mouseout\", function () {\n",
    "    details.textContent = \"\";\n",
    "  });\n",
    "  unzoomButton.addEventListener(\"click\", function () { zoom(root); "
    "});\n",
    "  searchButton.addEventListener(\"click\", function () {\n",
    "    if (term === null) ask(); else resetSearch();\n",
    "  });\n",
    "  document.addEventListener(\"keydown\", function (e) {\n",
    "    if ((e.ctrlKey || e.metaKey) && e.key === \"f\" || e.key === \"/\") "
    "{\n",
    "      e.preventDefault();\n",
    "      ask();\n",
    "    } else if (e.key === \"Escape\") {\n",
    "      resetSearch();\n",
    "      zoom(root);\n",
    "    }\n",
    "  });\n",
    "  /* For the console and for tests. */\n",
    "  window.flamegraph = {search: search, resetSearch: resetSearch,\n",
    "                       reset: function () { zoom(root); }};\n",
    "})();\n",
    "]]></script>\n",
};

int svg_render(const struct profile *p, FILE *out,
               const struct render_opts *opts, const struct svg_paint *paint)
{
  static const struct render_opts defaults = {0};
  const struct render_opts *o = opts ? opts : &defaults;
  const char *title = o->title ? o->title : "Flame Graph";
  int width = o->width > 0 ? o->width : 1200;
  int top = o->subtitle ? SUBTITLE_Y + 14 : TITLE_Y + 14;
  struct svg s = {out,
                  profile_unit(p),
                  profile_total(p),
                  0,
                  o->min_width > 0 ? o->min_width : 0.1,
                  o->frame_height > 0 ? o->frame_height : 16,
                  0,
                  0,
                  paint};
  size_t nnotes = paint ? paint->nnotes : 0;
  int notes_height = nnotes ? (int)nnotes * NOTE_HEIGHT + 6 : 0;
  int height, ret;

  if (width <= 2 * PAD + 1) {
    fprintf(stderr, "luaspy: flame graph width %d is too small\n", width);
    return -1;
  }
  s.scale = s.total ? (double)(width - 2 * PAD) / (double)s.total : 0;
  if ((ret = profile_walk(p, measure, &s)) != 0) return ret;
  height = top + (int)(s.depth + 1) * s.fh + BOTTOM + notes_height;
  s.base = height - BOTTOM - notes_height;

  fprintf(out,
          "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
          "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" "
          "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
          "data-total=\"%" PRIu64 "\" data-pad=\"%d\" data-charw=\"%g\">\n",
          width, height, width, height, s.total, PAD, CHAR_WIDTH);
  fputs(style, out);
  fputs("<rect width=\"100%\" height=\"100%\" fill=\"#f7f6f2\"/>\n", out);
  fprintf(out, "<text id=\"title\" x=\"%d\" y=\"%d\">", width / 2, TITLE_Y);
  put_xml(out, title, SIZE_MAX);
  fputs("</text>\n", out);
  if (o->subtitle) {
    fprintf(out, "<text id=\"subtitle\" x=\"%d\" y=\"%d\">", width / 2,
            SUBTITLE_Y);
    put_xml(out, o->subtitle, SIZE_MAX);
    fputs("</text>\n", out);
  }
  fprintf(out,
          "<text id=\"unzoom\" class=\"button hidden\" x=\"%d\" y=\"%d\">"
          "Reset Zoom</text>\n"
          "<text id=\"search\" class=\"button\" x=\"%d\" y=\"%d\">"
          "Search</text>\n"
          "<text id=\"details\" x=\"%d\" y=\"%d\">%s</text>\n"
          "<text id=\"matched\" x=\"%d\" y=\"%d\"></text>\n"
          "<g id=\"frames\">\n",
          PAD, TITLE_Y, width - PAD, TITLE_Y, PAD, s.base + BOTTOM - 10,
          s.total ? "" : "No stacks in this profile", width - PAD,
          s.base + BOTTOM - 10);
  put_frame(&s, "all", 0, 0, s.total);
  if (s.total && (ret = profile_walk(p, draw, &s)) != 0) return ret;
  fputs("</g>\n", out);
  for (size_t i = 0; i < nnotes; i++) {
    fprintf(out, "<text class=\"note\" x=\"%d\" y=\"%d\">", PAD,
            s.base + BOTTOM + 4 + (int)i * NOTE_HEIGHT);
    put_label(out, paint->notes[i], width - 2 * PAD);
    fputs("</text>\n", out);
  }
  for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++)
    fputs(script[i], out);
  fputs("</svg>\n", out);
  return 0;
}

int svg_write(const struct profile *p, FILE *out,
              const struct render_opts *opts)
{
  return svg_render(p, out, opts, NULL);
}

void svg_put_xml(FILE *out, const char *s, size_t max)
{
  put_xml(out, s, max);
}
