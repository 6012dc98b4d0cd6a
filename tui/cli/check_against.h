#ifndef ROPEFOLD_TUI_CLI_CHECK_AGAINST_H
#define ROPEFOLD_TUI_CLI_CHECK_AGAINST_H

#include "data/workload.h"
#include "tui/shared/options.h"

/* `ropefold check --model A --against B [--json]`: A's layer evaluated
 * against B's stored layer (compare mode, data/compare_job.h) on the
 * workload's input, printed as check prints a fold, plus the relation
 * verify recovered. Returns the exit status: 0 when B computes the same
 * block (every level holds), 1 when not, 2 on bad input. */
int cli_check_against(const RunOptions *o, const Workload *w);

#endif
