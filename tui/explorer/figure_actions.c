#include "config.h"

#include <stdio.h>

#include "tui/explorer/figure_actions.h"
#include "tui/shared/figure.h"
#include "tui/shared/figure_title.h"

/* The figure of a view; -1 for a view that has none. */
static int kind_of(ViewId v, FigureKind *k)
{
	switch (v) {
	case VIEW_HEATMAP:
		*k = FIG_HEATMAP;
		return 0;
	case VIEW_OFFSET:
		*k = FIG_OFFSET;
		return 0;
	case VIEW_HEADS:
		*k = FIG_HEADS;
		return 0;
	case VIEW_PAIRS:
		*k = FIG_PAIRS;
		return 0;
	default:
		return -1;
	}
}

int figure_action_export(const EvalResult *res, const TuiSettings *set, bool csv,
			 const char *path, char *msg, size_t msglen)
{
	FigureKind k;
	if (!res) {
		snprintf(msg, msglen, "nothing evaluated yet");
		return -1;
	}
	if (kind_of(set->view, &k)) {
		snprintf(msg, msglen, "%s: this view has no %s; try the heatmap, offset, heads or "
			 "pairs view", csv ? "export-csv" : "export-figure", csv ? "numbers" : "figure");
		return -1;
	}
	/* compare mode: "A vs B (layer N)", B's stored layer in the fold's place */
	const CompareInfo *ci = &res->cmp;
	FigureTitle ft = {res->info.source, res->info.layer_index, res->info.seq,
			  ci->on ? NULL : &res->settings.opts.fold, ci->on ? ci->against : NULL,
			  ci->equivalent, ci->relation, ci->why, res->rep.precision == PREC_F32,
			  res->rep.tol};
	char title[FIGURE_TITLE_MAX], err[1200];
	figure_title_format(&ft, title, sizeof title);
	size_t head = set->head < res->rep.n_heads ? set->head : 0;
	FigureInput in = {&res->rep, head, set->heat_linear, title};
	int rc = csv ? figure_write_csv(&in, k, path, err, sizeof err)
		     : figure_write(&in, &k, 1, path, err, sizeof err);
	if (rc)
		snprintf(msg, msglen, "%s", err);
	else
		snprintf(msg, msglen, "wrote %s", path);
	return rc;
}
