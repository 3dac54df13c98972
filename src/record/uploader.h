/*
** A background uploader: a thread that POSTs encoded profiles one at a
** time, so that sampling never waits on the network. Its queue is
** bounded: when full, the oldest upload is dropped (counted, reported).
** A failed upload is retried with exponential backoff, capped, until it
** succeeds, the server refuses it for good (a 4xx), or newer uploads
** fill the queue behind it.
**
** Messages go to stderr as "luaspy: push: ...", at most one a few
** seconds for a failure that goes on.
*/
#ifndef LUASPY_UPLOADER_H
#define LUASPY_UPLOADER_H

#include <stddef.h>
#include <stdint.h>

#define UPLOAD_QUEUE 8 /* uploads waiting; one more may be in flight */

struct uploader;

struct upload_stats {
  uint64_t sent;    /* accepted by the server */
  uint64_t dropped; /* pushed out of a full queue, or left at the end */
  uint64_t failed;  /* refused by the server (4xx): not retried */
};

/* Starts the thread. Returns NULL after a message. */
struct uploader *uploader_new(void);
/* Queues a POST of body[0..len) (application/octet-stream) to url;
 * takes both url and body (malloc'd), which it frees. Never blocks on
 * the network. */
void uploader_put(struct uploader *u, char *url, char *body, size_t len);
/* Sends what is queued, waiting at most wait seconds, drops the rest,
 * stops the thread and frees u. st may be NULL. */
void uploader_finish(struct uploader *u, double wait, struct upload_stats *st);

#endif
