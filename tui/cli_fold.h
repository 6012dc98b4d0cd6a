#ifndef ROPEFOLD_TUI_CLI_FOLD_H
#define ROPEFOLD_TUI_CLI_FOLD_H

#include <stdbool.h>
#include <stddef.h>

#include "tui/options.h"

/* `ropefold fold --model IN --out OUT [fold options] [--layers ...]
 * [--dtype keep|f32|f64] [--undo SIDECAR] [--force] [--json]`: write a folded
 * checkpoint and its sidecar. Returns the exit status (0, or 2 on bad
 * usage or input). */
int cli_fold(int argc, char **argv);

/* What a fold wrote. */
typedef struct {
	size_t layers;             /* layers rewritten */
	double max_rel_rounding;   /* worst relative rounding of a stored tensor */
	char sidecar[4200];        /* the sidecar's path */
} FoldOutcome;

/* How cli_fold_write runs. */
typedef struct {
	bool progress;     /* on stderr when it is a terminal */
	bool seed_as_is;   /* draw every layer from o->fold.seed itself (the
			    * explorer's rotations), not a per-layer seed */
	const char *replace_hint;  /* how the caller asks to replace an existing
				    * output, for the message that refuses
				    * one ("':export! PATH' replaces it") */
} FoldWriteOptions;

/* Write the folded checkpoint o describes (model_path, out, fold, seed,
 * layers, dtype, undo, force) without printing. wo may be NULL. Returns
 * 0, or -1 with one line in err. */
int cli_fold_write(const RunOptions *o, const FoldWriteOptions *wo, FoldOutcome *res,
		   char *err, size_t errlen);

#endif
