#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/verify.h"
#include "tui/explorer/colors.h"
#include "tui/explorer/views/compare_panel.h"
#include "tui/explorer/views/draw.h"
#include "tui/shared/findings_frame.h"
#include "tui/shared/findings_text.h"

static void box_title(WINDOW *w, const char *title)
{
	if (colors_utf8())
		box(w, 0, 0);
	else
		wborder(w, '|', '|', '-', '-', '+', '+', '+', '+');
	draw_textf(w, 0, 2, colors_attr(CLR_PANEL), " %s ", title);
}

/* One kv group's recovered rotation: "g0 rot  12 -40 83" (angles in
 * degrees, as many as fit), or "g0 not a rotation". */
static void group_line(WINDOW *w, int y, int cols, const CompareInfo *ci, size_t g)
{
	char line[128];
	int n = snprintf(line, sizeof line, "g%zu", g);
	if (ci->perm && ci->perm[g] != g)
		n += snprintf(line + n, sizeof line - (size_t)n, "<-%zu", ci->perm[g]);
	bool comm = ci->commuting && ci->commuting[g];
	draw_text(w, y, 1, A_BOLD, line);
	int x = 1 + n + 1;
	if (!comm) {
		draw_text(w, y, x, colors_attr(CLR_BREAKS), "not a rotation");
		return;
	}
	bool any = false;
	for (size_t p = 0; ci->angles && p < ci->npairs; p++)
		any |= fabs(ci->angles[g * ci->npairs + p]) > 1e-9;
	if (!any) {
		draw_text(w, y, x, colors_attr(CLR_HOLDS), "identity");
		return;
	}
	x += draw_text(w, y, x, colors_attr(CLR_HOLDS), "rot") + 1;
	for (size_t p = 0; p < ci->npairs && x < cols - 1; p++) {
		char a[16];
		int k = snprintf(a, sizeof a, "%.0f", ci->angles[g * ci->npairs + p] * 180.0 / M_PI);
		if (x + k >= cols - 1) {
			draw_text(w, y, x, colors_attr(CLR_DIM), colors_glyph(GLYPH_ELLIPSIS));
			break;
		}
		x += draw_text(w, y, x, 0, a) + 1;
	}
}

void panels_compare(WINDOW *w, const EvalResult *r)
{
	box_title(w, "compare");
	if (!r || !r->cmp.on)
		return;
	const CompareInfo *ci = &r->cmp;
	int maxy = getmaxy(w), maxx = getmaxx(w);
	int y = 1;
	const char *base = strrchr(ci->against, '/');
	base = base && base[1] ? base + 1 : ci->against;
	draw_text(w, y++, 1, colors_attr(CLR_DIM), "against (B)");
	draw_textf(w, y++, 2, A_BOLD, "%.40s #%zu", base, r->info.layer_index);
	draw_textf(w, y++, 2, colors_attr(CLR_DIM), "stored %s, A %s", ci->dtype_b, ci->dtype_a);
	draw_text(w, y++, 1, colors_attr(CLR_DIM), "verify recovered");
	if (ci->equivalent)
		draw_textf(w, y++, 2, colors_attr(CLR_HOLDS), "%s %s", colors_glyph(GLYPH_HOLDS),
			   verify_relation_name(ci->relation));
	else
		draw_textf(w, y++, 2, colors_attr(CLR_BREAKS), "%s %s", colors_glyph(GLYPH_BREAKS),
			   verify_why_name(ci->why));
	draw_textf(w, y++, 2, colors_attr(ci->equivalent ? CLR_HOLDS : CLR_BREAKS), "%s",
		   verify_within_name(ci->within));
	draw_textf(w, y++, 2, 0, "tol %.2g%s", ci->tol,
		   strstr(ci->tol_words, "plus") ? " + quant" : "");
	draw_textf(w, y++, 2, 0, "layout: %s", ci->layout_converted ? "converted" : "same");
	draw_textf(w, y++, 2, 0, "heads: %s", ci->heads_permuted ? "permuted" : "in order");
	draw_text(w, y++, 1, colors_attr(CLR_DIM), "per kv group (deg)");
	size_t g = 0;
	for (; g < ci->groups && y < maxy - 3; g++)
		group_line(w, y++, maxx, ci, g);
	if (g < ci->groups)
		draw_textf(w, y++, 2, colors_attr(CLR_DIM), "%zu more groups", ci->groups - g);
	if (y < maxy - 2)
		y++;
	if (y < maxy - 1)
		draw_wrap(w, y, 1, maxx - 2, maxy - 1 - y, colors_attr(CLR_DIM),
			  ":against off: the fold");
}

void panels_why_text(const EvalResult *r, char *buf, size_t n)
{
	if (!r || !n) {
		if (n)
			buf[0] = 0;
		return;
	}
	if (!r->cmp.on) {
		/* R1 and R3 beside the fold first: what a flip of F or O
		 * asks about, within the cut "why" line */
		char fr[FINDINGS_FRAME_MAX], why[FINDINGS_EXPLAIN_MAX];
		findings_frame_explain(&r->frame, fr, sizeof fr);
		findings_explain(&r->rep, why, sizeof why);
		snprintf(buf, n, "%s%s%s", fr, *fr ? " " : "", why);
		return;
	}
	/* the levels are in the table above: the relation first */
	const CompareInfo *ci = &r->cmp;
	if (ci->equivalent)
		snprintf(buf, n, "B is equivalent to A: %s (%s: max relative error %.2g, %s).",
			 ci->words, verify_within_name(ci->within), ci->max_err, ci->tol_words);
	else
		snprintf(buf, n, "B is not a fold of A: %s (%s).", ci->words, ci->tol_words);
}
