/*
** The uploader thread (see uploader.h). One libcurl handle, reused so
** that the connection to the server stays open between uploads. The
** thread blocks every signal: Ctrl-C reaches the sampling thread, which
** then calls uploader_finish.
*/
#define _GNU_SOURCE
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "uploader.h"

#define BACKOFF_FIRST 1.0  /* seconds before the first retry */
#define BACKOFF_MAX 30.0   /* the longest wait between tries */
#define CONNECT_TIMEOUT 5L /* seconds */
#define REQUEST_TIMEOUT 20L
#define WARN_EVERY 10.0 /* seconds between two messages of one kind */

struct upload {
  char *url, *body;
  size_t len;
};

struct uploader {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake; /* work queued, finishing, or aborting */
  pthread_cond_t idle; /* nothing queued or in flight */
  struct upload q[UPLOAD_QUEUE];
  size_t head, n;
  int busy;      /* an upload is in flight or waiting to be retried */
  int finishing; /* no more uploads come: send the queue, then stop */
  int abort;     /* stop now; read by libcurl's progress callback */
  CURL *curl;
  struct upload_stats st;
  uint64_t failing;   /* failed tries since the last success */
  double fail_warned; /* when a failure was last reported */
  double drop_warned; /* when a drop was last reported */
  char err[CURL_ERROR_SIZE];
};

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One line on stderr; on a terminal it replaces record's progress line. */
static void warn(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%sluaspy: push: ", isatty(STDERR_FILENO) ? "\r\033[K" : "");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void upload_free(struct upload *up)
{
  free(up->url);
  free(up->body);
}

/* With u->mu held. */
static void drop_oldest(struct uploader *u)
{
  double t = now_s();
  upload_free(&u->q[u->head]);
  u->head = (u->head + 1) % UPLOAD_QUEUE;
  u->n--;
  u->st.dropped++;
  if (u->st.dropped == 1 || t - u->drop_warned >= WARN_EVERY) {
    warn("the server does not keep up: dropped the oldest profile (%llu so "
         "far)",
         (unsigned long long)u->st.dropped);
    u->drop_warned = t;
  }
}

void uploader_put(struct uploader *u, char *url, char *body, size_t len)
{
  pthread_mutex_lock(&u->mu);
  if (u->n == UPLOAD_QUEUE) drop_oldest(u);
  u->q[(u->head + u->n) % UPLOAD_QUEUE] =
      (struct upload){.url = url, .body = body, .len = len};
  u->n++;
  pthread_cond_signal(&u->wake);
  pthread_mutex_unlock(&u->mu);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
  (void)p;
  (void)arg;
  return size * n;
}

/* Lets uploader_finish cut a slow transfer short. */
static int check_abort(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                       curl_off_t un)
{
  struct uploader *u = arg;
  (void)dt, (void)dn, (void)ut, (void)un;
  return __atomic_load_n(&u->abort, __ATOMIC_RELAXED);
}

enum outcome { SENT, RETRY, REFUSED };

/* One try. why gets the reason of a failure. */
static enum outcome post(struct uploader *u, const struct upload *up, char *why,
                         size_t len)
{
  struct curl_slist *hdr =
      curl_slist_append(NULL, "Content-Type: application/octet-stream");
  CURL *c = u->curl;
  long status = 0;
  CURLcode rc;
  curl_easy_setopt(c, CURLOPT_URL, up->url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, up->body);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)up->len);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
  u->err[0] = 0;
  rc = curl_easy_perform(c);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(hdr);
  if (rc != CURLE_OK) {
    snprintf(why, len, "%s", u->err[0] ? u->err : curl_easy_strerror(rc));
    return RETRY;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) return SENT;
  snprintf(why, len, "the server answered HTTP %ld", status);
  /* A request the server refuses will not do better the next time,
   * except for these: busy, rate-limited, timed out. */
  return status >= 400 && status < 500 && status != 408 && status != 429
             ? REFUSED
             : RETRY;
}

/* Tries up until it is sent, refused, aborted, or newer uploads fill the
 * queue. Called without u->mu. */
