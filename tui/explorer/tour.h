#ifndef ROPEFOLD_TUI_EXPLORER_TOUR_H
#define ROPEFOLD_TUI_EXPLORER_TOUR_H

#include <stddef.h>

#include "tui/explorer/commands.h"

/* One stop of a tour: a title, a few sentences, and the `:` commands that
 * set the explorer up for it. */
typedef struct {
	const char *title;
	const char *text;
	const char *const *commands;   /* NULL-terminated */
} TourStep;

/* A tour: a script of text cards and commands (tui/shared/tour_script.h),
 * the built-in one (tour.txt in the data folder) or a file of the user's.
 * The explorer at stop i is the tour's starting settings after the
 * script's first commands and every stop's commands up to i, so going back
 * replays exactly; commands that write or read a file (:export-figure,
 * :export-csv, :export, :verify, :source) act only when their stop is
 * entered. */
typedef struct Tour Tour;

/* Open the tour at path, or the built-in one when path is NULL, and check
 * that every command of it runs from settings start (in order). 0, or -1
 * with one line in err ("FILE:LINE: ..."). */
int tour_open(const char *path, const TuiSettings *start, Tour **out, char *err,
	      size_t errlen);
/* Release a tour (NULL is fine). */
void tour_free(Tour *t);
/* The number of stops (0: a script of commands only). */
size_t tour_count(const Tour *t);
/* Stop i (0-based), or NULL past the end. */
const TourStep *tour_step(const Tour *t, size_t i);
/* The commands before the first card, NULL-terminated. */
const char *const *tour_setup(const Tour *t);

#endif
