#ifndef ROPEFOLD_TUI_EXPLORER_VIEWS_PANELS_H
#define ROPEFOLD_TUI_EXPLORER_VIEWS_PANELS_H

#include <curses.h>
#include <stdbool.h>

#include "tui/explorer/commands.h"
#include "tui/explorer/tour.h"
#include "tui/explorer/worker.h"

/* The fixed parts of the screen around the main view. Each draws into its
 * own window from the model; the event loop owns the windows. */

/* The top line: the layer, the evaluation, a computing indicator. */
void panels_title(WINDOW *w, const EvalResult *r, bool computing);
/* The toggle panel; row_of[t] gets each toggle's row in w (mouse). */
void panels_toggles(WINDOW *w, const TuiSettings *s, int sel,
		    int row_of[TOGGLE_COUNT]);
/* The tour panel in place of the toggles. */
void panels_tour(WINDOW *w, const TourStep *step, size_t i, size_t n,
		 const TuiSettings *s);
/* The three levels: prediction, verdict, errors, worst location. */
void panels_levels(WINDOW *w, const EvalResult *r);
/* The plain-words explanation. */
void panels_explanation(WINDOW *w, const EvalResult *r);
/* The main view's frame with its tabs; tab_x[v] gets each tab's first
 * column and tab_x[VIEW_COUNT] the end (mouse). */
void panels_view_frame(WINDOW *w, ViewId cur, int tab_x[VIEW_COUNT + 1]);
/* The status line: a message (an error stands out). */
void panels_status(WINDOW *w, const char *msg, bool error, const EvalResult *r);
/* The function bar from the key table, or the prompt's hints. */
void panels_bar(WINDOW *w, bool prompt, const char *matches);
/* The help screen, from the key table and the command table, wrapped to
 * the window's width and scrolled by *scroll screen lines (clamped here to
 * what the text needs, so the caller may overshoot); returns the number of
 * screen lines the help takes. */
int panels_help(WINDOW *w, int *scroll);
/* The screen shown below 80x24. */
void panels_too_small(WINDOW *w);

#endif
