/*
** When the allocation probes are attached: short windows, spaced so that
** the time the target loses to probe traps stays within a budget.
**
** While attached, each allocator call costs the target a trap into the
** kernel (6-25 us on a quiet machine here, far more on a busy one; see
** bench/README.md) instead of tens of nanoseconds, so an allocation-bound
** loop runs hundreds of times slower for that window. A window that saw
** `calls` calls cost about calls * trap_s, but never more than the time
** the probes were in place (attaching included; detaching removes the
** breakpoints at once, then waits for the kernel's grace period); the next
** window opens after that cost divided by the budget (the share of time
** the target may lose), at a random point of that interval so that
** windows do not lock onto the target's periods.
*/
#ifndef LUASPY_ALLOC_WINDOW_H
#define LUASPY_ALLOC_WINDOW_H

#include <stdint.h>

struct window {
  double on_s;     /* length of a window */
  double budget;   /* share of time the target may lose, e.g. 0.01 */
  double trap_s;   /* estimated cost of one allocator call while attached */
  double end_s;    /* no window opens after this (0: no end) */
  int on;          /* attached now */
  double next;     /* when to attach or detach next */
  double began;    /* when attaching the current window's probes began */
  double opened;   /* when they were all attached */
  uint64_t calls0; /* the calls counter then */
  unsigned count;  /* windows opened so far */
  double on_total; /* seconds attached so far */
  uint64_t rng;
};

void window_init(struct window *w, double on_s, double budget, double trap_s,
                 double end_s, double now);

enum window_step { WINDOW_STAY, WINDOW_ATTACH, WINDOW_DETACH };

/* What to do at time now, given the total allocator calls seen while
 * attached so far. The caller attaches or detaches accordingly. */
enum window_step window_tick(struct window *w, double now, uint64_t calls);
/* The probes are attached now (attaching takes a while): the window
 * starts now. */
void window_attached(struct window *w, double now);
/* Seconds from now until window_tick has something to do. */
double window_wait(const struct window *w, double now);

#endif
