/*
** `luaspy record --push URL`: continuous profiling into a Pyroscope
** server. Samples are kept apart by process and Lua VM; every interval
** each one's profile is encoded as pprof and handed to the uploader
** (uploader.h), then started afresh. An upload is Pyroscope's HTTP ingest
** API: POST URL/ingest?name=APP{host=..,pid=..,exe=..,vm=..}&from=&until=
** &format=pprof&sampleRate=&spyName=luaspy with the gzipped pprof as the
** raw body.
*/
#ifndef LUASPY_PUSH_H
#define LUASPY_PUSH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PUSH_LABELS_MAX 16 /* --push-label */
#define PUSH_NAME_MAX 64   /* app names, label names and values (bytes) */

struct push_opts {
  const char *url;                     /* the server, http:// or https:// */
  double every;                        /* seconds per upload */
  const char *app;                     /* NULL: "luaspy.EXE" */
  const char *labels[PUSH_LABELS_MAX]; /* "KEY=VALUE" */
  int nlabels;
};

/* Checks of what the user gives, for the command line: 0, or -1 with a
 * one-line reason in why. */
int push_check_url(const char *url, char *why, size_t len);
int push_check_label(const char *kv, char *why, size_t len);
int push_check_app(const char *app, char *why, size_t len);

struct pusher;

/* Starts pushing; hz is the sampling rate. Returns NULL after a message. */
struct pusher *push_new(const struct push_opts *o, int hz);
/* Adds one sample of process pid in the VM whose global_State is vm (0:
 * unknown): frames[0..n), root first. Returns 0, or -1 out of memory. */
int push_add(struct pusher *p, pid_t pid, uint64_t vm,
             const char *const *frames, size_t n);
/* Uploads the interval that ended by now (monotonic seconds), if any. */
void push_tick(struct pusher *p, double now);
/* Uploads the last interval, waits a few seconds at most for the queue
 * to be sent, reports, and frees p. */
void push_finish(struct pusher *p);

#endif
