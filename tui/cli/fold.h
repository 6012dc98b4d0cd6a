#ifndef ROPEFOLD_TUI_CLI_FOLD_H
#define ROPEFOLD_TUI_CLI_FOLD_H

/* `ropefold fold --model IN --out OUT [fold options] [--layers ...]
 * [--dtype keep|f32|f64] [--undo SIDECAR] [--force] [--json]`: write a folded
 * checkpoint and its sidecar (data/fold_job.h), and say what was written.
 * Returns the exit status (0, or 2 on bad usage or input). */
int cli_fold(int argc, char **argv);

#endif
