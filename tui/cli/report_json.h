#ifndef ROPEFOLD_TUI_CLI_REPORT_JSON_H
#define ROPEFOLD_TUI_CLI_REPORT_JSON_H

#include <jansson.h>

#include "core/fold.h"
#include "core/frame.h"
#include "core/layer.h"
#include "core/report.h"

/* Describes where a layer came from, for the "config" object. */
typedef struct {
	const char *source;     /* "random", "default" or a path */
	size_t layer_index;
	size_t seq;
	uint64_t seed;
	const char *input;      /* "random" or "embed" */
	const size_t *mrope;    /* M-RoPE pairs per (t, h, w) section (3), or
				 * NULL: plain RoPE */
} ReportContext;

/* The JSON document of SPEC 2.5 for one evaluation (new reference). */
json_t *report_to_json(const InvReport *rep, const Layer *l,
		       const FoldConfig *cfg, const ReportContext *ctx);

/* The "frame" object of check --json: R1 and R3 (null when none), their
 * tolerance and explanation. */
json_t *report_frame_json(const FrameReport *rep);

#endif
