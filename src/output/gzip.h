/*
** A gzip stream onto a stdio file, for formats that are gzipped whole
** (pprof). Bytes are compressed as they come: the caller need not hold
** the uncompressed output in memory.
*/
#ifndef LUASPY_GZIP_H
#define LUASPY_GZIP_H

#include <stddef.h>
#include <stdio.h>

struct gzip;

/* NULL after a message. */
struct gzip *gzip_open(FILE *out);
/* Failures stick: after one, later writes do nothing and gzip_close
 * returns -1. Write errors on out are left to the caller (ferror). */
void gzip_write(struct gzip *gz, const void *data, size_t len);
/* Ends the stream (the gzip trailer) and frees gz; 0 or -1. */
int gzip_close(struct gzip *gz);

#endif
