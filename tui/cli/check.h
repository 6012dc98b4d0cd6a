#ifndef ROPEFOLD_TUI_CLI_CHECK_H
#define ROPEFOLD_TUI_CLI_CHECK_H

#include "data/workload.h"
#include "tui/cli/report_json.h"
#include "tui/shared/options.h"

/* The report context of a workload. */
ReportContext workload_context(const Workload *w, const RunOptions *o);

/* `ropefold check`: returns the exit status (0, 1 or 2). */
int cli_check(int argc, char **argv, bool use_default);

#endif
