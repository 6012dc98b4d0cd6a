#ifndef ROPEFOLD_TUI_CLI_REPORT_TEXT_H
#define ROPEFOLD_TUI_CLI_REPORT_TEXT_H

#include <stdbool.h>
#include <stdio.h>

#include "core/fold.h"
#include "core/frame.h"
#include "core/layer.h"
#include "core/report.h"
#include "tui/cli/report_json.h"

/* The human table of one evaluation; color only when asked. */
void report_print_text(FILE *f, const InvReport *rep, const Layer *l,
		       const FoldConfig *cfg, const ReportContext *ctx,
		       bool color);

/* R1 and R3 (check --r1, --r3): one line each and their explanation,
 * after the table; nothing when both are none. */
void report_print_frame(FILE *f, const FrameReport *rep, bool color);

#endif
