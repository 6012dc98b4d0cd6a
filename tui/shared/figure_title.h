#ifndef ROPEFOLD_TUI_SHARED_FIGURE_TITLE_H
#define ROPEFOLD_TUI_SHARED_FIGURE_TITLE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/fold.h"
#include "core/verify.h"

/* The one line above a figure's panels, for `check --plot` and the
 * explorer's :export-figure alike: what was evaluated against what. */
typedef struct {
	const char *source;         /* A: the layer's checkpoint (or "random") */
	size_t layer, seq;
	const FoldConfig *fold;     /* the fold drawn, or NULL in compare mode */
	const char *against;        /* compare mode: B's path (else NULL) */
	bool equivalent;            /* compare mode: verify's verdict on B, */
	VerifyRelation relation;    /* its relation */
	VerifyWhy why;              /* and why it is none */
	bool f32;                   /* the evaluation ran in float32 */
	double tol;                 /* of its levels */
} FigureTitle;

#define FIGURE_TITLE_MAX 1200

/* "A layer 3, T = 32: rotate qkvo, float64, tol 1e-09" for a fold, and
 * "A vs B (layer 3), T = 32: commuting fold, float64, tol 2.3e-07" in
 * compare mode, into buf (len bytes, truncated to fit). */
void figure_title_format(const FigureTitle *t, char *buf, size_t len);

#endif
