/*
** luaspy heap's reports: a snapshot, or the growth between two, as text
** or JSON. Every figure comes with what it measured.
*/
#ifndef LUASPY_HEAP_REPORT_H
#define LUASPY_HEAP_REPORT_H

#include <stdio.h>

#include "heap.h"

struct heap_run {
  pid_t pid;
  int stopped; /* the target was ptrace-stopped while walked */
  int top;     /* tables listed */
  size_t nvms;
  struct heap_ctx *ctxs;
  struct heap_snap *before; /* the snapshot (the first one with --diff) */
  struct heap_snap *after;  /* --diff: the second one, else NULL */
  double interval;          /* --diff: seconds between the two */
  double seconds;           /* walking time, both snapshots */
  double stopped_seconds;   /* --stop: how long the target was stopped */
  uint64_t bytes_read;      /* from the target */
  const char *flame;        /* -o FILE, or NULL */
};

void heap_report_text(FILE *out, const struct heap_run *r);
/* 0, or -1 after a message (the JSON could not be written). */
int heap_report_json(FILE *out, const struct heap_run *r);

#endif
