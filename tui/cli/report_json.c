#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "core/rope.h"
#include "core/rotation.h"
#include "tui/cli/report_json.h"
#include "tui/shared/findings_frame.h"
#include "tui/shared/findings_text.h"

/* JSON has no Inf or NaN: such values become null. */
static json_t *num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* Which side an overflow is on: "original", "folded", "both",
 * "difference" (both finite, their difference not); null when none. */
static json_t *overflow_side(unsigned bits)
{
	if (!bits)
		return json_null();
	if ((bits & OVERFLOW_ORIGINAL) && (bits & OVERFLOW_FOLDED))
		return json_string("both");
	if (bits & OVERFLOW_ORIGINAL)
		return json_string("original");
	if (bits & OVERFLOW_FOLDED)
		return json_string("folded");
	return json_string("difference");
}

static json_t *level_json(const InvReport *rep, LevelId id)
{
	const LevelResult *L = &rep->level[id];
	json_t *worst = json_object();
	if (id == LEVEL_SCORE) {
		json_object_set_new(worst, "head", json_integer((json_int_t)L->worst_head));
		json_object_set_new(worst, "m", json_integer((json_int_t)L->worst_m));
		json_object_set_new(worst, "n", json_integer((json_int_t)L->worst_n));
		json_object_set_new(worst, "offset",
				    json_integer((json_int_t)(L->worst_m - L->worst_n)));
	} else {
		if (id == LEVEL_HEAD)
			json_object_set_new(worst, "head", json_integer((json_int_t)L->worst_head));
		json_object_set_new(worst, "token", json_integer((json_int_t)L->worst_m));
		json_object_set_new(worst, "coord", json_integer((json_int_t)L->worst_coord));
	}
	json_t *o = json_object();
	json_object_set_new(o, "guaranteed", json_boolean(L->guaranteed));
	json_object_set_new(o, "holds", json_boolean(L->holds));
	/* an overflow: the errors are null, worst is its first place */
	json_object_set_new(o, "overflow", json_boolean(L->overflow));
	json_object_set_new(o, "overflow_side", overflow_side(L->overflow));
	json_object_set_new(o, "max_abs_err", num(L->max_abs_err));
	json_object_set_new(o, "max_rel_err", num(L->max_rel_err));
	json_object_set_new(o, "eps_units", num(L->eps_units));
	json_object_set_new(o, "worst", worst);
	if (id == LEVEL_SCORE) {
		json_t *bo = json_array();
		for (size_t i = 0; i < rep->seq; i++)
			json_array_append_new(bo, num(rep->by_offset[i]));
		json_object_set_new(o, "by_offset", bo);
		json_t *ph = json_array();
		for (size_t h = 0; h < rep->n_heads; h++)
			json_array_append_new(ph, num(rep->score_rel_err[h]));
		json_object_set_new(o, "by_head", ph);
	}
	if (id == LEVEL_HEAD) {
		json_t *ph = json_array();
		for (size_t h = 0; h < rep->n_heads; h++)
			json_array_append_new(ph, num(rep->head_rel_err[h]));
		json_object_set_new(o, "by_head", ph);
	}
	return o;
}

static json_t *diag_json(const InvReport *rep)
{
	const Diagnostics *dg = &rep->diag;
	json_t *o = json_object();
	json_object_set_new(o, "orthogonality_defect", num(dg->ortho_defect));
	json_t *cq = json_array(), *ck = json_array();
	for (size_t h = 0; h < rep->n_heads; h++)
		json_array_append_new(cq, num(dg->comm_q[h]));
	for (size_t g = 0; g < rep->n_kv_heads; g++)
		json_array_append_new(ck, num(dg->comm_k[g]));
	json_object_set_new(o, "commutator_q", cq);
	json_object_set_new(o, "commutator_k", ck);
	json_object_set_new(o, "commutator_max", num(dg->comm_max));
	json_t *mixed = json_array();
	size_t ms = dg->map_size;
	for (size_t h = 0; h < rep->n_heads; h++)
		for (size_t i = 0; i < ms; i++)
			for (size_t j = i; j < ms; j++) {
				double v = dg->pair_map[(h * ms + i) * ms + j];
				double w = dg->pair_map[(h * ms + j) * ms + i];
				double m = v > w ? v : w;
				if (m <= 1e-10 || json_array_size(mixed) >= 64)
					continue;
				json_t *e = json_object();
				json_object_set_new(e, "head", json_integer((json_int_t)h));
				json_object_set_new(e, "pair_i", i < dg->npairs ? json_integer((json_int_t)i) : json_string("non-rotary"));
				json_object_set_new(e, "pair_j", j < dg->npairs ? json_integer((json_int_t)j) : json_string("non-rotary"));
				json_object_set_new(e, "norm", num(m));
				json_array_append_new(mixed, e);
			}
	json_object_set_new(o, "mixed_pairs", mixed);
	json_object_set_new(o, "break_offset", dg->break_offset
				? json_integer((json_int_t)dg->break_offset) : json_null());
	json_object_set_new(o, "mix_eps", dg->mix_eps > 0 ? num(dg->mix_eps) : json_null());
	json_object_set_new(o, "mix_break_offset", dg->mix_eps > 0 && dg->mix_break
				? json_integer((json_int_t)dg->mix_break) : json_null());
	json_object_set_new(o, "qk_mismatch", num(dg->qk_mismatch));
	json_object_set_new(o, "gqa_mismatch", num(dg->gqa_mismatch));
	json_object_set_new(o, "vo_mismatch", num(dg->vo_mismatch));
	json_object_set_new(o, "qk_bias_unrotated", json_boolean(dg->qk_bias_unrotated));
	json_object_set_new(o, "v_bias_unrotated", json_boolean(dg->v_bias_unrotated));
	json_object_set_new(o, "qk_norm_pair_defect", num(dg->qk_norm_pair_defect));
	json_object_set_new(o, "heads_permuted", json_boolean(dg->heads_permuted));
	return o;
}

