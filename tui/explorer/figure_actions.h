#ifndef ROPEFOLD_TUI_EXPLORER_FIGURE_ACTIONS_H
#define ROPEFOLD_TUI_EXPLORER_FIGURE_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "tui/explorer/worker.h"

/* :export-figure PATH and :export-csv PATH: the view shown (res as
 * drawn, for set's view and head) as a figure (tui/shared/figure.h) or
 * its numbers. 0, or -1; msg holds one line either way. */
int figure_action_export(const EvalResult *res, const TuiSettings *set, bool csv,
			 const char *path, char *msg, size_t msglen);

#endif
