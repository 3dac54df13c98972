/*
** zlib's deflate with a gzip header (windowBits 15 + 16).
*/
#include <stdlib.h>
#include <zlib.h>

#include "gzip.h"

struct gzip {
  z_stream z;
  FILE *out;
  int failed;
  unsigned char buf[65536];
};

struct gzip *gzip_open(FILE *out)
{
  struct gzip *gz = calloc(1, sizeof(*gz));

  if (!gz) {
    fputs("luaspy: out of memory\n", stderr);
    return NULL;
  }
  if (deflateInit2(&gz->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    fputs("luaspy: cannot start gzip compression\n", stderr);
    free(gz);
    return NULL;
  }
  gz->out = out;
  return gz;
}

/* Runs deflate over the input given until it is consumed (or, with
 * Z_FINISH, until the stream ends), writing out what it makes. */
static void pump(struct gzip *gz, int flush)
{
  int ret;

  do {
    gz->z.next_out = gz->buf;
    gz->z.avail_out = sizeof(gz->buf);
    ret = deflate(&gz->z, flush);
    if (ret == Z_STREAM_ERROR) {
      fputs("luaspy: gzip compression failed\n", stderr);
      gz->failed = 1;
      return;
    }
    size_t n = sizeof(gz->buf) - gz->z.avail_out;
    if (n && fwrite(gz->buf, 1, n, gz->out) != n) {
      gz->failed = 1; /* the caller reports ferror(out) */
      return;
    }
  } while (gz->z.avail_out == 0 || (flush == Z_FINISH && ret != Z_STREAM_END));
}

void gzip_write(struct gzip *gz, const void *data, size_t len)
{
  const unsigned char *p = data;

  /* avail_in is a uInt: feed very large buffers in pieces. */
  while (!gz->failed && len > 0) {
    uInt n = len > 1u << 30 ? 1u << 30 : (uInt)len;
    gz->z.next_in = (unsigned char *)p;
    gz->z.avail_in = n;
    pump(gz, Z_NO_FLUSH);
    p += n;
    len -= n;
  }
}

int gzip_close(struct gzip *gz)
{
  int failed;

  gz->z.next_in = NULL;
  gz->z.avail_in = 0;
  if (!gz->failed) pump(gz, Z_FINISH);
  failed = gz->failed;
  deflateEnd(&gz->z);
  free(gz);
  return failed ? -1 : 0;
}
