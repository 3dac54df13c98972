/*
** luaspy's raw recording format (.luaspy, docs/raw-format.md): what a
** recording took, kept so that any output can be rendered later,
** elsewhere. The file is a header and a stream of independently
** compressed, checksummed chunks of records; it is written as samples
** come, and a file cut short reads up to its last whole chunk.
**
** Reading trusts nothing: every length and id is checked against the
** bounds below and what was read before; a bad file gives one message
** "luaspy: NAME: corrupt recording: ..." and -1.
*/
#ifndef LUASPY_RAW_H
#define LUASPY_RAW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "profile.h"

#define RAW_MAGIC "\x89luaspy\n" /* 8 bytes; the first is no text */
#define RAW_MAGIC_LEN 8
#define RAW_VERSION 1
#define RAW_CHUNK_HEAD 12              /* u32 LE stored, raw length, CRC-32 */
#define RAW_CHUNK_MAX (1u << 20)       /* bytes of records in one chunk */
#define RAW_STR_MAX 4096               /* bytes of one string */
#define RAW_MAX_DEPTH 4096             /* frames of one stack */
#define RAW_MAX_STACKS (1u << 24)      /* distinct stacks (and prefixes) */
#define RAW_MAX_STRINGS (1u << 22)     /* distinct frame strings */
#define RAW_MAX_STR_BYTES (256u << 20) /* their bytes, together */
#define RAW_MAX_VMS 65536              /* VMs, and targets */
#define RAW_MAX_COUNTERS 256

/* Record types (docs/raw-format.md has their fields). */
enum raw_rec {
  RAW_META = 1,
  RAW_TARGET = 2,
  RAW_VM = 3,
  RAW_FRAME = 4,
  RAW_STACK = 5,
  RAW_SAMPLE = 6,
  RAW_COUNTERS = 7,
  RAW_END = 8
};

/* Whether output goes to a raw file: format "raw", or none and a path
 * ending in .luaspy. */
int raw_output(const char *path, const char *format);

/* What a recording says about itself. */
struct raw_meta {
  const char *version;    /* luaspy's */
  const char *cmdline;    /* luaspy's own, arguments joined by spaces */
  const char *host;       /* nodename */
  uint64_t start_wall_ns; /* Unix time of the start, in ns */
  uint32_t hz;            /* samples per second and CPU */
  int line_mode;          /* frames name the current line */
};

/*
** Writing. Every function but raw_writer_free returns 0, or -1 after a
** message; after a failure the writer writes nothing more.
*/
struct raw_writer;

/* Writes the header and meta to out, which the caller closes after
 * raw_writer_free; name is for messages. */
struct raw_writer *raw_writer_new(FILE *out, const char *name,
                                  const struct raw_meta *m);
/* A process's target record, written before its VMs and samples. */
int raw_writer_knows(const struct raw_writer *w, uint32_t pid);
int raw_writer_target(struct raw_writer *w, uint32_t pid, const char *exe);
/* The id of VM G of process pid, made (and written) if new. G 0 is "VM
 * unknown", id 0. */
int raw_writer_vm(struct raw_writer *w, uint32_t pid, uint64_t G,
                  const char *flavor, uint32_t *id);
/* A sample: frames root first (at least one), time in ns since the start.
 * Chunks are written once they hold 64 KiB, or when a sample comes a
 * second after the last chunk. */
int raw_writer_sample(struct raw_writer *w, uint64_t time_ns, uint32_t pid,
                      uint32_t tid, uint32_t vm, const char *const *frames,
                      size_t nframes, uint64_t weight);
/* The last records: counters by name, the duration; then the last chunk
 * is written and out flushed. */
int raw_writer_finish(struct raw_writer *w, const char *const *names,
                      const uint64_t *values, size_t n, uint64_t duration_ns);
void raw_writer_free(struct raw_writer *w);

/*
** Reading.
*/
struct raw_target_info {
  uint32_t pid;
  char *exe;
};
struct raw_vm_info {
  uint32_t pid;
  uint64_t G;
  char *flavor;
};
struct raw_counter {
  char *name;
  uint64_t value;
};

struct raw_info {
  int raw; /* read from a raw file (recording_read: not folded) */
  int has_meta;
  char *version, *cmdline, *host; /* "" if the file has no meta */
  uint64_t start_wall_ns;
  uint32_t hz;
  int line_mode;
  struct raw_target_info *targets;
  size_t ntargets;
  struct raw_vm_info *vms; /* id i + 1 */
  size_t nvms;
  struct raw_counter *counters;
  size_t ncounters;
  int complete;         /* ends in its end record; else it was cut short */
  uint64_t duration_ns; /* from the end record, else the last sample's time */
  uint64_t nsamples, weight;
};

/* One sample as read; frames root first, valid during the call. */
struct raw_sample {
  uint64_t time_ns;
  uint32_t pid, tid, vm;
  const char *const *frames;
  size_t nframes;
  uint64_t weight;
};
typedef int (*raw_sample_fn)(const struct raw_sample *s, void *arg);

/* True if in starts with the format's first byte (a folded file cannot);
 * the byte is pushed back. */
int raw_sniff(FILE *in);

/* Reads the recording in, calling fn for each sample (fn returns 0, or
 * -1 after a message to stop the reading), and fills info (free it with
 * raw_info_free, also after a failure). A file cut short is read up to
 * its last whole chunk, info->complete 0, and returns 0. */
int raw_read(FILE *in, const char *name, raw_sample_fn fn, void *arg,
             struct raw_info *info);
void raw_info_free(struct raw_info *info);

/* Adds a recording to p and, if not NULL, to timeline tl: raw (info
 * filled, see raw_read) or folded (no times: not for a timeline), told
 * apart by raw_sniff. A raw file cut short is said so on stderr. */
struct timeline;
int recording_read(struct profile *p, struct timeline *tl, FILE *in,
                   const char *name, struct raw_info *info);

/* "12 samples at 99 Hz, 2026-11-25 06:50:01 UTC on HOST, 1 process,
 * 2 VMs" into buf, for subtitles. */
void raw_describe(const struct raw_info *info, char *buf, size_t len);

#endif
