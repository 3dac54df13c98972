/*
** Profiles by process and VM, cut into intervals and sent (see push.h).
** Encoding happens here, on the sampling thread, once an interval; the
** network is the uploader thread's.
**
** Pyroscope reads the labels from the app name, name{k=v,...}: keys are
** identifiers, values are kept to a safe set of characters (anything
** else becomes '_'), so no value can end a label or the name early.
*/
#define _GNU_SOURCE
#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../output/pprof.h"
#include "push.h"
#include "uploader.h"

#define FINISH_WAIT 5.0  /* seconds for the last uploads at exit */
#define NAME_LEN 4096    /* the name parameter: app and all labels */
#define INGEST "/ingest" /* Pyroscope's endpoint, under the URL's path */

struct series {
  pid_t pid;
  uint64_t vm; /* global_State, 0 if unknown */
  struct profile *prof;
  char exe[PUSH_NAME_MAX];
};

struct pusher {
  const struct push_opts *o;
  int hz;
  CURLU *base; /* the ingest URL, before the query of an upload */
  struct uploader *up;
  struct series *v;
  size_t n, cap, last; /* last: the series of the previous sample */
  double next;         /* monotonic end of the current interval */
  time_t from;         /* wall-clock start of it */
  char host[PUSH_NAME_MAX];
};

static int safe_char(int c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c && strchr("_.-:/@+", c));
}

static int ident_char(int c, int first)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

/* Copies s into a label value, bounded, unsafe characters as '_'. */
static void sanitize(char *dst, const char *s)
{
  size_t i;
  for (i = 0; s[i] && i < PUSH_NAME_MAX - 1; i++)
    dst[i] = safe_char((unsigned char)s[i]) ? s[i] : '_';
  dst[i] = 0;
  if (!i) snprintf(dst, PUSH_NAME_MAX, "unknown");
}

/* Parses url and points it at the ingest endpoint. */
static CURLU *ingest_url(const char *url, char *why, size_t len)
{
  CURLU *h = curl_url();
  char *scheme = NULL, *host = NULL, *path = NULL;
  char buf[PATH_MAX];
  size_t n;
  if (!h) {
    snprintf(why, len, "out of memory");
    return NULL;
  }
  if (curl_url_set(h, CURLUPART_URL, url, 0) ||
      curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) ||
      curl_url_get(h, CURLUPART_HOST, &host, 0) || !*host) {
    snprintf(why, len, "invalid push URL '%.200s' (http://HOST[:PORT][/PATH])",
             url);
    goto fail;
  }
  if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
    snprintf(why, len, "push URL '%.200s' is not http:// or https://", url);
    goto fail;
  }
  if (curl_url_get(h, CURLUPART_PATH, &path, 0)) path = NULL;
  n = snprintf(buf, sizeof(buf), "%s", path ? path : "/");
  while (n > 0 && buf[n - 1] == '/') buf[--n] = 0;
  if (n < strlen(INGEST) || strcmp(buf + n - strlen(INGEST), INGEST))
    snprintf(buf + n, sizeof(buf) - n, INGEST);
  if (curl_url_set(h, CURLUPART_PATH, buf, 0)) {
    snprintf(why, len, "invalid push URL '%.200s'", url);
    goto fail;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(path);
  return h;
fail:
  curl_free(scheme);
  curl_free(host);
  curl_free(path);
  curl_url_cleanup(h);
  return NULL;
}

int push_check_url(const char *url, char *why, size_t len)
{
  CURLU *h = ingest_url(url, why, len);
  curl_url_cleanup(h);
  return h ? 0 : -1;
}

int push_check_label(const char *kv, char *why, size_t len)
{
  const char *eq = strchr(kv, '=');
  size_t i;
  if (!eq || eq == kv) goto bad;
  for (i = 0; kv + i < eq; i++)
    if (!ident_char((unsigned char)kv[i], i == 0)) goto bad;
  if (i >= PUSH_NAME_MAX || !strncmp(kv, "__", 2)) goto bad;
  for (i = 1; eq[i]; i++)
    if (!safe_char((unsigned char)eq[i])) goto bad;
  if (i == 1 || i > PUSH_NAME_MAX) goto bad;
  return 0;
bad:
  snprintf(why, len,
           "invalid push label '%.100s' (KEY=VALUE: KEY a name not starting "
           "with __, VALUE of letters, digits and _.-:/@+, %d bytes at most)",
           kv, PUSH_NAME_MAX - 1);
  return -1;
}

