/*
** Helpers shared by the command frontends.
*/
#ifndef LUASPY_COMMON_H
#define LUASPY_COMMON_H

#include <sys/types.h>

/* One error line on stderr, prefixed "luaspy: ". */
void die_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error of command cmd: one line on stderr that points at the
 * command's --help. Returns 2, the exit status for usage errors. */
int usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Set by the CLI fuzzer (tests/fuzz/fuzz_cli.c): a command returns 0 as
 * soon as its arguments are parsed and checked, before it touches a
 * process or opens a file. */
extern int cli_parse_only;

/* The usage error of getopt_long's c, '?' or ':' (opterr 0, and a ':'
 * first in the short options): an unknown option, or one without its
 * value. Returns 2. */
int option_error(const char *cmd, int c, char *const *argv);

/* Parses "123" or "12,34"; returns the count or -1. */
int parse_pids(const char *s, pid_t *pids, int max);

/* A positive number of seconds, as "30" or "2.5" (at most 1e7).
 * Returns 0 or -1. */
int parse_duration(const char *s, double *v);

/* A sampling rate: 1 to max Hz. Returns 0 or -1. */
int parse_hz(const char *s, int *hz, int max);

/* Installs SIGINT/SIGTERM/SIGHUP handlers that detach from any stopped
 * thread. With a flag, the first signal sets *flag (the command stops and
 * writes what it has), a repeat within 2 s is ignored, a later one kills;
 * without, any signal kills (after detaching). */
void install_signal_guard(volatile int *flag);

/* Seconds on CLOCK_MONOTONIC: for durations and deadlines. */
double mono_now(void);
/* Sleeps s seconds, signals notwithstanding. */
void sleep_s(double s);
/* fn (async-signal-safe) runs before a signal the guard handles kills
 * the process: `luaspy top` restores the terminal there. */
void signal_guard_cleanup(void (*fn)(void));

#endif
