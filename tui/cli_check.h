#ifndef ROPEFOLD_TUI_CLI_CHECK_H
#define ROPEFOLD_TUI_CLI_CHECK_H

#include "core/layer.h"
#include "tui/options.h"
#include "tui/report_json.h"

/* The layer and input an evaluation runs on, from the options. */
typedef struct {
	Layer layer;
	double *x;            /* seq x D */
	size_t seq;
	char source[512];     /* "random", "default" or the path */
	size_t layer_index;
	bool default_model;
	char note[1024];      /* the checkpoint's ModelInfo.note, "" when none */
	/* --rope on a checkpoint: its runtime's layout stays the layer's, and
	 * the fold is built for this one (a wrong one shows as a break) */
	bool fold_layout_set;
	RopeLayout fold_layout;
} Workload;

/* Build the workload the options describe: a random layer, the built-in
 * default (use_default), or a checkpoint's layer. On failure returns 2
 * with one line in err naming the flag or file at fault. */
int workload_build(const RunOptions *o, bool use_default, Workload *w,
		   char *err, size_t errlen);
/* Release a workload. */
void workload_done(Workload *w);
/* Point cfg at the layout a --rope override on a checkpoint asked for. */
void workload_fold_config(const Workload *w, FoldConfig *cfg);
/* The report context of a workload. */
ReportContext workload_context(const Workload *w, const RunOptions *o);

/* `ropefold check`: returns the exit status (0, 1 or 2). */
int cli_check(int argc, char **argv, bool use_default);

#endif
