#include "config.h"

#include <math.h>
#include <string.h>

#include "core/rope.h"
#include "core/rotation.h"
#include "tui/cli/report_text.h"
#include "tui/shared/findings_frame.h"
#include "tui/shared/findings_text.h"

#define C_RESET "\033[0m"
#define C_GREEN "\033[32m"
#define C_RED "\033[31m"
#define C_YELLOW "\033[33m"
#define C_DIM "\033[2m"

static void worst_str(const InvReport *rep, LevelId id, char *buf, size_t n)
{
	const LevelResult *L = &rep->level[id];
	if (id == LEVEL_SCORE)
		snprintf(buf, n, "head %zu, (m,n)=(%zu,%zu)", L->worst_head,
			 L->worst_m, L->worst_n);
	else if (id == LEVEL_HEAD)
		snprintf(buf, n, "head %zu, token %zu, coord %zu", L->worst_head,
			 L->worst_m, L->worst_coord);
	else
		snprintf(buf, n, "token %zu, coord %zu", L->worst_m, L->worst_coord);
}

/* A number of the table: "overflow" where it is not finite. */
static const char *num_str(double v, char *buf, size_t n)
{
	if (isfinite(v))
		snprintf(buf, n, "%.3g", v);
	else
		snprintf(buf, n, "overflow");
	return buf;
}

/* One entry of the by-offset sample. */
static void print_offset(FILE *f, size_t o, double v)
{
	if (isfinite(v))
		fprintf(f, "  %zu:%.2g", o, v);
	else
		fprintf(f, "  %zu:overflow", o);
}

/* Wrap text at width columns with an indent. */
static void print_wrapped(FILE *f, const char *s, size_t width, const char *indent)
{
	size_t col = 0;
	while (*s) {
		const char *sp = strchr(s, ' ');
		size_t wlen = sp ? (size_t)(sp - s) : strlen(s);
		if (col && col + 1 + wlen > width) {
			fprintf(f, "\n%s", indent);
			col = 0;
		} else if (col) {
			fputc(' ', f);
			col++;
		} else {
			fputs(col ? "" : "", f);
		}
		fwrite(s, 1, wlen, f);
		col += wlen;
		s += wlen;
		while (*s == ' ')
			s++;
	}
	fputc('\n', f);
}

