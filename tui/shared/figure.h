#ifndef ROPEFOLD_TUI_SHARED_FIGURE_H
#define ROPEFOLD_TUI_SHARED_FIGURE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/report.h"

/* Figures of an evaluation for slides and papers: the explorer's views
 * drawn through cairo into SVG, PNG or PDF (by the file's extension), and
 * their numbers as CSV. No curses here: `check --plot` runs headless. */

typedef enum {
	FIG_OFFSET = 0,   /* score error by offset m - n, log axis */
	FIG_HEATMAP,      /* score error over (m, n) of one head */
	FIG_HEADS,        /* head-level and score error per query head */
	FIG_PAIRS,        /* commutator map per frequency pair of one head */
	FIG_KIND_COUNT
} FigureKind;

typedef struct {
	const InvReport *rep;
	size_t head;          /* FIG_HEATMAP, FIG_PAIRS: the query head */
	bool heat_linear;     /* FIG_HEATMAP: a linear color scale, not log */
	const char *title;    /* one line above the panels (layer, fold), or NULL */
} FigureInput;

/* 0 when path ends in .svg, .png or .pdf (any case), else -1. */
int figure_format_ok(const char *path);

/* Draw the panels kinds[0..n-1] side by side into path, in the format its
 * extension names. The file is written beside path under a temporary
 * name and renamed over it, so a failure leaves nothing half-written.
 * 0, or -1 with one line in err. */
int figure_write(const FigureInput *in, const FigureKind *kinds, size_t n,
		 const char *path, char *err, size_t errlen);

/* The numbers of one panel as CSV (a header line, then one row per
 * offset, bin, head or pair block; %.17g, so they read back exactly).
 * Written the same way; 0, or -1 with one line in err. */
int figure_write_csv(const FigureInput *in, FigureKind kind, const char *path,
		     char *err, size_t errlen);

#endif
