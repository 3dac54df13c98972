/*
** An aggregated stack profile: weighted stacks of frame strings, the
** common input of every output writer (folded stacks, SVG flame graph).
**
** Stacks are kept as a call tree: a node is a parent node plus one frame,
** so equal stacks add up and shared prefixes are stored once. Frame
** strings are interned, bounded to PROFILE_FRAME_MAX bytes.
**
** Errors: a function that fails returns -1 (or NULL) after printing one
** line "luaspy: ..." on stderr; the caller only passes the failure on.
*/
#ifndef LUASPY_PROFILE_H
#define LUASPY_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Frame strings come from the target: longer ones are cut on a UTF-8
 * boundary and end in "…", PROFILE_FRAME_MAX bytes at most in all. */
#define PROFILE_FRAME_MAX 512

struct profile;

/* unit names the weights: "samples", "bytes", "objects", "us";
 * NULL means "samples". */
struct profile *profile_new(const char *unit);
void profile_free(struct profile *p);
const char *profile_unit(const struct profile *p);

/* Adds weight to the stack frames[0..nframes), root first. Each frame
 * string is copied. An empty stack is an error (name the unknown, e.g.
 * "[unknown]"); a weight of 0 adds nothing. Fails if the total weight
 * would pass UINT64_MAX. */
int profile_add(struct profile *p, const char *const *frames, size_t nframes,
                uint64_t weight);
uint64_t profile_total(const struct profile *p);

/* For callers that add many stacks with a common prefix: the prefix's
 * node, made with weight 0 (nodes live as long as p), then stacks that
 * extend it. profile_add_at(p, node, frames, n, w) adds w to the stack of
 * node followed by frames[0..n). */
int profile_prefix(struct profile *p, const char *const *frames, size_t nframes,
                   uint32_t *node);
int profile_add_at(struct profile *p, uint32_t node, const char *const *frames,
                   size_t nframes, uint64_t weight);
/* The same as profile_prefix, from node: the node of node's stack followed
 * by frames[0..n), made with weight 0 if need be. For trees whose every
 * node extends one made before (a heap's reference paths). */
int profile_extend(struct profile *p, uint32_t node, const char *const *frames,
                   size_t nframes, uint32_t *out);

/* Adds the stacks of a folded file: lines "root;...;leaf COUNT", blank
 * lines skipped. A bad line is reported with its line number and stops
 * the reading; stacks added before it stay. */
int profile_read_folded(struct profile *p, FILE *in);
/* The same, naming the file in messages ("luaspy: NAME:LINE: ..."), for
 * commands that read more than one file. */
int profile_read_folded_file(struct profile *p, FILE *in, const char *name);

/* Writers are chosen by name: "folded", "svg", "pprof" (gzipped
 * protobuf) or "speedscope" (JSON). With format NULL the name comes from
 * the path: "-" (stdout) is folded, then by extension: .svg, .folded or
 * .txt, .pb.gz, .speedscope.json. Returns the name (a static string), or
 * NULL. */
const char *profile_format(const char *path, const char *format);

/* How an output looks; zero fields take the defaults. */
struct render_opts {
  const char *title;    /* "Flame Graph"; speedscope: the profile name */
  const char *subtitle; /* none */
  int width;            /* image width in pixels: 1200 */
  int frame_height;     /* pixels per stack level: 16 */
  double min_width;     /* frames narrower (pixels) are left out: 0.1 */
  int sample_hz;        /* "samples" taken this often per second and CPU:
                         * pprof and speedscope then also give CPU time.
                         * 0: unknown */
};

/* Writes p to path ("-" is stdout) in the format profile_format picks;
 * opts may be NULL. Write errors (a full disk) are reported: output is
 * flushed and closed before returning 0. */
int profile_write(const struct profile *p, const char *path, const char *format,
                  const struct render_opts *opts);

/* What profile_write does around a writer, for output made of more than
 * one profile (luaspy diff): opens path ("-" is stdout), calls write,
 * flushes and closes, reporting errors. write returns 0 or -1 like
 * folded_write. */
int output_file(const char *path, int (*write)(FILE *out, void *arg),
                void *arg);

/*
** Iteration, for writers (folded, SVG, pprof, speedscope). Both
** orders are deterministic: siblings come in byte order of their frame
** strings (strcmp), parents before children. Stacks and frames of weight
** 0 are not visited. A callback returns 0 to go on; any other value
** stops the iteration, which returns that value; but PROFILE_SKIP from a
** profile_walk_fn only skips the frame's children. An iteration returns
** 0 when done, or -1 after a message if out of memory.
*/

/* Each distinct stack with its own weight, root first: a stack that is a
 * prefix of others comes just before them. */
typedef int (*profile_stack_fn)(const char *const *frames, size_t nframes,
                                uint64_t weight, void *arg);
int profile_foreach_stack(const struct profile *p, profile_stack_fn fn,
                          void *arg);

/* Each node of the call tree, in depth-first order. */
struct profile_frame {
  const char *name; /* interned: valid until profile_free */
  size_t depth;     /* 0 for the root frame of a stack */
  uint64_t offset;  /* weight left of it: the parent's offset plus the
                     * totals of its earlier siblings */
  uint64_t total;   /* weight of all stacks through it */
  uint64_t self;    /* weight of the stacks that end at it */
};
#define PROFILE_SKIP 1 /* from a profile_walk_fn: skip the children */
typedef int (*profile_walk_fn)(const struct profile_frame *f, void *arg);
int profile_walk(const struct profile *p, profile_walk_fn fn, void *arg);

#endif
