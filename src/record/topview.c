/*
** The top view. Function names come from the target: in a terminal a
** control character in them would be obeyed, so they are written as
** text only, and cut to the width of the screen.
*/
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cmd/common.h"
#include "../output/utf8.h"
#include "topview.h"

#define NUMS_FMT "%6.1f%% %6.1f%% %8llu %8llu  "
#define HEAD_FMT "%7s %7s %8s %8s  %s"

static const char *const sort_names[] = {"self", "total", "name"};

const char *top_sort_name(enum top_sort s)
{
  return sort_names[s];
}

int top_sort_parse(const char *name, enum top_sort *s)
{
  for (int i = 0; i < 3; i++)
    if (!strcmp(name, sort_names[i])) {
      *s = (enum top_sort)i;
      return 0;
    }
  return -1;
}

static int printable(uint32_t cp)
{
  return cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp < 0xa0);
}

/* Writes s as at most max characters of text: control characters and
 * bytes that are not UTF-8 become '?', and a cut ends in "…". Returns
 * the characters written. */
static size_t put_text(FILE *f, const char *s, size_t max)
{
  size_t n = 0, len;
  uint32_t cp;
  for (; *s && n < max; s += len, n++) {
    if (!(len = utf8_decode(s, &cp))) len = 1, cp = '?';
    if (n + 1 == max && s[len]) {
      fputs("\xe2\x80\xa6", f); /* … */
      return max;
    }
    if (printable(cp))
      fwrite(s, 1, len, f);
    else
      fputc('?', f);
  }
  return n;
}

/* Ends a line; in a terminal the rest of the old one is cleared. */
static void end_line(FILE *f, const struct top_view *v)
{
  fputs(v->cols ? "\033[K\n" : "\n", f);
}

/* One line of our own text, cut to the screen. */
static void put_line(FILE *f, const struct top_view *v, const char *s)
{
  put_text(f, s, v->cols ? (size_t)v->cols : SIZE_MAX);
  end_line(f, v);
}

static void header(FILE *f, const struct top_view *v)
{
  const struct rec_stats *st = v->st;
  char line[512], clock[16], *p = line, *end = line + sizeof(line);
  uint64_t partial = 0, n = st->received;
  time_t now = time(NULL);
  struct tm tm;
  strftime(clock, sizeof(clock), "%H:%M:%S", localtime_r(&now, &tm));
  snprintf(line, sizeof(line),
           "luaspy top - %s - %d Hz%s - %s %.1f s - sorted by %s - %s",
           v->targets, v->hz, v->line_mode ? " - lines" : "",
           v->cumulative ? "since start," : "last", v->secs,
           top_sort_name(v->sort), clock);
  put_line(f, v, line);
  for (int i = 1; i <= LS_PARTIAL_LOOP; i++) partial += st->partial[i];
  snprintf(line, sizeof(line),
           "samples %llu  lost %llu  partial %llu  no VM %llu  unwound "
           "%.1f%%",
           (unsigned long long)n, (unsigned long long)st->lost,
           (unsigned long long)partial, (unsigned long long)st->no_vm,
           100 * stats_unwound(st));
  put_line(f, v, line);
  p += snprintf(p, (size_t)(end - p), "VM:");
  for (int c = 0; c < REC_VM_N; c++)
    if (c != REC_VM_UNKNOWN || st->vm[c])
      p += snprintf(p, (size_t)(end - p), "%s%s %.1f%%", c ? "  " : " ",
                    stats_vmclass_name((enum rec_vmclass)c),
                    n ? 100.0 * st->vm[c] / n : 0.0);
  snprintf(p, (size_t)(end - p), "  no Lua %.1f%%",
           n ? 100.0 * st->idle / n : 0.0);
  put_line(f, v, line);
}

static void columns(FILE *f, const struct top_view *v)
{
  char line[128];
  snprintf(line, sizeof(line), HEAD_FMT, "SELF%", "TOTAL%", "SELF", "TOTAL",
           "FUNCTION");
  if (v->cols) fputs("\033[7m", f); /* reverse video, to the line's end */
  put_text(f, line, v->cols ? (size_t)v->cols : SIZE_MAX);
  if (v->cols) fputs("\033[K\033[m", f);
  fputc('\n', f);
}

static int (*const orders[])(const void *, const void *) = {
    fstat_by_self, fstat_by_total, fstat_by_name};

int top_view_write(FILE *f, const struct top_view *v)
{
  size_t n, shown = 0, width = v->cols ? (size_t)v->cols : SIZE_MAX;
  struct fstat **fs = ftable_list(v->fns, &n);
  double total = v->samples ? (double)v->samples : 1;
  if (!fs) {
    die_msg("out of memory");
    return -1;
  }
  qsort(fs, n, sizeof(*fs), orders[v->sort]);
  if (v->cols && v->height <= TOP_VIEW_CHROME) {
    /* Drawing more lines than it has would scroll the screen. */
    fputs("\033[H\033[J", f);
    put_text(f, "luaspy top: the terminal is too small", width);
    free(fs);
    return 0;
  }
  if (v->cols) fputs("\033[H", f);
  header(f, v);
  if (v->cols) end_line(f, v);
  columns(f, v);
  for (; shown < n && shown < (size_t)v->rows; shown++) {
    char nums[128];
    size_t used;
    snprintf(nums, sizeof(nums), NUMS_FMT, 100 * fs[shown]->self / total,
             100 * fs[shown]->total / total,
             (unsigned long long)fs[shown]->self,
             (unsigned long long)fs[shown]->total);
    used = put_text(f, nums, width);
    if (used < width) put_text(f, fs[shown]->name, width - used);
    end_line(f, v);
  }
  if (!n && v->rows > 0)
    put_line(f, v,
             v->cumulative ? "  (no samples)"
             : v->secs > 0 ? "  (no samples in the last interval)"
                           : "  (the first interval is not over)");
  free(fs);
  if (v->cols) {
    /* The rest of the screen blank, help on the last line. */
    fprintf(f, "\033[J\033[%d;1H", v->height);
    if (v->help) put_text(f, v->help, width);
    fputs("\033[K", f);
  }
  return 0;
}
