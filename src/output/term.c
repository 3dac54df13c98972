/*
** Raw mode by termios, the alternate screen by the escapes every
** terminal emulator since xterm knows: nothing needs terminfo, and it
** works the same over ssh.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <termios.h>
#include <unistd.h>

#include "term.h"

/* Alternate screen on, cursor hidden, cleared; and back. */
#define ENTER_SEQ "\033[?1049h\033[?25l\033[H\033[2J"
#define LEAVE_SEQ "\033[?25h\033[?1049l"

static struct termios saved;
static volatile sig_atomic_t entered, resized;
static int real_stderr = -1; /* stderr while held */
static int held = -1;        /* the file holding what stderr got */

static void write_all(int fd, const char *s, size_t n)
{
  while (n > 0) {
    ssize_t k = write(fd, s, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return;
    s += k;
    n -= (size_t)k;
  }
}

static void on_winch(int sig)
{
  (void)sig;
  resized = 1;
}

/* Best effort: without it, messages go to the screen and are lost with
 * it. */
static void hold_stderr(void)
{
  if ((held = memfd_create("luaspy-stderr", MFD_CLOEXEC)) < 0) return;
  if ((real_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)) < 0 ||
      dup2(held, STDERR_FILENO) < 0) {
    if (real_stderr >= 0) close(real_stderr);
    close(held);
    real_stderr = held = -1;
  }
}

int term_enter(void)
{
  struct termios raw;
  struct sigaction sa;
  if (entered) return 0;
  if (tcgetattr(STDIN_FILENO, &saved)) return -1;
  raw = saved;
  raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
  raw.c_iflag &= ~(tcflag_t)(IXON | ICRNL);
  raw.c_cc[VMIN] = 0;
  raw.c_cc[VTIME] = 0;
  if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw)) return -1;
  entered = 1;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_winch;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGWINCH, &sa, NULL);
  write_all(STDOUT_FILENO, ENTER_SEQ, sizeof(ENTER_SEQ) - 1);
  hold_stderr();
  return 0;
}

void term_leave_now(void)
{
  if (!entered) return;
  entered = 0;
  write_all(STDOUT_FILENO, LEAVE_SEQ, sizeof(LEAVE_SEQ) - 1);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
  if (real_stderr >= 0) dup2(real_stderr, STDERR_FILENO);
}

void term_leave(void)
{
  char buf[4096];
  ssize_t n;
  if (!entered) return;
  term_leave_now();
  signal(SIGWINCH, SIG_DFL);
  if (held < 0) return;
  if (lseek(held, 0, SEEK_SET) == 0)
    while ((n = read(held, buf, sizeof(buf))) > 0)
      write_all(STDERR_FILENO, buf, (size_t)n);
  close(held);
  close(real_stderr);
  held = real_stderr = -1;
}

int term_key(void)
{
  unsigned char c;
  return read(STDIN_FILENO, &c, 1) == 1 ? c : -1;
}

int term_size(int *rows, int *cols)
{
  struct winsize ws;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) || !ws.ws_row || !ws.ws_col)
    return -1;
  *rows = ws.ws_row;
  *cols = ws.ws_col;
  return 0;
}

int term_resized(void)
{
  int r = resized;
  resized = 0;
  return r;
}