void report_print_text(FILE *f, const InvReport *rep, const Layer *l,
		       const FoldConfig *cfg, const ReportContext *ctx,
		       bool color)
{
	char rot[8], scal[32], drop[160] = "";
	fold_rotate_format(cfg->rotate, rot, sizeof rot);
	rope_scaling_format(&l->rope.scaling, scal, sizeof scal);
	for (unsigned i = 0; i < ASSUME_COUNT; i++)
		if (cfg->dropped & (1u << i)) {
			if (*drop)
				strncat(drop, ",", sizeof drop - strlen(drop) - 1);
			strncat(drop, fold_assumption_name(i), sizeof drop - strlen(drop) - 1);
		}
	fprintf(f, "layer   %s%s%zu  D=%zu H=%zu G=%zu d=%zu  T=%zu  seed %llu  input %s\n",
		ctx->source, " #", ctx->layer_index, l->shape.d_model,
		l->shape.n_heads, l->shape.n_kv_heads, l->shape.head_dim,
		ctx->seq, (unsigned long long)ctx->seed, ctx->input);
	fprintf(f, "rope    %s, rotary dim %zu, theta %g, scaling %s%s%s\n",
		rope_layout_name(l->rope.layout), l->rope.rotary_dim, l->rope.theta,
		scal, (l->bq || l->bk || l->bv || l->bo) ? ", biases" : "",
		(l->q_norm || l->k_norm) ? ", QK-norm" : "");
	if (ctx->mrope) {
		/* M-RoPE at text positions: every section turns by the one
		 * position, so each pair is plain RoPE's, section by section */
		const size_t *s = ctx->mrope;
		fprintf(f, "mrope   sections t pairs 0-%zu, h %zu-%zu, w %zu-%zu; text tokens give "
			"all three the token's position, so each section is plain RoPE on its pairs "
			"and the commutant is one angle per pair in every section (a fold mixing "
			"pairs across sections breaks as any pair mixing does)\n", s[0] - 1, s[0],
			s[0] + s[1] - 1, s[0] + s[1], s[0] + s[1] + s[2] - 1);
	}
	if (l->rope.scaling.kind == ROPE_SCALING_LONGROPE)
		fprintf(f, "longrope %s factors at T = %zu (long when T > %g)\n",
			rope_uses_long_factors(&l->rope, ctx->seq) ? "long" : "short", ctx->seq,
			l->rope.scaling.original_max_pos);
	if (l->rope.scaling.kind == ROPE_SCALING_NTK && l->rope.scaling.original_max_pos > 0)
		fprintf(f, "dynamic %s at T = %zu (the base grows only when T > %g)\n",
			(double)ctx->seq > l->rope.scaling.original_max_pos ? "stretched" : "unscaled",
			ctx->seq, l->rope.scaling.original_max_pos);
	if (l->sliding_window || l->attn_softcap > 0) {
		char win[48] = "", cap[48] = "";
		if (l->sliding_window)
			snprintf(win, sizeof win, "sliding window %zu", l->sliding_window);
		if (l->attn_softcap > 0)
			snprintf(cap, sizeof cap, "%sscore soft-cap %g", *win ? ", " : "",
				 l->attn_softcap);
		fprintf(f, "attn    %s%s: applied to both sides; a commuting fold leaves every "
			"score equal, so windowed or capped scores stay equal too\n", win, cap);
	}
	char kind[48];
	rotation_kind_format(cfg->kind, cfg->mix_eps, kind, sizeof kind);
	fprintf(f, "fold    rotate %s, drop %s, kind %s%s", rot,
		*drop ? drop : "none",
		(cfg->dropped & ASSUME_COMMUTES) ? kind : "commuting",
		cfg->permute_heads ? ", heads permuted" : "");
	if (cfg->layout_set && cfg->layout != l->rope.layout)
		fprintf(f, ", built for the %s layout", rope_layout_name(cfg->layout));
	fputc('\n', f);
	fprintf(f, "eval    %s, tolerance %.3g (relative)\n\n",
		rep->precision == PREC_F32 ? "float32" : "float64", rep->tol);
	fprintf(f, "%-9s %-12s %-8s %-10s %-10s %-10s %s\n", "level", "prediction",
		"verdict", "abs err", "rel err", "eps units", "worst at");
	for (int i = 0; i < LEVEL_COUNT; i++) {
		const LevelResult *L = &rep->level[i];
		char worst[64], a[16], r[16], e[16];
		worst_str(rep, (LevelId)i, worst, sizeof worst);
		const char *vc = "";
		if (color)
			vc = L->holds ? C_GREEN : (L->guaranteed ? C_RED : C_YELLOW);
		/* an overflow has no error to show; worst names its first place */
		bool ovf = L->overflow;
		fprintf(f, "%-9s %-12s %s%-8s%s %-10s %-10s %-10s %s\n",
			level_name((LevelId)i),
			L->guaranteed ? "guaranteed" : "not guar.", vc,
			ovf ? "overflow" : L->holds ? "holds" : "breaks",
			color ? C_RESET : "",
			ovf ? "-" : num_str(L->max_abs_err, a, sizeof a),
			ovf ? "-" : num_str(L->max_rel_err, r, sizeof r),
			ovf ? "-" : num_str(L->eps_units, e, sizeof e), worst);
	}
	/* Score error by offset: a short sample, log-spaced. */
	fprintf(f, "\nscore error by offset m-n:");
	bool all_ovf = rep->seq > 0;
	for (size_t o = 0; o < rep->seq; o++)
		all_ovf &= !isfinite(rep->by_offset[o]);
	if (all_ovf) {
		fprintf(f, "  overflow at every offset");
	} else {
		size_t shown = 0, last = 0;
		for (size_t o = 0; o < rep->seq && shown < 8; o = o ? o * 2 : 1, shown++) {
			print_offset(f, o, rep->by_offset[o]);
			last = o;
		}
		if (rep->seq > 1 && last != rep->seq - 1)
			print_offset(f, rep->seq - 1, rep->by_offset[rep->seq - 1]);
	}
	const Diagnostics *dg = &rep->diag;
	if (dg->mix_eps > 0 && dg->mix_break)
		fprintf(f, "\npair-mix EPS %g: the score error is predicted to pass the tolerance "
			"near offset %zu%s", dg->mix_eps, dg->mix_break,
			dg->mix_break >= rep->seq ? " (beyond this T)" : "");
	else if (dg->mix_eps > 0)
		fprintf(f, "\npair-mix EPS %g: the score error saturates below the tolerance "
			"(2 sin EPS <= tol)", dg->mix_eps);
	char why[FINDINGS_EXPLAIN_MAX];
	findings_explain(rep, why, sizeof why);
	fprintf(f, "\n\n%s", color ? C_DIM : "");
	print_wrapped(f, why, 78, "");
	if (color)
		fputs(C_RESET, f);
}

/* "holds (guaranteed)" with the verdict's color. */
static void print_verdict(FILE *f, bool guaranteed, bool holds, bool color)
{
	const char *vc = !color ? "" : holds ? C_GREEN : guaranteed ? C_RED : C_YELLOW;
	fprintf(f, "%s%s%s (%s)", vc, holds ? "holds" : "breaks", color ? C_RESET : "",
		guaranteed ? "guaranteed" : "not guar.");
}

void report_print_frame(FILE *f, const FrameReport *rep, bool color)
{
	const FrameR1Result *a = &rep->r1;
	const FrameR3Result *b = &rep->r3;
	if (!a->mode && !b->mode)
		return;
	if (a->mode) {
		fprintf(f, "\nr1      %s: ", frame_r1_name(a->mode));
		print_verdict(f, a->guaranteed, a->holds, color);
		fprintf(f, ", rel err %.3g, ||diag(w) R1 - R1 diag(w)|| %.3g (||diag(w)|| %.3g)",
			a->max_rel_err, a->commutator, a->w_norm);
	}
	if (b->mode) {
		fprintf(f, "\nr3      %s: ", frame_r3_name(b->mode));
		print_verdict(f, b->guaranteed, b->holds, color);
		fprintf(f, ", rel err %.3g, ||H Theta_1 - Theta_1 H|| %.3g\n        score error by offset:",
			b->max_rel_err, b->commutator);
		size_t shown = 0, last = 0;
		for (size_t o = 0; o < b->seq && shown < 8; o = o ? o * 2 : 1, shown++) {
			print_offset(f, o, b->by_offset[o]);
			last = o;
		}
		if (b->seq > 1 && last != b->seq - 1)
			print_offset(f, b->seq - 1, b->by_offset[b->seq - 1]);
	}
	fprintf(f, "\n        float64, tolerance %.3g (relative)\n\n%s", rep->tol, color ? C_DIM : "");
	char why[FINDINGS_FRAME_MAX];
	findings_frame_explain(rep, why, sizeof why);
	print_wrapped(f, why, 78, "");
	if (color)
		fputs(C_RESET, f);
}