json_t *report_to_json(const InvReport *rep, const Layer *l,
		       const FoldConfig *cfg, const ReportContext *ctx)
{
	char buf[64];
	json_t *config = json_object();
	json_object_set_new(config, "source", json_string(ctx->source));
	json_object_set_new(config, "layer", json_integer((json_int_t)ctx->layer_index));
	json_object_set_new(config, "d_model", json_integer((json_int_t)l->shape.d_model));
	json_object_set_new(config, "heads", json_integer((json_int_t)l->shape.n_heads));
	json_object_set_new(config, "kv_heads", json_integer((json_int_t)l->shape.n_kv_heads));
	json_object_set_new(config, "head_dim", json_integer((json_int_t)l->shape.head_dim));
	json_object_set_new(config, "seq", json_integer((json_int_t)ctx->seq));
	json_object_set_new(config, "seed", json_integer((json_int_t)ctx->seed));
	json_object_set_new(config, "rope", json_string(rope_layout_name(l->rope.layout)));
	json_object_set_new(config, "rotary_dim", json_integer((json_int_t)l->rope.rotary_dim));
	json_object_set_new(config, "rope_theta", num(l->rope.theta));
	rope_scaling_format(&l->rope.scaling, buf, sizeof buf);
	json_object_set_new(config, "rope_scaling", json_string(buf));
	json_object_set_new(config, "bias", json_boolean(l->bq || l->bk || l->bv || l->bo));
	json_object_set_new(config, "qk_norm", json_boolean(l->q_norm || l->k_norm));
	json_object_set_new(config, "input", json_string(ctx->input));
	json_object_set_new(config, "precision",
			    json_string(rep->precision == PREC_F32 ? "f32" : "f64"));
	json_object_set_new(config, "tol", num(rep->tol));
	/* the layer's RoPE at this T (longrope switches on it) */
	size_t np = l->rope.rotary_dim / 2;
	double *w = calloc(np ? np : 1, sizeof *w);
	json_t *freqs = json_array();
	if (w && rope_frequencies_at(&l->rope, ctx->seq, w) == RF_OK)
		for (size_t i = 0; i < np; i++)
			json_array_append_new(freqs, num(w[i]));
	free(w);
	json_object_set_new(config, "rope_frequencies", freqs);
	json_object_set_new(config, "rope_attention_factor", num(rope_attention_factor(&l->rope)));
	json_object_set_new(config, "longrope_factors",
			    l->rope.scaling.kind != ROPE_SCALING_LONGROPE ? json_null()
			    : json_string(rope_uses_long_factors(&l->rope, ctx->seq) ? "long"
									 : "short"));
	/* applied by the engine to both sides (true since the engine does) */
	json_object_set_new(config, "sliding_window", l->sliding_window
				    ? json_integer((json_int_t)l->sliding_window) : json_null());
	json_object_set_new(config, "attn_softcap", l->attn_softcap > 0 ? num(l->attn_softcap)
								       : json_null());
	json_object_set_new(config, "window_softcap_applied", json_true());
	/* M-RoPE's sections, each pair range [first, last], at text positions */
	json_t *mr = json_null();
	if (ctx->mrope) {
		const size_t *s = ctx->mrope;
		mr = json_pack("{s:[I, I, I], s:[[I, I], [I, I], [I, I]], s:s}", "section",
			       (json_int_t)s[0], (json_int_t)s[1], (json_int_t)s[2], "pairs",
			       (json_int_t)0, (json_int_t)(s[0] - 1), (json_int_t)s[0],
			       (json_int_t)(s[0] + s[1] - 1), (json_int_t)(s[0] + s[1]),
			       (json_int_t)(s[0] + s[1] + s[2] - 1), "positions", "text");
	}
	json_object_set_new(config, "mrope", mr);

	json_t *fold = json_object();
	fold_rotate_format(cfg->rotate, buf, sizeof buf);
	json_object_set_new(fold, "rotate", json_string(buf));
	json_t *drop = json_array();
	for (unsigned i = 0; i < ASSUME_COUNT; i++)
		if (cfg->dropped & (1u << i))
			json_array_append_new(drop, json_string(fold_assumption_name(i)));
	json_object_set_new(fold, "drop", drop);
	json_object_set_new(fold, "kind", json_string(rotation_kind_name(cfg->kind)));
	if (cfg->kind == ROT_PAIR_MIX)
		json_object_set_new(fold, "eps", json_real(cfg->mix_eps));
	json_object_set_new(fold, "permute_heads", json_boolean(cfg->permute_heads));
	json_object_set_new(fold, "layout", json_string(rope_layout_name(
				    cfg->layout_set ? cfg->layout : l->rope.layout)));
	json_object_set_new(fold, "r1", json_string(frame_r1_name(cfg->r1)));
	json_object_set_new(fold, "r3", json_string(frame_r3_name(cfg->r3)));

	json_t *levels = json_object();
	for (int i = 0; i < LEVEL_COUNT; i++)
		json_object_set_new(levels, level_name((LevelId)i), level_json(rep, (LevelId)i));

	json_t *doc = json_object();
	json_object_set_new(doc, "config", config);
	json_object_set_new(doc, "fold", fold);
	json_object_set_new(doc, "levels", levels);
	json_object_set_new(doc, "diagnostics", diag_json(rep));
	char why[FINDINGS_EXPLAIN_MAX];
	findings_explain(rep, why, sizeof why);
	json_object_set_new(doc, "explanation", json_string(why));
	json_object_set_new(doc, "ok", json_boolean(report_ok(rep)));
	return doc;
}

