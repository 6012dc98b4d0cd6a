#ifndef ROPEFOLD_TUI_SHARED_FIGURE_IMPL_H
#define ROPEFOLD_TUI_SHARED_FIGURE_IMPL_H

#include <cairo.h>
#include <stdio.h>

#include "tui/shared/figure.h"

/* The pieces of tui/shared/figure*.c. */

/* One panel's box on the page, in points. */
typedef struct {
	double x, y, w, h;
} FigBox;

/* The size of one panel, and of the title band above them. */
#define FIG_PANEL_W 640.0
#define FIG_PANEL_H 460.0
#define FIG_TITLE_H 34.0

/* Draw one panel into box. */
void figure_draw_offset(cairo_t *cr, const FigureInput *in, FigBox b);
void figure_draw_heatmap(cairo_t *cr, const FigureInput *in, FigBox b);
void figure_draw_heads(cairo_t *cr, const FigureInput *in, FigBox b);
void figure_draw_pairs(cairo_t *cr, const FigureInput *in, FigBox b);

/* Open a temporary file beside path for writing (its name into tmp);
 * NULL with err on failure. */
FILE *figure_tmp_open(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen);
/* Rename tmp over path (0), or remove it and say why (-1). */
int figure_tmp_commit(const char *tmp, const char *path, char *err, size_t errlen);

#endif
