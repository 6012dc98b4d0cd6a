#include "config.h"

#include <stdio.h>

#include "core/levels.h"
#include "core/mla_inv.h"
#include "core/session.h"
#include "data/frame_job.h"
#include "tui/cli/check.h"
#include "tui/cli/check_against.h"
#include "tui/cli/info.h"
#include "tui/cli/mla_report.h"
#include "tui/cli/report_text.h"
#include "tui/cli/terminal.h"
#include "tui/shared/environment.h"
#include "tui/shared/figure.h"
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
	c.mrope = w->mrope_section[0] ? w->mrope_section : NULL;
	return c;
}

/* What compare mode refuses: a checkpoint is needed, and no fold is drawn. */
static int against_refuses(const RunOptions *o, char *err, size_t errlen)
{
	static const char *const fold_flags[] = {"--rotate", "--drop", "--kind",
						 "--permute-heads", "--r1", "--r3", NULL};
	if (!o->model_path) {
		snprintf(err, errlen, "--against: compares two checkpoints' layers; give --model A");
		return -1;
	}
	for (size_t i = 0; fold_flags[i]; i++)
		if (opts_given(o, fold_flags[i])) {
			snprintf(err, errlen, "%s: with --against nothing is folded: B's stored "
				 "layer takes the fold's place", fold_flags[i]);
			return -1;
		}
	return 0;
}

static void check_help(void)
{
	printf("usage: ropefold check [model options] [fold options] [--json] [--plot PATH]\n\n"
	       "Fold rotations into one attention layer and report whether the score,\n"
	       "single-head block and residual multi-head levels stay invariant.\n"
	       "The layer is random (shaped by the 'random layer only' flags) or,\n"
	       "with --model, layer --layer of a checkpoint, which has its own shape.\n"
	       "Any of the 'random MLA layer' flags makes the random layer DeepSeek\n"
	       "multi-head latent attention (one RoPE key shared by all heads).\n"
	       "Exit 0: every guaranteed level holds; 1: a guaranteed level breaks;\n"
	       "2: bad usage or input.\n\n");
	opts_print_help(stdout, OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_JSON | OPT_AGAINST | OPT_PLOT | OPT_FRAME);
}

int check_write_plot(const RunOptions *o, const InvReport *rep, const FigureTitle *t)
{
	char title[FIGURE_TITLE_MAX], err[1024];
	figure_title_format(t, title, sizeof title);
	FigureInput in = {rep, rep->level[LEVEL_SCORE].worst_head, false, title};
	FigureKind kinds[2] = {FIG_OFFSET, FIG_HEATMAP};
	if (figure_write(&in, kinds, 2, o->plot, err, sizeof err)) {
		fprintf(stderr, "ropefold check: --plot: %s\n", err);
		return -1;
	}
	return 0;
}

int cli_check(int argc, char **argv, bool use_default)
{
	RunOptions o;
	char err[512];
	opts_defaults(&o);
	if (opts_parse(argc, argv, OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_JSON | OPT_AGAINST | OPT_PLOT | OPT_FRAME, &o,
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
	if (o.against_path && against_refuses(&o, err, sizeof err)) {
		fprintf(stderr, "ropefold check: %s\n", err);
		return 2;
	}
	if (o.plot && figure_format_ok(o.plot)) {
		fprintf(stderr, "ropefold check: --plot: '%s' does not end in .svg, .png or .pdf\n",
			o.plot);
		return 2;
	}
	Workload w;
	if ((!use_default && opts_check_random(&o, err, sizeof err)) ||
	    env_workload(&o, use_default, &w, err, sizeof err)) {
		fprintf(stderr, "ropefold check: %s\n", err);
		return 2;
	}
	cli_model_note("check", w.note);
	if (o.against_path) {
		int rc = cli_check_against(&o, &w);
		workload_done(&w);
		return rc;
	}
	EvalOptions eo = {.seq = w.seq, .precision = o.precision, .tol = o.tol,
			  .kernel = kernel_env()};
	InvReport rep;
	workload_fold_config(&w, &o.fold);
	/* --r1, --r3: shown beside the fold, on the same layer and input */
	FrameReport fr;
	if (frame_job_run(&w, &o.fold, o.tol, &fr, err, sizeof err)) {
		fprintf(stderr, "ropefold check: %s\n", err);
		workload_done(&w);
		return 2;
	}
	RfStatus st = w.is_mla ? mla_evaluate(&w.mla, w.x, &eo, &o.fold, &rep)
			       : inv_evaluate(&w.layer, w.x, &eo, &o.fold, &rep);
	if (st != RF_OK) {
		fprintf(stderr, "ropefold check: evaluation failed: %s\n", rf_status_str(st));
		frame_report_done(&fr);
		workload_done(&w);
		return 2;
	}
	ReportContext ctx = workload_context(&w, &o);
	if (o.json) {
		json_t *doc = report_to_json(&rep, &w.layer, &o.fold, &ctx);
		if (w.is_mla)
			json_object_set_new(json_object_get(doc, "config"), "mla",
					    mla_dims_json(&w.mla.shape, mla_score_scale(&w.mla)));
		json_object_set_new(doc, "frame", report_frame_json(&fr));
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		if (w.is_mla)
			mla_dims_text(stdout, "mla     ", &w.mla.shape, mla_score_scale(&w.mla));
		report_print_text(stdout, &rep, &w.layer, &o.fold, &ctx, terminal_colors());
		report_print_frame(stdout, &fr, terminal_colors());
	}
	int rc = report_ok(&rep) && frame_report_ok(&fr) ? 0 : 1;
	FigureTitle ft = {w.source, w.layer_index, w.seq, &o.fold, NULL, false, 0, 0,
			  rep.precision == PREC_F32, rep.tol};
	if (o.plot && check_write_plot(&o, &rep, &ft))
		rc = 2;
	report_done(&rep);
	frame_report_done(&fr);
	workload_done(&w);
	return rc;
}
