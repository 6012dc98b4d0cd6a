#ifndef ROPEFOLD_TUI_EXPLORER_VIEWS_DRAW_H
#define ROPEFOLD_TUI_EXPLORER_VIEWS_DRAW_H

#include <curses.h>
#include <stddef.h>

#include "tui/explorer/commands.h"

/* Drawing helpers shared by the views and panels: clipped text, wrapping,
 * number formats and the log-scaled heat buckets. */

/* Text at (y, x) in attribute attr, clipped to the window's width, the
 * last column an ellipsis when something other than blanks was cut. Each
 * UTF-8 character counts as one column (every glyph we draw is narrow).
 * Returns the columns drawn. */
int draw_text(WINDOW *w, int y, int x, int attr, const char *s);
/* The same with a format. */
int draw_textf(WINDOW *w, int y, int x, int attr, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Word-wrap s into at most maxlines lines of width cols from (y, x); the
 * last line ends in an ellipsis when text is left over. Returns lines. */
int draw_wrap(WINDOW *w, int y, int x, int cols, int maxlines, int attr,
	      const char *s);
/* Where to break s for a line of cols columns (cols >= 1): the bytes of
 * the words that fit, or of the first cols characters when the first word
 * alone is longer. *next is set past the break and the spaces after it
 * (at the end of s when everything fits). */
size_t draw_wrap_span(const char *s, int cols, const char **next);
/* Columns s takes (one per UTF-8 character). */
size_t draw_width(const char *s);

/* The cell style to draw with: half blocks and braille need a UTF-8
 * locale (ASCII otherwise); auto stays auto (each plot decides). */
CellStyle draw_cells(CellStyle asked);
/* The bit of braille dot (row 0..3, column 0..1) in a character's
 * pattern (U+2800 + bits: dots 1-3 and 7 down the left column, 4-6 and 8
 * down the right). */
unsigned draw_braille_dot(int row, int col);
/* The UTF-8 of the braille character with dots bits, in buf (n >= 4). */
const char *draw_braille(unsigned bits, char *buf, size_t n);

/* A compact error: "5.2e-16", "0", "1.4". */
void draw_fmt_err(double v, char *buf, size_t n);

/* Log-scale bucket 0..HEAT_LEVELS-1 of a relative error: the scale runs
 * from the precision's epsilon (bucket 0: roundoff) to 1; -1 for masked
 * (negative) values. */
int draw_heat_bucket(double rel, double eps);
/* The upper edge of bucket k on the same scale. */
double draw_heat_edge(int k, double eps);
/* One heat cell of width columns: a colored block, or a shading char. */
void draw_heat_cell(WINDOW *w, int y, int x, int bucket, int width);
/* The legend, one bucket a row from the top, marking the tolerance.
 * Returns the rows used. */
int draw_heat_legend(WINDOW *w, int y, int x, int rows, double eps,
		     double tol, const char *unit);

#endif
