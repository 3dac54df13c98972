/*
** libFuzzer target: raw recordings (raw_read, the input of `luaspy
** report` and `diff`), each sample added to a profile and a timeline,
** which are then written. The first byte picks what the rest is: a whole
** file (odd), or the records of one chunk (even), which the target wraps
** in a valid header and chunk, checksum included, so that the fuzzer gets
** past the CRC to the record parser.
*/
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../../src/output/profile.h"
#include "../../src/output/raw.h"
#include "../../src/output/timeline.h"

struct sinks {
  struct profile *p;
  struct timeline *tl;
};

static int add(const struct raw_sample *s, void *arg)
{
  struct sinks *k = arg;
  if (!s->nframes || s->nframes > RAW_MAX_DEPTH) __builtin_trap();
  if (profile_add(k->p, s->frames, s->nframes, s->weight)) return -1;
  return timeline_add(k->tl, s->time_ns, s->frames, s->nframes, s->weight);
}

static void put_u32le(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A file: the header, then the records in one chunk. */
static uint8_t *wrap(const uint8_t *rec, size_t len, size_t *size)
{
  uLongf zlen = compressBound(len);
  size_t head = RAW_MAGIC_LEN + 1;
  uint8_t *f = malloc(head + RAW_CHUNK_HEAD + zlen);
  if (!f) return NULL;
  memcpy(f, RAW_MAGIC, RAW_MAGIC_LEN);
  f[RAW_MAGIC_LEN] = RAW_VERSION;
  if (compress2(f + head + RAW_CHUNK_HEAD, &zlen, rec, len, 1) != Z_OK) {
    free(f);
    return NULL;
  }
  put_u32le(f + head, (uint32_t)zlen);
  put_u32le(f + head + 4, (uint32_t)len);
  put_u32le(f + head + 8, (uint32_t)crc32(crc32(0, f + head, 8),
                                          f + head + RAW_CHUNK_HEAD, zlen));
  *size = head + RAW_CHUNK_HEAD + zlen;
  return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct sinks k = {profile_new("samples"), timeline_new()};
  struct raw_info info;
  uint8_t *file = NULL;
  size_t fsize = size - 1;
  FILE *in, *out;
  if (size < 1 || (!(data[0] & 1) && size - 1 > RAW_CHUNK_MAX)) goto done;
  if (data[0] & 1)
    in = fmemopen((void *)(data + 1), size - 1, "r");
  else
    in = (file = wrap(data + 1, size - 1, &fsize)) ? fmemopen(file, fsize, "r")
                                                   : NULL;
  if (!in || !k.p || !k.tl) goto done;
  if (!raw_read(in, "fuzz", add, &k, &info) &&
      !timeline_span(k.tl, info.duration_ns) &&
      (out = fopen("/dev/null", "w"))) {
    char sub[256];
    struct render_opts o = {.subtitle = sub};
    raw_describe(&info, sub, sizeof(sub));
    timeline_write(k.tl, out, data[0] & 2, &o);
    profile_write(k.p, "/dev/null", "folded", &o);
    fclose(out);
  }
  raw_info_free(&info);
  fclose(in);
done:
  free(file);
  profile_free(k.p);
  timeline_free(k.tl);
  return 0;
}
