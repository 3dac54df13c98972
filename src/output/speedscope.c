/*
** speedscope writer. Two walks over the stacks: the first numbers the
** frames, so that the frame list can come first in the file, as a
** reader of the file would look for it; the second writes the samples.
*/
#include <string.h>

#include "frame.h"
#include "json.h"
#include "speedscope.h"
#include "strmap.h"

#define SCHEMA "https://www.speedscope.app/file-format-schema.json"
#define NS_PER_S 1000000000ULL

struct speedscope {
  struct json *j;
  struct strmap *frames;
  uint64_t scale; /* weight unit to speedscope unit */
};

static int number_frames(const char *const *frames, size_t nframes,
                         uint64_t weight, void *arg)
{
  struct strmap *m = arg;
  uint32_t id;

  (void)weight;
  for (size_t i = 0; i < nframes; i++)
    if (strmap_id(m, frames[i], strlen(frames[i]), &id) < 0) return -1;
  return 0;
}

static void put_frame(struct json *j, const char *s)
{
  char name[PROFILE_FRAME_MAX + 1], file[PROFILE_FRAME_MAX + 1];
  struct frame_parts fp;

  frame_parse(s, &fp);
  /* Frame strings are at most PROFILE_FRAME_MAX bytes: the parts fit. */
  memcpy(name, fp.name, fp.name_len);
  name[fp.name_len] = '\0';
  json_begin_obj(j);
  json_key(j, "name");
  json_str(j, name);
  if (fp.chunk_len) {
    memcpy(file, fp.chunk, fp.chunk_len);
    file[fp.chunk_len] = '\0';
    json_key(j, "file");
    json_str(j, file);
  }
  if (fp.line) {
    json_key(j, "line");
    json_int(j, fp.line);
  }
  json_end_obj(j);
}

static int put_sample(const char *const *frames, size_t nframes,
                      uint64_t weight, void *arg)
{
  struct speedscope *s = arg;
  uint32_t id;

  (void)weight;
  json_begin_arr(s->j);
  for (size_t i = 0; i < nframes; i++) {
    strmap_find(s->frames, frames[i], strlen(frames[i]), &id);
    json_uint(s->j, id);
  }
  json_end_arr(s->j);
  return 0;
}

static int put_weight(const char *const *frames, size_t nframes,
                      uint64_t weight, void *arg)
{
  struct speedscope *s = arg;

  (void)frames;
  (void)nframes;
  json_uint(s->j, weight * s->scale);
  return 0;
}

/* speedscope's unit for the profile's weights, and the factor to it. */
static const char *unit_of(const struct profile *p, int hz, uint64_t *scale)
{
  const char *unit = profile_unit(p);

  *scale = 1;
  if (strcmp(unit, "samples") == 0 && hz > 0) {
    *scale = NS_PER_S / (uint64_t)hz;
    return "nanoseconds";
  }
  if (strcmp(unit, "bytes") == 0) return "bytes";
  if (strcmp(unit, "us") == 0) return "microseconds";
  return "none";
}

int speedscope_write(const struct profile *p, FILE *out,
                     const struct render_opts *opts)
{
  const char *name = opts && opts->title ? opts->title : "luaspy";
  struct speedscope s = {NULL, strmap_new(), 1};
  const char *unit = unit_of(p, opts ? opts->sample_hz : 0, &s.scale);
  int ret = -1;

  if (!s.frames || profile_foreach_stack(p, number_frames, s.frames) != 0)
    goto out;
  if (s.scale > 1 && profile_total(p) > UINT64_MAX / s.scale) {
    fputs("luaspy: the profile's time overflows 64 bits\n", stderr);
    goto out;
  }
  if (!(s.j = json_new(out))) goto out;
  json_begin_obj(s.j);
  json_key(s.j, "$schema");
  json_str(s.j, SCHEMA);
  json_key(s.j, "name");
  json_str(s.j, name);
  json_key(s.j, "exporter");
  json_str(s.j, "luaspy");
  json_key(s.j, "activeProfileIndex");
  json_int(s.j, 0);
  json_key(s.j, "shared");
  json_begin_obj(s.j);
  json_key(s.j, "frames");
  json_begin_arr(s.j);
  for (uint32_t i = 0; i < strmap_count(s.frames); i++)
    put_frame(s.j, strmap_key(s.frames, i));
  json_end_arr(s.j);
  json_end_obj(s.j);
  json_key(s.j, "profiles");
  json_begin_arr(s.j);
  json_begin_obj(s.j);
  json_key(s.j, "type");
  json_str(s.j, "sampled");
  json_key(s.j, "name");
  json_str(s.j, name);
  json_key(s.j, "unit");
  json_str(s.j, unit);
  json_key(s.j, "startValue");
  json_int(s.j, 0);
  json_key(s.j, "endValue");
  json_uint(s.j, profile_total(p) * s.scale);
  json_key(s.j, "samples");
  json_begin_arr(s.j);
  if (profile_foreach_stack(p, put_sample, &s) != 0) goto out;
  json_end_arr(s.j);
  json_key(s.j, "weights");
  json_begin_arr(s.j);
  if (profile_foreach_stack(p, put_weight, &s) != 0) goto out;
  json_end_arr(s.j);
  json_end_obj(s.j);
  json_end_arr(s.j);
  json_end_obj(s.j);
  fputc('\n', out);
  /* A write error is the caller's to report; json_done would too. */
  if (fflush(out) != 0 || ferror(out)) goto out;
  ret = json_done(s.j);
out:
  json_free(s.j);
  strmap_free(s.frames);
  return ret;
}
