#ifndef ROPEFOLD_TUI_EXPLORER_TOUR_H
#define ROPEFOLD_TUI_EXPLORER_TOUR_H

#include <stddef.h>

/* One stop of the classroom tour: a title, a few sentences, and the `:`
 * commands that set the explorer up for it (run in order from the
 * previous stop's state). */
typedef struct {
	const char *title;
	const char *text;
	const char *const *commands;   /* NULL-terminated */
} TourStep;

/* The number of stops. */
size_t tour_count(void);
/* Stop i (0-based), or NULL past the end. */
const TourStep *tour_step(size_t i);

#endif
