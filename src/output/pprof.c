/*
** pprof writer: the profile is collected into protobuf-c's structures
** (generated from proto/profile.proto into build/proto/), then packed
** straight into a gzip stream.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "gzip.h"
#include "pprof.h"
#include "profile.pb-c.h"
#include "strmap.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;

#define NS_PER_S 1000000000ULL
#define MAX_VALUES 2 /* per sample: the weight, and CPU time if known */

/* Frames are numbered by the order they are first seen: frame i is
 * Location i + 1 and Function i + 1 (pprof ids are not 0). */
struct pframe {
  Location loc;
  Line line, *line_ptr; /* loc.line is &line_ptr, set when packing */
  Function fn;
};

/* Pointers into the growing arrays are set once they stop moving. */
struct psample {
  Sample s;
  size_t first_id; /* s.location_id is ids + first_id */
  int64_t value[MAX_VALUES];
};

struct pprof {
  struct strmap *strings; /* the string table: "" first */
  struct strmap *frames;  /* frame strings, numbered as pframes */
  struct pframe *frame;
  size_t frame_cap;
  struct psample *sample;
  size_t nsample, sample_cap;
  uint64_t *ids; /* all samples' location ids, one after another */
  size_t nids, ids_cap;
  size_t nvalue;   /* per sample: 1, or 2 with CPU time */
  uint64_t period; /* CPU nanoseconds per sample, 0 if unknown */
};

static int oom(void)
{
  fputs("luaspy: out of memory\n", stderr);
  return -1;
}

/* Makes room for n more elements of size sz in *pv holding len of *cap. */
static int reserve(void *pv, size_t *cap, size_t len, size_t n, size_t sz)
{
  void **p = pv;
  size_t c = *cap ? *cap : 256;
  void *q;

  while (c - len < n) {
    if (c > SIZE_MAX / 2 / sz) return oom();
    c *= 2;
  }
  if (c == *cap) return 0;
  if (!(q = realloc(*p, c * sz))) return oom();
  *p = q;
  *cap = c;
  return 0;
}

static int string_index(struct pprof *pp, const char *s, size_t len,
                        int64_t *index)
{
  uint32_t id;

  if (strmap_id(pp->strings, s, len, &id) < 0) return -1;
  *index = id;
  return 0;
}

/* The location id of frame string s, made with its function if new. */
static int location_of(struct pprof *pp, const char *s, uint64_t *loc_id)
{
  struct frame_parts fp;
  struct pframe *f;
  uint32_t id;
  int ret = strmap_id(pp->frames, s, strlen(s), &id);

  *loc_id = (uint64_t)id + 1;
  if (ret <= 0) return ret;
  if (reserve(&pp->frame, &pp->frame_cap, id, 1, sizeof(*pp->frame)) < 0)
    return -1;
  f = &pp->frame[id];
  f->fn = (Function)PERFTOOLS__PROFILES__FUNCTION__INIT;
  f->fn.id = *loc_id;
  frame_parse(s, &fp);
  if (string_index(pp, fp.name, fp.name_len, &f->fn.name) < 0) return -1;
  f->fn.system_name = f->fn.name;
  if (fp.chunk_len &&
      string_index(pp, fp.chunk, fp.chunk_len, &f->fn.filename) < 0)
    return -1;
  f->fn.start_line = fp.line;
  f->line = (Line)PERFTOOLS__PROFILES__LINE__INIT;
  f->line.function_id = *loc_id;
  f->line.line = fp.line;
  f->loc = (Location)PERFTOOLS__PROFILES__LOCATION__INIT;
  f->loc.id = *loc_id;
  return 0;
}

static int add_stack(const char *const *frames, size_t nframes, uint64_t weight,
                     void *arg)
{
  struct pprof *pp = arg;
  struct psample *ps;

  if (weight > INT64_MAX ||
      (pp->period && weight > (uint64_t)INT64_MAX / pp->period)) {
    fputs("luaspy: a stack's weight is too large for pprof\n", stderr);
    return -1;
  }
  if (reserve(&pp->ids, &pp->ids_cap, pp->nids, nframes, sizeof(*pp->ids)) <
          0 ||
      reserve(&pp->sample, &pp->sample_cap, pp->nsample, 1,
              sizeof(*pp->sample)) < 0)
    return -1;
  ps = &pp->sample[pp->nsample++];
  ps->s = (Sample)PERFTOOLS__PROFILES__SAMPLE__INIT;
  ps->s.n_location_id = nframes;
  ps->s.n_value = pp->nvalue;
  ps->first_id = pp->nids;
  ps->value[0] = (int64_t)weight;
  ps->value[1] = (int64_t)(weight * pp->period);
  /* pprof lists a sample's locations leaf first. */
  for (size_t i = nframes; i-- > 0;)
    if (location_of(pp, frames[i], &pp->ids[pp->nids++]) < 0) return -1;
  return 0;
}

