#include "config.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/levels.h"
#include "core/rope.h"
#include "core/timer.h"
#include "core/verify.h"
#include "data/model.h"
#include "data/model_weights.h"
#include "data/verify_job.h"
#include "tui/cli/info.h"
#include "tui/cli/verify.h"
#include "tui/cli/verify_residual.h"
#include "tui/shared/findings_text.h"
#include "tui/shared/kernel_env.h"
#include "tui/shared/options.h"
#include "tui/shared/testhook.h"

static void verify_help(void)
{
	printf("usage: ropefold verify A B [--layers all|N|N..M] [--json] [--tol X]\n"
	       "                      [--logits [--tokens IDS | --seq N --seed S]]\n\n"
	       "Decide, layer by layer, whether checkpoint B computes the same residual\n"
	       "attention block as checkpoint A: per kv group, recover the Q/K rotation\n"
	       "from W_k and the V/O rotation from W_v (orthogonal Procrustes), check that\n"
	       "the Q/K one commutes with RoPE and explains W_q and the biases, that W_o\n"
	       "absorbs the V one, allow kv groups to be permuted and B to be in the other\n"
	       "RoPE layout (a format conversion), all up to the stored dtype's rounding;\n"
	       "then confirm with the three-level evaluation. When B is not a fold, name\n"
	       "the first layer, head, level and reason.\n"
	       "The confirming evaluation judges its levels at the compute precision's\n"
	       "tolerance, or, for a dtype coarser than float64, at four times the error\n"
	       "that dtype's rounding alone causes (A against A with every weight moved\n"
	       "by up to its unit roundoff); both tolerances are printed.\n"
	       "Exit 0 when B is equivalent in every chosen layer, 1 when not, 2 on bad\n"
	       "input.\n\n"
	       "  --layers all|N|N..M      layers to verify (default all)\n"
	       "  --layer N                the same as --layers N\n"
	       "  --tol X                  relative tolerance of the weight checks (default\n"
	       "                           3 units of roundoff of the coarser stored dtype:\n"
	       "                           1.2e-2 bf16, 1.5e-3 f16, 1.8e-7 f32, 3.3e-16 f64;\n"
	       "                           a block-quantized tensor adds the bound its\n"
	       "                           format and stored scales put on its error, a\n"
	       "                           fold of one the bound its sidecar records)\n"
	       "  --precision f64|f32      compute precision of the confirming evaluation\n"
	       "                           (default f64)\n"
	       "  --logits                 then run both whole models and compare their\n"
	       "                           logits (the model level): max relative logit\n"
	       "                           error, max KL(A||B), top-1 agreement, the first\n"
	       "                           position whose greedy tokens differ; judged at\n"
	       "                           4x (KL 16x) what moving A's weights by the\n"
	       "                           coarsest stored dtype's roundoff does; B is\n"
	       "                           equivalent only if this level holds too\n"
	       "  --tokens LIST            the token ids of the model level (with --logits)\n"
	       "  --seq N                  or N seeded random ids (default 32)\n"
	       "  --json                   one JSON document on stdout\n"
	       "  --help                   this help\n");
}

/* Progress on a terminal: layer i of n, rate, time left. */
static void progress(bool tty, size_t done, size_t total, double t0)
{
	if (!tty)
		return;
	double el = timer_now() - t0;
	double rate = el > 0 ? (double)done / el : 0;
	double left = rate > 0 ? (double)(total - done) / rate : 0;
	fprintf(stderr, "\rverify: layer %zu of %zu, %.1f layers/s, %.0fs left   ",
		done, total, rate, left);
	if (done == total)
		fputs("\r\033[K", stderr);
	fflush(stderr);
}

static json_t *levels_json(const InvReport *rep)
{
	json_t *o = json_object();
	for (int i = 0; i < LEVEL_COUNT; i++) {
		const LevelResult *L = &rep->level[i];
		json_object_set_new(o, level_name((LevelId)i),
				    json_pack("{s:b, s:b, s:b, s:f, s:f}", "expected", L->guaranteed,
					      "holds", L->holds, "overflow", L->overflow != 0,
					      "max_abs_err",
					      isfinite(L->max_abs_err) ? L->max_abs_err : -1.0,
					      "max_rel_err",
					      isfinite(L->max_rel_err) ? L->max_rel_err : -1.0));
	}
	return o;
}

