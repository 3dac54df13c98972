/*
** The timeline of `luaspy jit -o`: one SVG (optionally inside an HTML
** page) with, per VM, a tick per compiled trace (late ones red, side
** traces short), aborts and flushes, and the mmap/mprotect rates.
*/
#include <stdio.h>

#include "report.h"

#define W 1000.0 /* plot width */
#define X0 150.0 /* left margin for row labels */
#define ROW 34.0
#define RATE_H 60.0 /* height of the syscall rate plot */

static double xof(const struct jit_session *s, double t)
{
  double span = s->seconds > 0 ? s->seconds : 1;
  if (t < 0) t = 0;
  return X0 + (W - X0 - 10) * (t > span ? 1 : t / span);
}

/* An attribute-safe copy of a Lua location for a <title>. */
static void esc(FILE *f, const char *str)
{
  for (; *str; str++) {
    switch (*str) {
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '&': fputs("&amp;", f); break;
    case '"': fputs("&quot;", f); break;
    default: fputc(*str, f);
    }
  }
}

static void rates(FILE *f, const struct jit_session *s, double y)
{
  const struct jit_mm_stats *m = s->mm;
  uint32_t max = 1;
  size_t nb;
  if (!m) return;
  nb = m->nbuckets;
  for (size_t i = 0; i < nb; i++) {
    if (m->mmaps[i] > max) max = m->mmaps[i];
    if (m->mprotects[i] > max) max = m->mprotects[i];
  }
  fprintf(f, "<text x='5' y='%.0f'>mmap (blue) / mprotect (grey)</text>\n",
          y + RATE_H / 2);
  fprintf(f, "<text x='5' y='%.0f' font-size='10'>max %.0f/s</text>\n",
          y + RATE_H / 2 + 14, max / JIT_MM_BUCKET);
  for (size_t i = 0; i < nb; i++) {
    double x = xof(s, i * JIT_MM_BUCKET), x2 = xof(s, (i + 1) * JIT_MM_BUCKET);
    double hp = RATE_H * m->mprotects[i] / max, hm = RATE_H * m->mmaps[i] / max;
    if (hp > 0)
      fprintf(f,
              "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' "
              "fill='#999'/>\n",
              x, y + RATE_H - hp, x2 - x, hp);
    if (hm > 0)
      fprintf(f,
              "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' "
              "fill='#36c' fill-opacity='0.8'/>\n",
              x, y + RATE_H - hm, (x2 - x) / 2, hm);
  }
}

static void vm_rows(FILE *f, const struct jit_session *s,
                    const struct jit_vmwatch *vw, double y)
{
  fprintf(f, "<text x='5' y='%.0f'>VM 0x%llx</text>\n", y + 14,
          (unsigned long long)vw->vm->G);
  fprintf(f, "<text x='5' y='%.0f' font-size='10'>compiles, aborts</text>\n",
          y + 28);
  fprintf(f, "<line x1='%.0f' y1='%.0f' x2='%.0f' y2='%.0f' stroke='#ccc'/>\n",
          X0, y + ROW, W - 10, y + ROW);
  for (size_t i = 0; i < vw->ntraces; i++) {
    const struct jit_trace *tr = &vw->traces[i];
    double x = xof(s, tr->born), top = tr->h.root ? y + 12 : y + 2;
    if (tr->before) continue;
    fprintf(f,
            "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' "
            "stroke-width='2'><title>trace %u%s at ",
            x, top, x, y + 20, tr->late ? "#d22" : "#2a2", tr->h.traceno,
            tr->late ? " (late)" : "");
    esc(f, jit_loc_name(&s->w->locs, tr->loc));
    fprintf(f, ", +%.2f s</title></line>\n", tr->born);
  }
  for (size_t i = 0; i < vw->naborts; i++) {
    const struct jit_abort *a = &vw->aborts[i];
    if (!a->count) continue;
    fprintf(f,
            "<circle cx='%.1f' cy='%.1f' r='3' fill='#e80'><title>%u "
            "aborts at ",
            xof(s, a->last), y + 27, a->count);
    esc(f, jit_loc_name(&s->w->locs, a->loc));
    fprintf(f, ": ");
    char rb[128];
    esc(f, jit_abort_text(vw->vm->lay, a->reason, a->detail, rb, sizeof(rb)));
    fprintf(f, "</title></circle>\n");
  }
  for (size_t i = 0; i < vw->nflushes; i++)
    fprintf(f,
            "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#000' "
            "stroke-dasharray='2,2'><title>flush at +%.2f s (%u traces)"
            "</title></line>\n",
            xof(s, vw->flushes[i].t), y, xof(s, vw->flushes[i].t), y + ROW,
            vw->flushes[i].t, vw->flushes[i].traces);
}

static void svg(FILE *f, const struct jit_session *s)
{
  double h = 40 + ROW * (double)s->w->nvms + (s->mm ? RATE_H + 20 : 0) + 30;
  double y = 30, wx = xof(s, s->w->warmup_at);
  fprintf(f,
          "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' "
          "height='%.0f' font-family='sans-serif' font-size='12'>\n",
          W, h);
  fprintf(f,
          "<text x='5' y='16'>luaspy jit: pid %d, %.1f s; green: "
          "compiled, red: late, orange: aborts, dashed: flush</text>\n",
          (int)s->pid, s->seconds);
  for (size_t i = 0; i < s->w->nvms; i++, y += ROW)
    vm_rows(f, s, &s->w->vms[i], y);
  if (s->mm) {
    y += 10;
    rates(f, s, y);
    y += RATE_H;
  }
  if (s->w->warmup_at > 0 && s->w->warmup_at < s->seconds)
    fprintf(f,
            "<line x1='%.1f' y1='24' x2='%.1f' y2='%.0f' stroke='#d22' "
            "stroke-dasharray='6,3'><title>end of warm-up</title></line>\n",
            wx, wx, y);
  for (int t = 0; t <= 10; t++) {
    double ts = s->seconds * t / 10;
    fprintf(f,
            "<text x='%.1f' y='%.0f' font-size='10' "
            "text-anchor='middle'>%.1fs</text>\n",
            xof(s, ts), y + 16, ts);
  }
  fprintf(f, "</svg>\n");
}

void jit_timeline(FILE *out, const struct jit_session *s, int html)
{
  if (!html) {
    svg(out, s);
    return;
  }
  fprintf(out,
          "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
          "<title>luaspy jit: pid %d</title></head><body>\n",
          (int)s->pid);
  svg(out, s);
  fprintf(out, "<h3>Verdicts</h3>\n<ul>\n");
  for (int i = 0; i < s->nv; i++) {
    fprintf(out, "<li><b>%s</b>: ", jit_verdict_name(s->v[i].kind));
    esc(out, s->v[i].text);
    fprintf(out, "</li>\n");
  }
  if (!s->nv) fprintf(out, "<li>none: the JIT compiler looks healthy</li>\n");
  fprintf(out, "</ul>\n</body></html>\n");
}
