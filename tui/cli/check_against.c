#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "core/rope.h"
#include "data/compare_job.h"
#include "tui/cli/check.h"
#include "tui/cli/check_against.h"
#include "tui/cli/mla_report.h"
#include "tui/cli/terminal.h"
#include "tui/cli/verify.h"
#include "tui/shared/findings_text.h"
#include "tui/shared/kernel_env.h"

#define C_RESET "\033[0m"
#define C_GREEN "\033[32m"
#define C_RED "\033[31m"

static const char *num_str(double v, char *buf, size_t n)
{
	if (isfinite(v))
		snprintf(buf, n, "%.3g", v);
	else
		snprintf(buf, n, "overflow");
	return buf;
}

static void worst_str(const LevelResult *L, LevelId id, char *buf, size_t n)
{
	if (id == LEVEL_SCORE)
		snprintf(buf, n, "head %zu, (m,n)=(%zu,%zu)", L->worst_head, L->worst_m,
			 L->worst_n);
	else if (id == LEVEL_HEAD)
		snprintf(buf, n, "head %zu, token %zu, coord %zu", L->worst_head, L->worst_m,
			 L->worst_coord);
	else
		snprintf(buf, n, "token %zu, coord %zu", L->worst_m, L->worst_coord);
}

static void print_text(const RunOptions *o, const Workload *w, const CompareOutcome *out,
		       bool color)
{
	const Comparison *c = &out->cmp;
	const VerifyVerdict *v = &c->verdict;
	const Layer *l = &w->layer;
	printf("layer   %s #%zu  D=%zu H=%zu G=%zu d=%zu  T=%zu  seed %llu  input %s\n",
	       w->source, w->layer_index, l->shape.d_model, l->shape.n_heads,
	       l->shape.n_kv_heads, l->shape.head_dim, w->seq, (unsigned long long)o->seed,
	       o->input == INPUT_EMBED ? "embed" : "random");
	if (w->is_mla)
		mla_dims_text(stdout, "mla     ", &w->mla.shape, mla_score_scale(&w->mla));
	printf("against %s #%zu  (stored %s; A stored %s)\n", o->against_path, w->layer_index,
	       dtype_name(out->dtype_b), dtype_name(out->dtype_a));
	char desc[FINDINGS_RELATION_MAX], tw[FINDINGS_TOLERANCE_MAX];
	findings_verify_tolerance(v, tw, sizeof tw);
	if (v->equivalent) {
		findings_verify_relation(v, desc, sizeof desc);
		printf("relation %s (max relative error %.3g, %s)\n", desc, v->max_err, tw);
	} else {
		char why[FINDINGS_WHY_MAX];
		findings_verify_why(v, why, sizeof why);
		printf("relation NOT equivalent (%s at the %s level)\n  %s\n",
		       verify_why_name(v->why), level_name(v->brk.level), why);
	}
	if (out->residual_frame)
		printf("frame   B is A under a residual rotation R1 (norms fused): the layers are "
		       "compared in A's frame, as verify compares them\n");
	/* verify's classes, at verify's tolerance (data/layer_tolerance.h) */
	printf("judged  %s", verify_within_name(verify_verdict_within(v)));
	if (!v->equivalent && v->why != VERIFY_WHY_SHAPE)
		printf(" (%s)", tw);
	printf("\n");
	if (!c->have_report)
		return;
	const InvReport *rep = &c->rep;
	printf("eval    %s, tolerance %.3g (relative)\n\n",
	       rep->precision == PREC_F32 ? "float32" : "float64", v->confirm_tol);
	printf("%-9s %-8s %-10s %-10s %-10s %s\n", "level", "verdict", "abs err", "rel err",
	       "eps units", "worst at");
	for (int i = 0; i < LEVEL_COUNT; i++) {
		const LevelResult *L = &rep->level[i];
		char worst[64], a[16], r[16], e[16];
		worst_str(L, (LevelId)i, worst, sizeof worst);
		bool ovf = L->overflow;
		printf("%-9s %s%-8s%s %-10s %-10s %-10s %s\n", level_name((LevelId)i),
		       color ? (L->holds ? C_GREEN : C_RED) : "",
		       ovf ? "overflow" : L->holds ? "holds" : "breaks", color ? C_RESET : "",
		       ovf ? "-" : num_str(L->max_abs_err, a, sizeof a),
		       ovf ? "-" : num_str(L->max_rel_err, r, sizeof r),
		       ovf ? "-" : num_str(L->eps_units, e, sizeof e), worst);
	}
	printf("\nscore error by offset m-n:");
	size_t shown = 0, last = 0;
	for (size_t k = 0; k < rep->seq && shown < 8; k = k ? k * 2 : 1, shown++) {
		printf("  %zu:%.2g", k, rep->by_offset[k]);
		last = k;
	}
	if (rep->seq > 1 && last != rep->seq - 1)
		printf("  %zu:%.2g", rep->seq - 1, rep->by_offset[rep->seq - 1]);
	printf("\n");
}