/* What the weights count, as pprof names it (type, unit). */
static void value_names(const char *unit, const char **type, const char **vunit)
{
  static const char *const names[][3] = {
      {"samples", "samples", "count"},
      {"bytes", "space", "bytes"},
      {"objects", "objects", "count"},
      {"us", "time", "microseconds"},
  };

  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(unit, names[i][0]) == 0) {
      *type = names[i][1];
      *vunit = names[i][2];
      return;
    }
  *type = unit;
  *vunit = "count";
}

static int value_type(struct pprof *pp, const char *type, const char *unit,
                      ValueType *vt)
{
  *vt = (ValueType)PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
  return string_index(pp, type, strlen(type), &vt->type) < 0 ||
                 string_index(pp, unit, strlen(unit), &vt->unit) < 0
             ? -1
             : 0;
}

/* ProtobufCBuffer that compresses what protobuf-c packs into it. */
struct gz_buffer {
  ProtobufCBuffer base;
  struct gzip *gz;
};

static void gz_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
  gzip_write(((struct gz_buffer *)b)->gz, data, len);
}

static int pack(struct pprof *pp, const struct profile *p, FILE *out)
{
  Profile msg = PERFTOOLS__PROFILES__PROFILE__INIT;
  ValueType types[MAX_VALUES], *type_ptr[MAX_VALUES];
  const char *type, *unit;
  size_t nframe = strmap_count(pp->frames);
  Location **locp = malloc((nframe + 1) * sizeof(*locp));
  Function **fnp = malloc((nframe + 1) * sizeof(*fnp));
  Sample **smp = malloc((pp->nsample + 1) * sizeof(*smp));
  char **strings = NULL;
  struct gz_buffer buf = {{gz_append}, NULL};
  uint32_t nstring;
  int ret = -1;

  if (!locp || !fnp || !smp) {
    oom();
    goto out;
  }
  value_names(profile_unit(p), &type, &unit);
  if (value_type(pp, type, unit, &types[0]) < 0 ||
      (pp->period && value_type(pp, "cpu", "nanoseconds", &types[1]) < 0))
    goto out;
  /* Every string is in the table now. */
  nstring = strmap_count(pp->strings);
  if (!(strings = malloc(nstring * sizeof(*strings)))) {
    oom();
    goto out;
  }
  for (uint32_t i = 0; i < nstring; i++)
    strings[i] = (char *)strmap_key(pp->strings, i);
  for (size_t i = 0; i < nframe; i++) {
    struct pframe *f = &pp->frame[i];
    f->line_ptr = &f->line;
    f->loc.n_line = 1;
    f->loc.line = &f->line_ptr;
    locp[i] = &f->loc;
    fnp[i] = &f->fn;
  }
  for (size_t i = 0; i < pp->nsample; i++) {
    struct psample *ps = &pp->sample[i];
    ps->s.location_id = pp->ids + ps->first_id;
    ps->s.value = ps->value;
    smp[i] = &ps->s;
  }
  for (size_t i = 0; i < pp->nvalue; i++) type_ptr[i] = &types[i];
  msg.n_sample_type = pp->nvalue;
  msg.sample_type = type_ptr;
  msg.n_sample = pp->nsample;
  msg.sample = smp;
  msg.n_location = nframe;
  msg.location = locp;
  msg.n_function = nframe;
  msg.function = fnp;
  msg.n_string_table = nstring;
  msg.string_table = strings;
  /* CPU time when known: readers show it first, and per sample. */
  msg.period_type = &types[pp->nvalue - 1];
  msg.period = pp->period ? (int64_t)pp->period : 1;
  msg.default_sample_type = types[pp->nvalue - 1].type;
  if (!(buf.gz = gzip_open(out))) goto out;
  protobuf_c_message_pack_to_buffer(&msg.base, &buf.base);
  ret = gzip_close(buf.gz);
out:
  free(locp);
  free(fnp);
  free(smp);
  free(strings);
  return ret;
}

int pprof_write(const struct profile *p, FILE *out,
                const struct render_opts *opts)
{
  struct pprof pp = {0};
  int hz = opts ? opts->sample_hz : 0;
  uint32_t empty;
  int ret = -1;

  pp.nvalue = 1;
  if (hz > 0 && strcmp(profile_unit(p), "samples") == 0) {
    pp.period = NS_PER_S / (uint64_t)hz;
    pp.nvalue = 2;
  }
  if (!(pp.strings = strmap_new()) || !(pp.frames = strmap_new()) ||
      strmap_id(pp.strings, "", 0, &empty) < 0)
    goto out;
  if (profile_foreach_stack(p, add_stack, &pp) != 0) goto out;
  ret = pack(&pp, p, out);
out:
  strmap_free(pp.strings);
  strmap_free(pp.frames);
  free(pp.frame);
  free(pp.sample);
  free(pp.ids);
  return ret;
}
