#ifndef ROPEFOLD_CORE_TIMER_H
#define ROPEFOLD_CORE_TIMER_H

/* A monotonic clock for the phase timings an evaluation keeps (core never
 * prints them: callers such as ropefold bench ask for them). */

/* Seconds since an arbitrary fixed point, monotonic. */
double timer_now(void);

#endif
