/*
** The terminal of an interactive view (`luaspy top`): keys read one at a
** time without echo, the picture drawn on the alternate screen, and the
** terminal as it was on every way out.
*/
#ifndef LUASPY_TERM_H
#define LUASPY_TERM_H

/* Puts the terminal of stdin in raw mode (no echo, no line editing, keys
 * such as Ctrl-C arrive as bytes, reads do not wait), switches stdout to
 * the alternate screen with the cursor hidden, and holds what is written
 * to stderr (it would land on the picture) until term_leave. Returns 0,
 * or -1 with errno set and nothing changed. */
int term_enter(void);

/* Undoes term_enter and writes out what stderr got meanwhile. Does
 * nothing if the terminal is not entered. */
void term_leave(void);

/* The part of term_leave a signal handler may do: the held stderr is
 * given up. */
void term_leave_now(void);

/* The next key byte typed, or -1 if none. */
int term_key(void);

/* The size of stdout's terminal. Returns 0 or -1. */
int term_size(int *rows, int *cols);

/* True once after the terminal was resized. */
int term_resized(void);

#endif
