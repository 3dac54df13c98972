/*
** The end-of-recording summary. Shares are over all samples recorded; a
** function's total counts each sample once, however often the function
** appears in its stack (recursion).
*/
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "../luajit/luajit.h"
#include "ftable.h"
#include "summary.h"

void stats_tally(struct rec_stats *st, const struct ls_sample *s)
{
  if (s->status == LS_NO_VM)
    st->no_vm++;
  else if (s->status == LS_IDLE)
    st->idle++;
  else if (s->partial != LS_OK && s->partial <= LS_PARTIAL_LOOP)
    st->partial[s->partial]++;
  else if (!s->nframes)
    st->no_frames++;
  else
    st->complete++;
}

double stats_unwound(const struct rec_stats *st)
{
  return st->received ? (double)(st->complete + st->idle) / st->received : 0;
}

enum rec_vmclass stats_vmclass(int32_t vmstate)
{
  switch (vmstate) {
  case LJ_VMST_INTERP: return REC_VM_INTERP;
  case LJ_VMST_C: return REC_VM_C;
  case LJ_VMST_GC: return REC_VM_GC;
  case LJ_VMST_EXIT:
  case LJ_VMST_RECORD:
  case LJ_VMST_OPT:
  case LJ_VMST_ASM: return REC_VM_COMPILER;
  default: return vmstate > 0 ? REC_VM_JIT : REC_VM_UNKNOWN;
  }
}

const char *stats_vmclass_name(enum rec_vmclass c)
{
  static const char *const names[REC_VM_N] = {"interp", "JIT",      "C",
                                              "GC",     "compiler", "unknown"};
  return c < REC_VM_N ? names[c] : "unknown";
}

static void print_reasons(FILE *f, const struct rec_stats *st)
{
  for (int i = 1; i <= LS_PARTIAL_LOOP; i++)
    if (st->partial[i])
      fprintf(f, "  partial stack (%s): %llu\n",
              lj_partial_name((enum lj_partial)i),
              (unsigned long long)st->partial[i]);
  if (st->no_vm)
    fprintf(f, "  no Lua VM identified: %llu\n", (unsigned long long)st->no_vm);
  if (st->no_frames)
    fprintf(f, "  no Lua frames: %llu\n", (unsigned long long)st->no_frames);
  if (st->idle)
    fprintf(f, "  not running Lua (host C code): %llu\n",
            (unsigned long long)st->idle);
  if (st->lost)
    fprintf(f, "  lost (ring buffer full): %llu\n",
            (unsigned long long)st->lost);
  if (st->uncached)
    fprintf(f, "  lost (stack no longer cached): %llu\n",
            (unsigned long long)st->uncached);
}

void summary_print(FILE *f, const struct profile *p, const struct rec_stats *st,
                   int top)
{
  struct ftable t = {0};
  struct fstat **v = NULL;
  uint64_t total = profile_total(p);
  size_t k = 0;
  if (!st->received && !st->lost && !st->uncached) {
    fprintf(f, "luaspy: 0 samples: the targets did not run on a CPU\n");
    return;
  }
  fprintf(f, "luaspy: %llu samples, %.1f%% unwound\n",
          (unsigned long long)st->received, 100 * stats_unwound(st));
  print_reasons(f, st);
  if (total && !profile_foreach_stack(p, ftable_add, &t) &&
      (v = ftable_list(&t, &k))) {
    qsort(v, k, sizeof(*v), fstat_by_self);
    fprintf(f, "  %6s %6s  %s\n", "self", "total", "function");
    for (size_t i = 0; i < k && i < (size_t)top; i++)
      fprintf(f, "  %5.1f%% %5.1f%%  %s\n", 100.0 * v[i]->self / total,
              100.0 * v[i]->total / total, v[i]->name);
  }
  free(v);
  ftable_clear(&t);
}
