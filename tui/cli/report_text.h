#ifndef ROPEFOLD_TUI_CLI_REPORT_TEXT_H
#define ROPEFOLD_TUI_CLI_REPORT_TEXT_H

#include <stdbool.h>
#include <stdio.h>

#include "core/fold.h"
#include "core/layer.h"
#include "core/report.h"
#include "tui/cli/report_json.h"

/* The human table of one evaluation; color only when asked. */
void report_print_text(FILE *f, const InvReport *rep, const Layer *l,
		       const FoldConfig *cfg, const ReportContext *ctx,
		       bool color);

#endif
