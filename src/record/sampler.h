/*
** The kernel side of `luaspy record`: loads the BPF program, attaches it
** to a cpu-clock perf event on every CPU, tells it which processes and
** VMs to walk, and hands back the samples it sends.
**
** Everything it loads belongs to the sampler's file descriptors: closing
** the sampler (or the process dying) detaches and unloads all of it.
*/
#ifndef LUASPY_SAMPLER_H
#define LUASPY_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "../bpf/sample.h"
#include "../luajit/luajit.h"

struct sampler;

/* Loads and attaches at hz samples per second and CPU. Returns NULL with
 * a one-line reason in why. */
struct sampler *sampler_open(int hz, char *why, size_t len);
void sampler_close(struct sampler *s);

/* Starts (or updates) walking the VMs of t->pid. Returns 0 or -1. */
int sampler_set_target(struct sampler *s, const struct lj_target *t);
void sampler_drop_target(struct sampler *s, pid_t pid);

/* Waits up to timeout_ms for samples and passes each to fn. Returns the
 * number handled or -1 (a real error; a signal just returns early). */
typedef void (*sampler_fn)(const struct ls_sample *smp, void *arg);
int sampler_poll(struct sampler *s, int timeout_ms, sampler_fn fn, void *arg);

/* Totals of the kernel-side counters (enum ls_counter). */
void sampler_counts(struct sampler *s, uint64_t counts[LS_NCOUNTERS]);

#endif
