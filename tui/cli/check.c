#include "config.h"

#include <stdio.h>

#include "core/levels.h"
#include "core/mla_inv.h"
#include "core/session.h"
#include "tui/cli/check.h"
#include "tui/cli/info.h"
#include "tui/cli/mla_report.h"
#include "tui/cli/report_text.h"
#include "tui/cli/terminal.h"
#include "tui/shared/environment.h"
#include "tui/shared/kernel_env.h"
#include "tui/shared/testhook.h"

ReportContext workload_context(const Workload *w, const RunOptions *o)
{
	ReportContext c;
	c.source = w->source;
	c.layer_index = w->layer_index;
	c.seq = w->seq;
	c.seed = o->seed;
	c.input = o->input == INPUT_EMBED ? "embed" : "random";
	return c;
}

static void check_help(void)
{
	printf("usage: ropefold check [model options] [fold options] [--json]\n\n"
	       "Fold rotations into one attention layer and report whether the score,\n"
	       "single-head block and residual multi-head levels stay invariant.\n"
	       "The layer is random (shaped by the 'random layer only' flags) or,\n"
	       "with --model, layer --layer of a checkpoint, which has its own shape.\n"
	       "Any of the 'random MLA layer' flags makes the random layer DeepSeek\n"
	       "multi-head latent attention (one RoPE key shared by all heads).\n"
	       "Exit 0: every guaranteed level holds; 1: a guaranteed level breaks;\n"
	       "2: bad usage or input.\n\n");
	opts_print_help(stdout, OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_JSON);
}

int cli_check(int argc, char **argv, bool use_default)
{
	RunOptions o;
	char err[512];
	opts_defaults(&o);
	if (opts_parse(argc, argv, OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_JSON, &o,
		       err, sizeof err)) {
		fprintf(stderr, "ropefold check: %s\n", err);
		return 2;
	}
	if (o.help) {
		check_help();
		return 0;
	}
	if (o.n_positional) {
		fprintf(stderr, "ropefold check: %s: unexpected argument\n", o.positional[0]);
		return 2;
	}
	Workload w;
	if ((!use_default && opts_check_random(&o, err, sizeof err)) ||
	    env_workload(&o, use_default, &w, err, sizeof err)) {
		fprintf(stderr, "ropefold check: %s\n", err);
		return 2;
	}
	cli_model_note("check", w.note);
	EvalOptions eo = {.seq = w.seq, .precision = o.precision, .tol = o.tol,
			  .kernel = kernel_env()};
	InvReport rep;
	workload_fold_config(&w, &o.fold);
	if (w.is_mla && o.precision != PREC_F64) {
		fprintf(stderr, "ropefold check: --precision: an MLA layer is evaluated in float64 "
			"only\n");
		workload_done(&w);
		return 2;
	}
	RfStatus st = w.is_mla ? mla_evaluate(&w.mla, w.x, &eo, &o.fold, &rep)
			       : inv_evaluate(&w.layer, w.x, &eo, &o.fold, &rep);
	if (st != RF_OK) {
		fprintf(stderr, "ropefold check: evaluation failed: %s\n", rf_status_str(st));
		workload_done(&w);
		return 2;
	}
	ReportContext ctx = workload_context(&w, &o);
	if (o.json) {
		json_t *doc = report_to_json(&rep, &w.layer, &o.fold, &ctx);
		if (w.is_mla)
			json_object_set_new(json_object_get(doc, "config"), "mla",
					    mla_dims_json(&w.mla.shape, mla_score_scale(&w.mla)));
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		if (w.is_mla)
			mla_dims_text(stdout, "mla     ", &w.mla.shape, mla_score_scale(&w.mla));
		report_print_text(stdout, &rep, &w.layer, &o.fold, &ctx, terminal_colors());
	}
	int rc = report_ok(&rep) ? 0 : 1;
	report_done(&rep);
	workload_done(&w);
	return rc;
}
