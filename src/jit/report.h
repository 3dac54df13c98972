/*
** What `luaspy jit` prints: text for people, JSON for scripts, and an
** SVG/HTML timeline of compilations.
*/
#ifndef LUASPY_JIT_REPORT_H
#define LUASPY_JIT_REPORT_H

#include <stdio.h>

#include "mmwatch.h"
#include "poke.h"
#include "verdict.h"
#include "watch.h"

struct jit_session {
  pid_t pid;
  const struct jit_watch *w;
  const struct jit_mm_stats *mm; /* NULL: syscalls not traced */
  const char *mm_why;            /* why not */
  double seconds;                /* the window actually watched */
  double warmup;                 /* --warmup */
  double process_age;            /* at the start of the window */
  double decay;                  /* --decay period, 0: none */
  int jit_off;                   /* --jit-off was done */
  struct jit_decay_stats ds;
  const struct jit_verdict *v;
  int nv;
};

void jit_report_text(FILE *out, const struct jit_session *s);
/* 0, or -1 if the JSON could not be written. */
int jit_report_json(FILE *out, const struct jit_session *s);
/* The timeline as SVG, or HTML embedding it when html is set. */
void jit_timeline(FILE *out, const struct jit_session *s, int html);

#endif