static json_t *frame_r1_json(const FrameR1Result *r)
{
	if (!r->mode)
		return json_null();
	return json_pack("{s:s, s:b, s:b, s:o, s:o, s:{s:I, s:I}, s:o, s:o, s:b, s:b, s:o, s:o}",
			 "mode", frame_r1_name(r->mode), "guaranteed", r->guaranteed, "holds",
			 r->holds, "max_abs_err", num(r->max_abs_err), "max_rel_err",
			 num(r->max_rel_err), "worst", "token", (json_int_t)r->worst_token, "coord",
			 (json_int_t)r->worst_coord, "commutator", num(r->commutator), "w_norm",
			 num(r->w_norm), "w_drawn", r->w_drawn, "w_equal", r->w_equal, "w_min",
			 num(r->w_min), "w_max", num(r->w_max));
}

static json_t *frame_r3_json(const FrameR3Result *r)
{
	if (!r->mode)
		return json_null();
	json_t *bo = json_array();
	for (size_t i = 0; i < r->seq; i++)
		json_array_append_new(bo, num(r->by_offset[i]));
	return json_pack("{s:s, s:b, s:b, s:o, s:o, s:{s:I, s:I, s:I, s:I}, s:o, s:o, s:o, s:b}",
			 "mode", frame_r3_name(r->mode), "guaranteed", r->guaranteed, "holds",
			 r->holds, "max_abs_err", num(r->max_abs_err), "max_rel_err",
			 num(r->max_rel_err), "worst", "head", (json_int_t)r->worst_head, "m",
			 (json_int_t)r->worst_m, "n", (json_int_t)r->worst_n, "offset",
			 (json_int_t)(r->worst_m - r->worst_n), "by_offset", bo, "break_offset",
			 r->break_offset ? json_integer((json_int_t)r->break_offset) : json_null(),
			 "commutator", num(r->commutator), "qk_norm", r->qk_norm);
}

json_t *report_frame_json(const FrameReport *rep)
{
	char why[FINDINGS_FRAME_MAX];
	findings_frame_explain(rep, why, sizeof why);
	return json_pack("{s:s, s:o, s:o, s:o, s:s, s:b}", "precision", "f64", "tol", num(rep->tol),
			 "r1", frame_r1_json(&rep->r1), "r3", frame_r3_json(&rep->r3),
			 "explanation", why, "ok", frame_report_ok(rep));
}
