/*
** Helpers shared by the command frontends.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../proc/proc.h"
#include "common.h"

int cli_parse_only;

void die_msg(const char *fmt, ...)
{
  va_list ap;
  fputs("luaspy: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "luaspy: %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (try 'luaspy %s --help')\n", cmd);
  return 2;
}

int option_error(const char *cmd, int c, char *const *argv)
{
  char opt[3] = {'-', (char)optopt, 0}; /* optopt: 0 for a long option */
  if (c == ':')
    return usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
  return usage_error(cmd, "unknown option '%s'",
                     optopt ? opt : argv[optind - 1]);
}

int parse_pids(const char *s, pid_t *pids, int max)
{
  int n = 0;
  while (*s) {
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || v <= 0 || v > 0x3fffffff || n == max ||
        (*end && *end != ','))
      return -1;
    pids[n++] = (pid_t)v;
    s = *end ? end + 1 : end;
  }
  return n ? n : -1;
}

int parse_duration(const char *s, double *v)
{
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  return errno || end == s || *end || !(*v > 0) || *v > 1e7 ? -1 : 0;
}

int parse_hz(const char *s, int *hz, int max)
{
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 1 || v > max) return -1;
  *hz = (int)v;
  return 0;
}

static volatile int *stop_flag;
static void (*cleanup)(void);
static struct timespec first_signal;

/* Seconds since the first stop signal (clock_gettime is async-signal-safe). */
static double since_first(void)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - first_signal.tv_sec) +
         (now.tv_nsec - first_signal.tv_nsec) / 1e9;
}

static void on_signal(int sig)
{
  /* Never leave a target thread stopped behind us. */
  proc_resume_all();
  if (stop_flag && !*stop_flag) {
    *stop_flag = 1;
    clock_gettime(CLOCK_MONOTONIC, &first_signal);
    return;
  }
  /* The same stop delivered twice (timeout(1) signals its child and then
   * its process group) must not cost the output; a signal that comes
   * later means "stop now". */
  if (stop_flag && since_first() < 2.0) return;
  if (cleanup) cleanup();
  signal(sig, SIG_DFL);
  raise(sig);
}

void install_signal_guard(volatile int *flag)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  stop_flag = flag;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

void signal_guard_cleanup(void (*fn)(void))
{
  cleanup = fn;
}

double mono_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void sleep_s(double s)
{
  struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) && errno == EINTR) continue;
}
