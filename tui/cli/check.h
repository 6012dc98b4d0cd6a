#ifndef ROPEFOLD_TUI_CLI_CHECK_H
#define ROPEFOLD_TUI_CLI_CHECK_H

#include "data/workload.h"
#include "tui/cli/report_json.h"
#include "tui/shared/figure_title.h"
#include "tui/shared/options.h"

/* The report context of a workload. */
ReportContext workload_context(const Workload *w, const RunOptions *o);

/* --plot: the offset curve and the heatmap of the head where rep's score
 * error is worst, side by side, under t's title, into o->plot. 0, or -1
 * with one line on stderr. */
int check_write_plot(const RunOptions *o, const InvReport *rep, const FigureTitle *t);

/* `ropefold check`: returns the exit status (0, 1 or 2). */
int cli_check(int argc, char **argv, bool use_default);

#endif