static void send_one(struct uploader *u, const struct upload *up)
{
  double wait = BACKOFF_FIRST;
  char why[CURL_ERROR_SIZE + 64];
  for (;;) {
    enum outcome o = post(u, up, why, sizeof(why));
    double t = now_s();
    struct timespec until;
    pthread_mutex_lock(&u->mu);
    if (o == SENT) {
      if (u->failing)
        warn("uploads work again, after %llu failed tries",
             (unsigned long long)u->failing);
      u->failing = 0;
      u->st.sent++;
      break;
    }
    u->failing++;
    if (o == REFUSED) {
      u->st.failed++;
      warn("%s; this profile is not sent", why);
      break;
    }
    /* Out of time at exit, or newer profiles wait: this one goes. */
    if (u->abort || u->n == UPLOAD_QUEUE) {
      u->st.dropped++;
      break;
    }
    if (u->failing == 1 || t - u->fail_warned >= WARN_EVERY) {
      warn("upload failed: %s; retrying in %.0f s", why, wait);
      u->fail_warned = t;
    }
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)wait;
    while (!u->abort && u->n < UPLOAD_QUEUE &&
           pthread_cond_timedwait(&u->wake, &u->mu, &until) == 0)
      continue;
    pthread_mutex_unlock(&u->mu);
    wait = wait * 2 < BACKOFF_MAX ? wait * 2 : BACKOFF_MAX;
  }
  pthread_mutex_unlock(&u->mu);
}

static void *run(void *arg)
{
  struct uploader *u = arg;
  pthread_mutex_lock(&u->mu);
  for (;;) {
    struct upload up;
    while (!u->n && !u->finishing) pthread_cond_wait(&u->wake, &u->mu);
    if (!u->n) break;
    up = u->q[u->head];
    u->head = (u->head + 1) % UPLOAD_QUEUE;
    u->n--;
    u->busy = 1;
    pthread_mutex_unlock(&u->mu);
    send_one(u, &up);
    upload_free(&up);
    pthread_mutex_lock(&u->mu);
    u->busy = 0;
    if (!u->n) pthread_cond_broadcast(&u->idle);
  }
  pthread_cond_broadcast(&u->idle);
  pthread_mutex_unlock(&u->mu);
  return NULL;
}

static CURL *new_handle(struct uploader *u)
{
  CURL *c = curl_easy_init();
  if (!c) return NULL;
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, REQUEST_TIMEOUT);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "luaspy/" LUASPY_VERSION);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, u->err);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, check_abort);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, u);
  /* Only the URL's own scheme: a redirect must not turn into file://. */
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  return c;
}

struct uploader *uploader_new(void)
{
  struct uploader *u = calloc(1, sizeof(*u));
  pthread_condattr_t ca;
  sigset_t all, old;
  int err;
  if (!u) goto nomem;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) || !(u->curl = new_handle(u))) {
    fprintf(stderr, "luaspy: push: cannot start libcurl\n");
    free(u);
    return NULL;
  }
  pthread_mutex_init(&u->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&u->wake, &ca);
  pthread_cond_init(&u->idle, &ca);
  pthread_condattr_destroy(&ca);
  /* The thread inherits the mask: it takes no signal. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  err = pthread_create(&u->thread, NULL, run, u);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err) {
    fprintf(stderr, "luaspy: push: cannot start the upload thread: %s\n",
            strerror(err));
    curl_easy_cleanup(u->curl);
    free(u);
    return NULL;
  }
  return u;
nomem:
  fprintf(stderr, "luaspy: out of memory\n");
  return NULL;
}

void uploader_finish(struct uploader *u, double wait, struct upload_stats *st)
{
  struct timespec until;
  if (!u) return;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += (time_t)wait;
  until.tv_nsec += (long)((wait - (time_t)wait) * 1e9);
  if (until.tv_nsec >= 1000000000L)
    until.tv_sec++, until.tv_nsec -= 1000000000L;
  pthread_mutex_lock(&u->mu);
  u->finishing = 1;
  pthread_cond_broadcast(&u->wake);
  while ((u->n || u->busy) &&
         pthread_cond_timedwait(&u->idle, &u->mu, &until) == 0)
    continue;
  /* Out of time: what is left is dropped, a transfer is cut short. */
  __atomic_store_n(&u->abort, 1, __ATOMIC_RELAXED);
  while (u->n) {
    upload_free(&u->q[u->head]);
    u->head = (u->head + 1) % UPLOAD_QUEUE;
    u->n--;
    u->st.dropped++;
  }
  pthread_cond_broadcast(&u->wake);
  pthread_mutex_unlock(&u->mu);
  pthread_join(u->thread, NULL);
  if (st) *st = u->st;
  curl_easy_cleanup(u->curl);
  curl_global_cleanup();
  pthread_cond_destroy(&u->wake);
  pthread_cond_destroy(&u->idle);
  pthread_mutex_destroy(&u->mu);
  free(u);
}
