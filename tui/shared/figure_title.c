#include "config.h"

#include <stdio.h>

#include "core/rotation.h"
#include "tui/shared/figure_title.h"

void figure_title_format(const FigureTitle *t, char *buf, size_t len)
{
	const char *prec = t->f32 ? "float32" : "float64";
	if (t->against) {
		/* B's stored layer took the fold's place: name both, and how
		 * verify relates them (its short names: "commuting fold",
		 * "mixes-pairs", ...) */
		snprintf(buf, len, "%s vs %s (layer %zu), T = %zu: %s%s, %s, tol %.3g", t->source,
			 t->against, t->layer, t->seq, t->equivalent ? "" : "not equivalent, ",
			 t->equivalent ? verify_relation_name(t->relation) : verify_why_name(t->why),
			 prec, t->tol);
		return;
	}
	char rot[8] = "?", kind[48] = "";
	bool drop = false;
	if (t->fold) {
		fold_rotate_format(t->fold->rotate, rot, sizeof rot);
		rotation_kind_format(t->fold->kind, t->fold->mix_eps, kind, sizeof kind);
		drop = t->fold->dropped & ASSUME_COMMUTES;
	}
	snprintf(buf, len, "%s layer %zu, T = %zu: rotate %s%s%s, %s, tol %.3g", t->source,
		 t->layer, t->seq, rot, drop ? ", commutes dropped, kind " : "",
		 drop ? kind : "", prec, t->tol);
}