static json_t *break_json(const VerifyVerdict *v, size_t layer)
{
	if (v->equivalent)
		return json_null();
	const Finding *f = &v->brk;
	char why[FINDINGS_WHY_MAX];
	findings_verify_why(v, why, sizeof why);
	json_t *b = json_pack("{s:I, s:s, s:s, s:s, s:s}", "layer", (json_int_t)layer,
			      "why", verify_why_name(v->why), "level", level_name(f->level),
			      "tensor", f->tensor, "explanation", why);
	json_object_set_new(b, "group", f->group == FINDING_NONE ? json_null()
								 : json_integer((json_int_t)f->group));
	json_object_set_new(b, "head", f->head == FINDING_NONE ? json_null()
							       : json_integer((json_int_t)f->head));
	if (v->why == VERIFY_WHY_MIXES_PAIRS) {
		json_t *pairs = json_array();
		for (size_t k = 0; k < v->comm.n_mixed; k++)
			json_array_append_new(pairs, json_pack("[I, I]",
							       (json_int_t)v->comm.mixed[k][0],
							       (json_int_t)v->comm.mixed[k][1]));
		json_object_set_new(b, "mixed_pairs", pairs);
	}
	return b;
}

json_t *verify_layer_json(size_t i, const VerifyVerdict *v, const InvReport *rep)
{
	json_t *perm = json_array(), *rot = json_array();
	for (size_t g = 0; v->plan.perm && g < v->plan.n_kv_heads; g++) {
		json_array_append_new(perm, json_integer((json_int_t)v->plan.perm[g]));
		json_t *angles = json_array();
		if (v->commuting[g])
			for (size_t p = 0; p < v->npairs; p++)
				json_array_append_new(angles,
						      json_real(v->angles[g * v->npairs + p]));
		json_array_append_new(rot, json_pack("{s:I, s:b, s:o}", "group",
						     (json_int_t)g, "commuting",
						     v->commuting[g], "angles", angles));
	}
	char desc[FINDINGS_RELATION_MAX];
	findings_verify_relation(v, desc, sizeof desc);
	json_t *o = json_pack("{s:I, s:b, s:s, s:s, s:b, s:b, s:b, s:f, s:f}", "layer",
			      (json_int_t)i, "equivalent", v->equivalent, "relation",
			      verify_relation_name(v->relation), "description",
			      desc, "rotated", v->rotated, "heads_permuted",
			      v->heads_permuted, "layout_converted", v->layout_converted,
			      "max_rel_err", isfinite(v->max_err) ? v->max_err : -1.0, "tol",
			      v->tol);
	/* each part's tolerance: the quantization bound of its stored blocks
	 * (A's and B's) on top of tol */
	json_t *pt = json_object(), *qt = json_array();
	static const char *part[VERIFY_PARTS] = {"q", "k", "v", "o"};
	for (int k = 0; k < VERIFY_PARTS; k++)
		json_object_set_new(pt, part[k], json_real(v->part_tol[k]));
	for (int t = 0; t < STORE_COUNT; t++)
		if (v->quant_types & (1u << t))
			json_array_append_new(qt, json_string(dtype_name((StoreDtype)t)));
	json_object_set_new(o, "part_tol", pt);
	json_object_set_new(o, "within", json_string(verify_within_name(verify_verdict_within(v))));
	json_object_set_new(o, "quantization", qt);
	json_object_set_new(o, "heads_permutation", perm);
	json_object_set_new(o, "rotations", rot);
	json_object_set_new(o, "levels", rep ? levels_json(rep) : json_null());
	json_object_set_new(o, "levels_tol", rep ? json_real(v->confirm_tol) : json_null());
	json_object_set_new(o, "break", break_json(v, i));
	return o;
}