int push_check_app(const char *app, char *why, size_t len)
{
  size_t i;
  for (i = 0; app[i]; i++)
    if (!safe_char((unsigned char)app[i]) || app[i] == ':' || app[i] == '/' ||
        app[i] == '@' || app[i] == '+')
      break;
  if (!app[i] && i > 0 && i < PUSH_NAME_MAX) return 0;
  snprintf(why, len,
           "invalid app name '%.100s' (letters, digits and _.-, %d bytes at "
           "most)",
           app, PUSH_NAME_MAX - 1);
  return -1;
}

/* Adds ",key=value" (or "key=value" first) to name, unless the user gave
 * that key with --push-label. */
static void add_label(const struct push_opts *o, char *name, size_t *at,
                      const char *key, const char *value, int builtin)
{
  size_t klen = strlen(key);
  if (builtin)
    for (int i = 0; i < o->nlabels; i++)
      if (!strncmp(o->labels[i], key, klen) && o->labels[i][klen] == '=')
        return;
  if (*at < NAME_LEN)
    *at += snprintf(name + *at, NAME_LEN - *at, "%s%s=%s",
                    name[*at - 1] == '{' ? "" : ",", key, value);
}

/* APP{host=..,pid=..,exe=..,vm=..,USER LABELS}. */
static void series_name(const struct pusher *p, const struct series *s,
                        char *name)
{
  const struct push_opts *o = p->o;
  char pid[16], vm[24];
  size_t at;
  if (o->app)
    at = snprintf(name, NAME_LEN, "%s{", o->app);
  else
    at = snprintf(name, NAME_LEN, "luaspy.%s{", s->exe);
  snprintf(pid, sizeof(pid), "%d", (int)s->pid);
  if (s->vm)
    snprintf(vm, sizeof(vm), "0x%llx", (unsigned long long)s->vm);
  else
    snprintf(vm, sizeof(vm), "unknown");
  add_label(o, name, &at, "host", p->host, 1);
  add_label(o, name, &at, "pid", pid, 1);
  add_label(o, name, &at, "exe", s->exe, 1);
  add_label(o, name, &at, "vm", vm, 1);
  for (int i = 0; i < o->nlabels; i++) {
    char key[PUSH_NAME_MAX];
    const char *eq = strchr(o->labels[i], '=');
    snprintf(key, sizeof(key), "%.*s", (int)(eq - o->labels[i]), o->labels[i]);
    add_label(o, name, &at, key, eq + 1, 0);
  }
  if (at < NAME_LEN - 1) snprintf(name + at, NAME_LEN - at, "}");
}

/* Appends "&key=value" (value URL-encoded) to h's query. */
static int add_param(CURLU *h, const char *key, const char *value)
{
  char *v = curl_easy_escape(NULL, value, 0);
  char *kv = NULL;
  int rc = -1;
  if (v && asprintf(&kv, "%s=%s", key, v) >= 0)
    rc = curl_url_set(h, CURLUPART_QUERY, kv, CURLU_APPENDQUERY) ? -1 : 0;
  curl_free(v);
  free(kv);
  return rc;
}

static char *upload_url(const struct pusher *p, const struct series *s,
                        time_t until)
{
  CURLU *h = curl_url_dup(p->base);
  char *name = malloc(NAME_LEN), from_s[24], until_s[24], hz[16];
  char *url = NULL, *ret = NULL;
  if (!h || !name) goto out;
  series_name(p, s, name);
  snprintf(from_s, sizeof(from_s), "%lld", (long long)p->from);
  snprintf(until_s, sizeof(until_s), "%lld", (long long)until);
  snprintf(hz, sizeof(hz), "%d", p->hz);
  if (add_param(h, "name", name) || add_param(h, "from", from_s) ||
      add_param(h, "until", until_s) || add_param(h, "format", "pprof") ||
      add_param(h, "sampleRate", hz) || add_param(h, "spyName", "luaspy") ||
      curl_url_get(h, CURLUPART_URL, &url, 0))
    goto out;
  ret = strdup(url);
out:
  curl_free(url);
  curl_url_cleanup(h);
  free(name);
  return ret;
}

