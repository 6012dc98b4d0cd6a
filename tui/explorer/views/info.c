#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/fold.h"
#include "core/rope.h"
#include "core/rotation.h"
#include "tui/explorer/colors.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/views.h"

/* The info view is a list of labelled lines that may be longer than its
 * box: drawn twice, once to count its rows and once from the scroll
 * position (the info view's set->view_scroll), with a line saying where
 * it is when it does not fit. */
typedef struct {
	const ViewContext *c;
	int row;      /* the next row of the whole text */
	int first;    /* the first row shown */
	int limit;    /* rows shown */
	bool draw;    /* false: count only */
} InfoText;

/* Row `row` of the whole text on the screen, or -1 when not shown. */
static int info_y(const InfoText *t, int row)
{
	if (!t->draw || row < t->first || row >= t->first + t->limit)
		return -1;
	return row - t->first;
}

/* A section's label in the left column of the next row. */
static void info_label(InfoText *t, const char *label)
{
	int y = info_y(t, t->row);
	if (y >= 0)
		draw_text(t->c->win, y, 0, colors_attr(CLR_PANEL), label);
}

/* One line of the view from column 10, wrapped at words (never cut)
 * under itself when it is wider than the view. */
static void __attribute__((format(printf, 2, 3)))
info_line(InfoText *t, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	/* a number stays on the line of the word it belongs to ("theta
	 * 10000", "eps 2.22e-16"): the space before it does not break */
	for (char *q = buf; *q; q++)
		if (*q == ' ' && (isdigit((unsigned char)q[1]) ||
				  (q[1] == '-' && isdigit((unsigned char)q[2]))))
			*q = '\x1f';
	int cols = t->c->w - 10;
	if (cols < 8)
		cols = 8;
	const char *p = buf, *next;
	do {
		char line[512];
		size_t len = draw_wrap_span(p, cols, &next);
		memcpy(line, p, len);
		line[len] = 0;
		for (char *q = line; *q; q++)
			if (*q == '\x1f')
				*q = ' ';
		int y = info_y(t, t->row);
		if (y >= 0)
			draw_text(t->c->win, y, 10, 0, line);
		t->row++;
		p = next;
	} while (*p);
}

/* R1 and R3 beside the fold, when on: the verdict and the numbers
 * behind it (the commutator; R3's error growing with the offset). */
static void frame_lines(InfoText *t, const FrameReport *f)
{
	const FrameR1Result *a = &f->r1;
	const FrameR3Result *b = &f->r3;
	if (a->mode) {
		info_label(t, "R1");
		info_line(t, "%s: %s, rel err %.3g; ||diag(w) R1 - R1 diag(w)|| %.3g of "
			  "||diag(w)|| %.3g (w %s, %.3g to %.3g)", frame_r1_name(a->mode),
			  a->holds ? "holds" : "breaks", a->max_rel_err, a->commutator, a->w_norm,
			  a->w_drawn ? "drawn" : "the layer's", a->w_min, a->w_max);
	}
	if (b->mode) {
		char offs[160] = "";
		for (size_t o = 0, n = 0; o < b->seq && n < 5; o = o ? o * 2 : 1, n++)
			snprintf(offs + strlen(offs), sizeof offs - strlen(offs), " %zu:%.2g", o,
				 b->by_offset[o]);
		info_label(t, "R3");
		info_line(t, "%s: %s, rel err %.3g; ||H Theta_1 - Theta_1 H|| %.3g; by "
			  "offset%s", frame_r3_name(b->mode), b->holds ? "holds" : "breaks",
			  b->max_rel_err, b->commutator, offs);
	}
}

/* Model and layer info, then the fold and the diagnostics behind the
 * explanation. */
