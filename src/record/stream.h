/*
** The outputs of `luaspy record` that need each sample as it comes, not
** only the profile at the end: a raw recording (-o FILE.luaspy, written
** as it goes) and a timeline (--timeline). Times are ns since the stream
** was opened, on the clock of bpf_ktime_get_ns (CLOCK_MONOTONIC).
*/
#ifndef LUASPY_STREAM_H
#define LUASPY_STREAM_H

#include "../bpf/sample.h"
#include "../output/profile.h"
#include "record.h"
#include "summary.h"
#include "targets.h"

struct rstream;

/* NULL with *none set if o's output is neither raw nor a timeline; NULL
 * after a message if it cannot be opened. */
struct rstream *rstream_open(const struct record_opts *o, int *none);
/* One sample of target t (vm NULL: unknown), named stack[0..n) root
 * first. 0, or -1 after a message. */
int rstream_sample(struct rstream *s, const struct ls_sample *smp,
                   const struct rtarget *t, const struct lj_vm *vm,
                   const char *const *stack, size_t n);
/* Ends the output: the raw file's counters and end, or the timeline
 * drawn with ro's titles. kernel_samples: samples the kernel took. */
int rstream_finish(struct rstream *s, const struct rec_stats *st,
                   uint64_t kernel_samples, const struct render_opts *ro);
void rstream_free(struct rstream *s);

#endif
