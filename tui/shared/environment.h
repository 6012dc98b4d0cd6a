#ifndef ROPEFOLD_TUI_SHARED_ENVIRONMENT_H
#define ROPEFOLD_TUI_SHARED_ENVIRONMENT_H

#include <stdbool.h>
#include <stddef.h>

#include "data/workload.h"
#include "tui/shared/options.h"

/* What the front ends take from the environment and pass down (data/ and
 * core/ read none of it). The explorer's own terminal variables (TERM,
 * NO_COLOR, XDG_STATE_HOME, HOME) are read where the screen is drawn, the
 * test hooks in tui/shared/testhook.c. */

/* The built-in default model's folder, looked up from $ROPEFOLD_DATADIR
 * on (data/default_model.h). 0, or -1 with one line in err. */
int env_default_model_path(char *buf, size_t len, char *err, size_t errlen);

/* Build the workload of the evaluation flags (the built-in default model
 * when use_default and no --model), stopping at ROPEFOLD_TEST_STOP=open
 * once its checkpoint is open. 0, or -1 with one line in err. */
int env_workload(const RunOptions *o, bool use_default, Workload *w, char *err,
		 size_t errlen);

#endif