static void layer_text(size_t i, const VerifyVerdict *v, const InvReport *rep)
{
	if (v->equivalent) {
		char desc[FINDINGS_RELATION_MAX];
		findings_verify_relation(v, desc, sizeof desc);
		char tw[FINDINGS_TOLERANCE_MAX];
		findings_verify_tolerance(v, tw, sizeof tw);
		printf("layer %zu: %s (max relative error %.3g, %s)", i, desc, v->max_err, tw);
	} else {
		const Finding *f = &v->brk;
		char why[FINDINGS_WHY_MAX];
		findings_verify_why(v, why, sizeof why);
		printf("layer %zu: NOT equivalent at the %s level", i, level_name(f->level));
		if (f->group != FINDING_NONE)
			printf(", kv group %zu", f->group);
		if (f->head != FINDING_NONE)
			printf(", query head %zu", f->head);
		if (f->tensor[0])
			printf(", %s", f->tensor);
		printf("\n  %s", why);
	}
	if (rep) {
		printf("\n  levels (tolerance %.2g):", v->confirm_tol);
		bool ovf = false;
		for (int l = 0; l < LEVEL_COUNT; l++) {
			const LevelResult *L = &rep->level[l];
			ovf |= L->overflow != 0;
			if (L->overflow)
				printf(" %s overflows%s", level_name((LevelId)l),
				       l + 1 < LEVEL_COUNT ? "," : "");
			else
				printf(" %s %s (%.2g)%s", level_name((LevelId)l),
				       L->holds ? "holds" : "breaks", L->max_rel_err,
				       l + 1 < LEVEL_COUNT ? "," : "");
		}
		if (v->equivalent && !report_ok(rep) && ovf)
			printf("\n  warning: the weights say equivalent, but the evaluation "
			       "overflows %s and cannot confirm it%s",
			       rep->precision == PREC_F32 ? "float32" : "float64",
			       rep->precision == PREC_F32 ? " (use --precision f64)" : "");
		else if (v->equivalent && !report_ok(rep))
			printf("\n  warning: the weights say equivalent but the evaluation "
			       "breaks: a bug in the inputs or the tool");
	}
	printf("\n");
}

/* What the run prints as it goes. */
typedef struct {
	const RunOptions *o;
	json_t *layers, *first;   /* --json: the layers, the first break */
	bool tty;
	double t0;
} Printer;

static void on_opened(void *ctx, const ModelInfo *a, const ModelInfo *b)
{
	(void)ctx;
	cli_model_note("verify", a->note);
	cli_model_note("verify", b->note);
	testhook_stop("open");
}

static int on_layer(void *ctx, const VerifyLayerResult *r)
{
	Printer *p = ctx;
	const VerifyVerdict *v = r->verdict;
	if (!v->equivalent && p->layers && !p->first)
		p->first = break_json(v, r->layer);
	if (p->tty)
		fputs("\r\033[K", stderr);
	if (p->layers)
		json_array_append_new(p->layers, verify_layer_json(r->layer, v, r->report));
	else
		layer_text(r->layer, v, r->report);
	fflush(stdout);
	progress(p->tty, r->done, r->total, p->t0);
	return 0;
}

/* Two valid checkpoints of different layer counts, none chosen: one not a
 * fold of the other. */
static void print_layer_counts(const RunOptions *o, const VerifyOutcome *res)
{
	char why[256];
	snprintf(why, sizeof why, "%s has %zu layers, %s has %zu", o->positional[0],
		 res->layers_a, o->positional[1], res->layers_b);
	if (o->json) {
		json_t *doc = json_pack("{s:s, s:s, s:b, s:{s:n, s:s, s:s}, s:[]}", "a",
					o->positional[0], "b", o->positional[1], "equivalent", 0,
					"first_break", "layer", "why", "layers", "explanation", why,
					"layers");
		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		printf("%s (--layers picks layers both have)\nB is NOT equivalent to A\n", why);
	}
}

/* The model level: both whole models run on the same tokens. */
static int model_level(const RunOptions *o, ModelLevel *ml, char *err, size_t errlen)
{
	size_t T = o->seq, *ids = NULL;
	if (o->tokens) {
		if (!(ids = malloc(T * sizeof *ids))) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		const char *p = o->tokens;
		for (size_t t = 0; t < T; t++) {
			ids[t] = (size_t)strtoull(p, NULL, 10);
			p += strcspn(p, ",");
			p += *p == ',';
		}
	}
	FwdPrecision prec = o->precision == PREC_F32 ? FWD_F32 : FWD_F64;
	int rc = model_level_run(o->positional[0], o->positional[1], ids, T, o->seed, prec, ml, err,
				 errlen);
	free(ids);
	return rc;
}

static json_t *model_level_json(const ModelLevel *ml)
{
	const LogitsCompare *c = &ml->ab;
	return json_pack("{s:I, s:I, s:f, s:f, s:f, s:o, s:f, s:f, s:f, s:f, s:f, s:b}", "tokens",
			 (json_int_t)ml->T, "vocab", (json_int_t)ml->V, "max_rel_logit_err",
			 c->max_rel_logit_err, "max_kl", c->max_kl, "top1_agreement",
			 c->top1_agreement, "first_disagreement",
			 c->first_disagreement == (size_t)-1
				 ? json_null() : json_integer((json_int_t)c->first_disagreement),
			 "unit_roundoff", ml->unit_roundoff, "rounding_rel_logit_err",
			 ml->floor.max_rel_logit_err, "rounding_kl", ml->floor.max_kl, "tol_rel",
			 ml->tol_rel, "tol_kl", ml->tol_kl, "holds", ml->holds);
}