/* Whether the levels say B computes A's block. */
static bool levels_hold(const Comparison *c)
{
	if (!c->have_report)
		return false;
	for (int i = 0; i < LEVEL_COUNT; i++)
		if (c->rep.level[i].guaranteed && !c->rep.level[i].holds)
			return false;
	return true;
}

int cli_check_against(const RunOptions *o, const Workload *w)
{
	char err[768];
	const char *a = w->default_model ? NULL : o->model_path;
	if (!a) {
		fprintf(stderr, "ropefold check: --against: compares two checkpoints' layers; "
				"give --model A\n");
		return 2;
	}
	CompareJob j = {a, o->against_path, w->layer_index, w->x, w->seq, o->precision, o->tol,
			kernel_env(), NULL};
	/* the workload's layer is A's as stored unless a --rope override
	 * changed it: not read twice then */
	if (!w->is_mla && !o->layout_set && !o->rotary_set && !o->theta_set && !o->scaling_set)
		j.layer_a = &w->layer;
	CompareOutcome out;
	if (compare_job_run(&j, &out, err, sizeof err)) {
		fprintf(stderr, "ropefold check: %s\n", err);
		return 2;
	}
	const Comparison *c = &out.cmp;
	int rc = c->verdict.equivalent && levels_hold(c) ? 0 : 1;
	if (o->json) {
		json_t *doc;
		if (c->have_report) {
			ReportContext ctx = workload_context(w, o);
			FoldConfig cfg = fold_config_default();
			cfg.permute_heads = c->verdict.heads_permuted;
			doc = report_to_json(&c->rep, &w->layer, &cfg, &ctx);
			/* nothing was folded: B's stored layer took the fold's place */
			json_object_set_new(doc, "fold", json_null());
			if (w->is_mla)
				json_object_set_new(json_object_get(doc, "config"), "mla",
						    mla_dims_json(&w->mla.shape,
								  mla_score_scale(&w->mla)));
		} else {
			doc = json_object();
		}
		json_t *rel = verify_layer_json(w->layer_index, &c->verdict,
						c->have_report ? &c->rep : NULL);
		json_object_set_new(rel, "against", json_string(o->against_path));
		json_object_set_new(rel, "dtype_a", json_string(dtype_name(out.dtype_a)));
		json_object_set_new(rel, "dtype_b", json_string(dtype_name(out.dtype_b)));
		json_object_set_new(rel, "residual_frame", json_boolean(out.residual_frame));
		json_object_set_new(doc, "relation", rel);
		char words[FINDINGS_WHY_MAX];
		if (c->verdict.equivalent)
			findings_verify_relation(&c->verdict, words, sizeof words);
		else
			findings_verify_why(&c->verdict, words, sizeof words);
		json_object_set_new(doc, "explanation", json_string(words));
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		print_text(o, w, &out, terminal_colors());
	}
	if (o->plot && !c->have_report) {
		/* the shapes or RoPE settings differ: no level was evaluated */
		fprintf(stderr, "ropefold check: --plot: %s and %s differ in shape: nothing was "
			"evaluated to draw\n", a, o->against_path);
		rc = 2;
	} else if (o->plot) {
		FigureTitle ft = {w->source, w->layer_index, w->seq, NULL, o->against_path,
				  c->verdict.equivalent, c->verdict.relation, c->verdict.why,
				  c->rep.precision == PREC_F32, c->rep.tol};
		if (check_write_plot(o, &c->rep, &ft))
			rc = 2;
	}
	compare_outcome_done(&out);
	return rc;
}
