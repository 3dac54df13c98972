/*
** Scheduling the allocation probes' windows (see window.h).
*/
#include "window.h"

/* Off time never below one window: attaching and detaching are not free
 * either (each rewrites the probed page of the target's text). */
#define MIN_OFF_WINDOWS 1.0
#define MAX_OFF_S 30.0

static double uniform(struct window *w) /* [0.5, 1.5), xorshift64 */
{
  w->rng ^= w->rng << 13;
  w->rng ^= w->rng >> 7;
  w->rng ^= w->rng << 17;
  return 0.5 + (double)(w->rng >> 11) / (double)(1ull << 53);
}

void window_init(struct window *w, double on_s, double budget, double trap_s,
                 double end_s, double now)
{
  *w = (struct window){.on_s = on_s,
                       .budget = budget,
                       .trap_s = trap_s,
                       .end_s = end_s,
                       .next = now,
                       .rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(now * 1e9)};
}

enum window_step window_tick(struct window *w, double now, uint64_t calls)
{
  if (now < w->next) return WINDOW_STAY;
  if (w->on) {
    /* At most the whole time a probe was in place: attaching included. */
    double held = now - w->began,
           cost = (double)(calls - w->calls0) * w->trap_s, off;
    if (cost > held) cost = held;
    w->on = 0;
    w->on_total += now - w->opened;
    off = cost / w->budget - (now - w->opened);
    if (off < MIN_OFF_WINDOWS * w->on_s) off = MIN_OFF_WINDOWS * w->on_s;
    if (off > MAX_OFF_S) off = MAX_OFF_S;
    w->next = now + off * uniform(w);
    return WINDOW_DETACH;
  }
  if (w->end_s > 0 && now + w->on_s > w->end_s) {
    w->next = 1e300; /* no more windows */
    return WINDOW_STAY;
  }
  w->on = 1;
  w->began = w->opened = now;
  w->calls0 = calls;
  w->count++;
  w->next = now + w->on_s;
  return WINDOW_ATTACH;
}

void window_attached(struct window *w, double now)
{
  w->opened = now;
  w->next = now + w->on_s;
}

double window_wait(const struct window *w, double now)
{
  return w->next > now ? w->next - now : 0;
}