static void info_text(InfoText *t)
{
	const ViewContext *c = t->c;
	const EvalResult *r = c->res;
	const LayerInfo *li = &r->info;
	const InvReport *rep = &r->rep;
	const Diagnostics *d = &rep->diag;
	char scal[48], rot[8], a[16], b[16], e[16];
	rope_scaling_format(&li->rope.scaling, scal, sizeof scal);
	fold_rotate_format(r->settings.opts.fold.rotate, rot, sizeof rot);
	/* R1 and R3 first when on: what the F and O keys asked about */
	frame_lines(t, &r->frame);
	info_label(t, "layer");
	if (!strcmp(li->source, "random"))
		info_line(t, "random layer");
	else if (!strcmp(li->source, "default"))
		info_line(t, "the built-in default model, layer %zu", li->layer_index);
	else
		info_line(t, "%s, layer %zu", li->source, li->layer_index);
	info_line(t, "D=%zu  H=%zu  G=%zu (%zu per group)  d=%zu",
		   li->shape.d_model, li->shape.n_heads, li->shape.n_kv_heads,
		   li->shape.n_heads / (li->shape.n_kv_heads ? li->shape.n_kv_heads : 1),
		   li->shape.head_dim);
	info_line(t, "stored %s; %.1f MiB as evaluated (f64)",
		   li->dtype[0] ? li->dtype : "nowhere (drawn in f64)",
		   (double)li->bytes / (1024.0 * 1024.0));
	if (li->mla) {
		const MlaShape *m = &li->mla_shape;
		info_label(t, "mla");
		info_line(t, "kv_lora %zu  q_lora %zu%s  nope %zu  rope %zu (one k_pe)  v %zu",
			  m->kv_lora_rank, m->q_lora_rank, m->q_lora_rank ? "" : " (q_proj)",
			  m->qk_nope_dim, m->qk_rope_dim, m->v_head_dim);
	}
	info_label(t, "rope");
	info_line(t, "%s, rotary dim %zu of %zu, theta %g, scaling %s",
		   rope_layout_name(li->rope.layout), li->rope.rotary_dim,
		   li->shape.head_dim, li->rope.theta, scal);
	if (li->rope.scaling.kind == ROPE_SCALING_LONGROPE)
		info_line(t, "longrope: %s factors at T=%zu (long when T > %g)",
			   rope_uses_long_factors(&li->rope, rep->seq) ? "long" : "short", rep->seq,
			   li->rope.scaling.original_max_pos);
	if (li->sliding_window || li->attn_softcap > 0)
		info_line(t, "window %zu, soft-cap %g: applied (a fold keeps scores "
			   "equal, so masked and capped ones too)", li->sliding_window, li->attn_softcap);
	if (li->family_assumed)
		info_line(t, "assumed: the family is not one ropefold knows (%s, "
			   "Llama's conventions)", rope_layout_name(li->rope.layout));
	info_line(t, "biases q/k/v %s, o %s; QK-norm %s; score scale %.4g",
		   li->qkv_bias ? "yes" : "no", li->o_bias ? "yes" : "no",
		   li->qk_norm ? "yes" : "no", li->score_scale);
	info_label(t, "eval");
	info_line(t, "T=%zu, seed %llu, %s, tol %g, eps %.3g, %.1f ms",
		   rep->seq, (unsigned long long)r->settings.opts.seed,
		   rep->precision == PREC_F32 ? "float32" : "float64", rep->tol, rep->eps,
		   r->seconds * 1e3);
	info_label(t, "fold");
	char drop[160] = "";
	for (unsigned i = 0; i < ASSUME_COUNT; i++)
		if (r->settings.opts.fold.dropped & (1u << i)) {
			if (*drop)
				strncat(drop, ",", sizeof drop - strlen(drop) - 1);
			strncat(drop, fold_assumption_name(i), sizeof drop - strlen(drop) - 1);
		}
	info_line(t, "rotate %s, drop %s, kind %s%s", rot, *drop ? drop : "none",
		   rotation_kind_name(r->settings.opts.fold.kind),
		   r->settings.opts.fold.permute_heads ? ", heads permuted" : "");
	info_label(t, "diagnose");
	draw_fmt_err(d->ortho_defect, a, sizeof a);
	draw_fmt_err(d->comm_max, b, sizeof b);
	info_line(t, "||R^T R - I|| %s (R_%c, head %zu); commutator %s",
		   a, d->ortho_part ? d->ortho_part : 'q', d->ortho_head, b);
	draw_fmt_err(d->qk_mismatch, a, sizeof a);
	draw_fmt_err(d->gqa_mismatch, b, sizeof b);
	draw_fmt_err(d->vo_mismatch, e, sizeof e);
	info_line(t, "Q/K mismatch %s, GQA %s, V/O %s", a, b, e);
	if (d->mix_norm > 0) {
		draw_fmt_err(d->mix_norm, a, sizeof a);
		if (d->mix_i == d->mix_j)
			info_line(t, "worst block: head %zu, pair %zu alone (%s)",
				   d->mix_head, d->mix_i, a);
		else
			info_line(t, "worst block: head %zu mixes pairs %zu and %zu (%s)",
				   d->mix_head, d->mix_i, d->mix_j, a);
	}
	if (d->npairs && d->freqs)
		info_line(t, "frequencies w_0 = %.4g .. w_%zu = %.4g", d->freqs[0],
			   d->npairs - 1, d->freqs[d->npairs - 1]);
	if (d->qk_bias_unrotated || d->v_bias_unrotated || d->heads_permuted)
		info_line(t, "%s%s%s", d->qk_bias_unrotated ? "q/k bias unrotated  " : "",
			   d->v_bias_unrotated ? "v bias unrotated  " : "",
			   d->heads_permuted ? "kv groups permuted" : "");
}

static void info_draw(const ViewContext *c)
{
	InfoText t = {c, 0, 0, 0, false};
	info_text(&t);
	int total = t.row;
	/* when it does not fit, the last row says which rows are shown */
	int limit = total > c->h ? c->h - 1 : c->h;
	int max = total > limit ? total - limit : 0;
	int first = c->set->view_scroll < max ? c->set->view_scroll : max;
	if (c->scroll_max)
		*c->scroll_max = max;
	InfoText d = {c, 0, first, limit, true};
	info_text(&d);
	if (total > limit)
		draw_textf(c->win, c->h - 1, 0, colors_attr(CLR_DIM), "lines %d-%d of %d: %s", first + 1,
			   first + limit, total, first < max ? "PgDn more, PgUp back" : "PgUp back, Home top");
}

const View view_info = {
	"info", "info", info_draw, NULL, NULL,
	"model and layer info: shape, RoPE, biases, QK-norm, fold, diagnostics",
};

const View *views_get(ViewId id)
{
	static const View *const all[VIEW_COUNT] = {
		&view_heatmap, &view_offset, &view_heads, &view_pairs, &view_info,
		&view_layers, &view_rotation,
	};
	return (unsigned)id < VIEW_COUNT ? all[id] : all[0];
}
