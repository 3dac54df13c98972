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
#include "../bpf/trace.h"
#include "../luajit/luajit.h"

struct sampler;

/* Loads and attaches at hz samples per second and CPU; native: samples
 * carry the user stack for unwinding native frames (sampler_native).
 * Returns NULL with a one-line reason in why. */
struct sampler *sampler_open(int hz, int native, char *why, size_t len);
void sampler_close(struct sampler *s);

/* Starts (or updates) walking the VMs of t->pid. Returns 0 or -1. */
int sampler_set_target(struct sampler *s, const struct lj_target *t);
void sampler_drop_target(struct sampler *s, pid_t pid);

/* Waits up to timeout_ms for samples and passes each to fn, whole: the
 * frames the kernel sent only as a stack key are filled in from the
 * sampler's cache (a key it no longer has drops the sample, counted as
 * LS_CNT_UNCACHED). The kernel wakes user space only when its buffer
 * fills up, so a poll usually waits timeout_ms, then reads everything.
 * Returns the number handled or -1 (a real error; a signal just returns
 * early). */
typedef void (*sampler_fn)(const struct ls_sample *smp, void *arg);
int sampler_poll(struct sampler *s, int timeout_ms, sampler_fn fn, void *arg);

/* During fn: the key of the sample's frames below its top one (equal
 * keys, equal frames; hash 0: none), and with native, the user stack. */
const struct ls_stackkey *sampler_stack_key(const struct sampler *s);
const struct ls_native *sampler_native(const struct sampler *s);

/* Totals of the kernel-side counters (enum ls_counter). */
void sampler_counts(struct sampler *s, uint64_t counts[LS_NCOUNTERS]);

#endif