/* The series' profile as gzipped pprof, malloc'd. */
static char *encode(const struct pusher *p, const struct profile *prof,
                    size_t *len)
{
  struct render_opts ro = {.sample_hz = p->hz};
  char *buf = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&buf, &size);
  int err;
  if (!f) return NULL;
  err = pprof_write(prof, f, &ro);
  if (fclose(f) || err) {
    free(buf);
    return NULL;
  }
  *len = size;
  return buf;
}

/* Hands every series to the uploader and starts a new interval with no
 * series: a process that is gone has none, the others get theirs again
 * with their next sample. */
static void flush(struct pusher *p)
{
  time_t until = time(NULL);
  if (until <= p->from) until = p->from + 1;
  for (size_t i = 0; i < p->n; i++) {
    struct series *s = &p->v[i];
    size_t len = 0;
    char *url = upload_url(p, s, until), *body = encode(p, s->prof, &len);
    if (url && body)
      uploader_put(p->up, url, body, len);
    else {
      fprintf(stderr, "luaspy: push: cannot encode a profile: out of memory\n");
      free(url);
      free(body);
    }
    profile_free(s->prof);
  }
  p->n = p->last = 0;
  p->from = until;
}

static void exe_name(pid_t pid, char *exe)
{
  char link[64], path[PATH_MAX];
  ssize_t n;
  snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
  n = readlink(link, path, sizeof(path) - 1);
  path[n > 0 ? n : 0] = 0;
  sanitize(exe, strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
}

static struct series *series_of(struct pusher *p, pid_t pid, uint64_t vm)
{
  struct series *s;
  if (p->last < p->n && p->v[p->last].pid == pid && p->v[p->last].vm == vm)
    return &p->v[p->last];
  for (size_t i = 0; i < p->n; i++)
    if (p->v[i].pid == pid && p->v[i].vm == vm) return &p->v[p->last = i];
  if (p->n == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 16;
    struct series *v = realloc(p->v, cap * sizeof(*v));
    if (!v) return NULL;
    p->v = v;
    p->cap = cap;
  }
  s = &p->v[p->n];
  *s = (struct series){.pid = pid, .vm = vm};
  if (!(s->prof = profile_new("samples"))) return NULL;
  exe_name(pid, s->exe);
  p->last = p->n++;
  return s;
}

int push_add(struct pusher *p, pid_t pid, uint64_t vm,
             const char *const *frames, size_t n)
{
  struct series *s = series_of(p, pid, vm);
  if (!s) {
    fprintf(stderr, "luaspy: out of memory\n");
    return -1;
  }
  return profile_add(s->prof, frames, n, 1);
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void push_tick(struct pusher *p, double now)
{
  if (now < p->next) return;
  flush(p);
  p->next += p->o->every;
  if (p->next <= now) p->next = now + p->o->every;
}

struct pusher *push_new(const struct push_opts *o, int hz)
{
  struct pusher *p = calloc(1, sizeof(*p));
  char why[512], host[256];
  if (!p) {
    fprintf(stderr, "luaspy: out of memory\n");
    return NULL;
  }
  p->o = o;
  p->hz = hz;
  if (!(p->base = ingest_url(o->url, why, sizeof(why)))) {
    fprintf(stderr, "luaspy: %s\n", why);
    free(p);
    return NULL;
  }
  if (!(p->up = uploader_new())) {
    curl_url_cleanup(p->base);
    free(p);
    return NULL;
  }
  if (gethostname(host, sizeof(host))) host[0] = 0;
  host[sizeof(host) - 1] = 0;
  sanitize(p->host, host);
  p->from = time(NULL);
  p->next = now_s() + o->every;
  return p;
}

void push_finish(struct pusher *p)
{
  struct upload_stats st;
  char *host = NULL;
  if (!p) return;
  flush(p);
  uploader_finish(p->up, FINISH_WAIT, &st);
  /* Nothing sent nor lost: no samples, or record failed early. */
  if (!st.sent && !st.dropped && !st.failed) goto out;
  curl_url_get(p->base, CURLUPART_HOST, &host, 0);
  fprintf(stderr, "luaspy: push: %llu profile%s sent to %s",
          (unsigned long long)st.sent, st.sent == 1 ? "" : "s",
          host ? host : "the server");
  if (st.dropped)
    fprintf(stderr, ", %llu dropped", (unsigned long long)st.dropped);
  if (st.failed)
    fprintf(stderr, ", %llu refused by the server",
            (unsigned long long)st.failed);
  fputc('\n', stderr);
  curl_free(host);
out:
  free(p->v);
  curl_url_cleanup(p->base);
  free(p);
}