static void model_level_text(const ModelLevel *ml)
{
	const LogitsCompare *c = &ml->ab;
	printf("model level (%zu tokens): max relative logit error %.3g (tolerance %.3g), max KL "
	       "%.3g (tolerance %.3g), top-1 agreement %.1f%%, ", ml->T, c->max_rel_logit_err,
	       ml->tol_rel, c->max_kl, ml->tol_kl, 100 * c->top1_agreement);
	if (c->first_disagreement == (size_t)-1)
		printf("greedy tokens agree everywhere: %s\n", ml->holds ? "holds" : "breaks");
	else
		printf("greedy tokens first differ at position %zu: %s\n", c->first_disagreement,
		       ml->holds ? "holds" : "breaks");
}

int cli_verify(int argc, char **argv)
{
	RunOptions o;
	char err[768];
	opts_defaults(&o);
	if (opts_parse(argc, argv, OPT_JSON | OPT_EVAL | OPT_FOLDIO | OPT_RUN_INPUT | OPT_VERIFY_LOGITS,
		       &o, err, sizeof err)) {
		fprintf(stderr, "ropefold verify: %s\n", err);
		return 2;
	}
	if (o.help) {
		verify_help();
		return 0;
	}
	if (o.out || o.dtype || o.undo || o.force) {
		fprintf(stderr, "ropefold verify: --out, --dtype, --undo and --force belong to fold\n");
		return 2;
	}
	if (o.n_positional != 2) {
		fprintf(stderr, "ropefold verify: give two checkpoints A and B\n");
		return 2;
	}
	const char *input = opts_given(&o, "--tokens") ? "--tokens" : opts_given(&o, "--seq") ? "--seq" : NULL;
	if (input && !o.logits) {
		fprintf(stderr, "ropefold verify: %s: the tokens of the model level; give --logits too\n",
			input);
		return 2;
	}
	RunOptions dflt;
	opts_defaults(&dflt);
	o.seq = input ? o.seq : dflt.seq;   /* the model level's T; the layers' confirming
					     * evaluation keeps its own */
	Printer p = {&o, o.json ? json_array() : NULL, NULL, isatty(2), timer_now()};
	VerifyJob j = {o.positional[0], o.positional[1], o.layers, o.layers_flag, o.tol, true,
		       o.precision, dflt.seq, o.seed, &p, on_opened, on_layer,
		       kernel_env()};
	VerifyOutcome res;
	int rc = 0;
	if (verify_job_run(&j, &res, err, sizeof err)) {
		fprintf(stderr, "ropefold verify: %s\n", err);
		rc = 2;
	} else if (res.layer_counts_differ) {
		print_layer_counts(&o, &res);
		rc = 1;
	} else {
		ModelLevel ml;
		if (o.logits && model_level(&o, &ml, err, sizeof err)) {
			fprintf(stderr, "ropefold verify: %s\n", err);
			json_decref(p.layers);
			json_decref(p.first);
			return 2;
		}
		if (o.logits)
			res.equivalent = res.equivalent && ml.holds;
		rc = res.equivalent ? 0 : 1;
		if (o.logits && !p.layers)
			model_level_text(&ml);
		if (p.layers) {
			json_t *doc = json_object();
			json_object_set_new(doc, "a", json_string(o.positional[0]));
			json_object_set_new(doc, "b", json_string(o.positional[1]));
			json_object_set_new(doc, "equivalent", json_boolean(res.equivalent));
			json_object_set_new(doc, "first_break", p.first ? p.first : json_null());
			json_object_set_new(doc, "layers", p.layers);
			json_object_set_new(doc, "model_level", o.logits ? model_level_json(&ml) : json_null());
			json_object_set_new(doc, "residual", verify_residual_json(&res.residual));
			p.layers = p.first = NULL;
			json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
			fputc('\n', stdout);
			json_decref(doc);
		} else {
			verify_residual_text(&res.residual);
			printf("%s\n", res.equivalent ? "B is equivalent to A in every chosen layer"
						      : "B is NOT equivalent to A");
		}
	}
	json_decref(p.layers);
	json_decref(p.first);
	return rc;
}
