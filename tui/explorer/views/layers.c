#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/finding.h"
#include "core/verify.h"
#include "tui/explorer/colors.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/views.h"

/* Compare mode's layers view: every layer both checkpoints have, decided
 * from the weights alone (verify without the evaluation), with the status
 * of each kv group; the first break marked, the shown layer highlighted.
 * The rows scroll so that the shown layer stays in sight. */

/* One kv group's cell: "g1" and a check, a cross or a swap mark. */
static int group_cell(WINDOW *w, int y, int x, const CompareLayerRow *row, size_t g)
{
	bool broke = !row->equivalent && (row->group == g || row->group == FINDING_NONE);
	bool moved = row->perm[g] != g;
	int a = broke ? colors_attr(CLR_BREAKS) : colors_attr(CLR_HOLDS);
	const char *mark = broke ? colors_glyph(GLYPH_BREAKS) : colors_glyph(GLYPH_HOLDS);
	int n = draw_textf(w, y, x, a, "g%zu%s%s", g, mark, moved ? "~" : "");
	return n + 1;
}

static void layers_draw(const ViewContext *c)
{
	WINDOW *w = c->win;
	const CompareInfo *ci = &c->res->cmp;
	if (!ci->on) {
		draw_text(w, 0, 0, A_BOLD, "layers: compare mode only");
		draw_wrap(w, 2, 0, c->w, c->h - 2, 0,
			  "':against PATH' (or --against PATH, or ':verify PATH') compares this "
			  "checkpoint's layers with PATH's stored ones; this view then lists every "
			  "layer and kv group with its status.");
		return;
	}
	size_t first = SIZE_MAX;
	for (size_t i = 0; i < ci->nrows; i++)
		if (!ci->rows[i].equivalent) {
			first = i;
			break;
		}
	/* the loosest class of the layers (what their tolerance had to allow for) */
	VerifyWithin loosest = VERIFY_WITHIN_EXACT;
	for (size_t i = 0; i < ci->nrows; i++)
		if (ci->rows[i].within > loosest)
			loosest = ci->rows[i].within;
	if (first == SIZE_MAX)
		draw_textf(w, 0, 0, A_BOLD, "%zu layers: B is a fold of A in every one",
			   ci->nrows);
	else
		draw_textf(w, 0, 0, A_BOLD, "%zu layers: first break at layer %zu", ci->nrows,
			   ci->rows[first].layer);
	if (!ci->nrows) {
		draw_wrap(w, 2, 0, c->w, c->h - 2, colors_attr(CLR_ERROR),
			  ci->scan_err[0] ? ci->scan_err : "no layer decided");
		return;
	}
	int rows = c->h - 3;   /* below the two header lines, above the class line */
	if (rows < 1)
		return;
	if (first == SIZE_MAX)
		draw_textf(w, c->h - 1, 0, colors_attr(CLR_DIM), "every layer %s%s",
			   loosest == VERIFY_WITHIN_EXACT ? "" : "at most ",
			   verify_within_name(loosest));
	size_t cur = c->res->info.layer_index;
	size_t top = 0;
	if (cur >= (size_t)rows)
		top = cur - (size_t)rows + 1;
	draw_text(w, 1, 0, colors_attr(CLR_DIM), "layer  verdict              kv groups (~ permuted)");
	for (int r = 0; r < rows - 0 && top + (size_t)r < ci->nrows && 2 + r < c->h; r++) {
		const CompareLayerRow *row = &ci->rows[top + (size_t)r];
		int y = 2 + r;
		int base = row->layer == cur ? colors_attr(CLR_SELECT) : 0;
		if (base)
			mvwhline(w, y, 0, ' ' | (chtype)base, c->w);
		draw_textf(w, y, 0, base, "%s%4zu", top + (size_t)r == first ? ">" : " ", row->layer);
		char verdict[40];
		if (row->equivalent)
			snprintf(verdict, sizeof verdict, "%s", verify_relation_name(row->relation));
		else
			snprintf(verdict, sizeof verdict, "%s %s", verify_why_name(row->why),
				 row->tensor);
		/* 20 columns before the groups: a longer tensor name (MLA's "kv_a
		 * k_pe") is cut, and marked so */
		bool cut = strlen(verdict) > 20;
		if (cut)
			verdict[19] = 0;
		int vx = 7 + draw_text(w, y, 7, base | (row->equivalent ? colors_attr(CLR_HOLDS)
								       : colors_attr(CLR_BREAKS)),
				       verdict);
		if (cut)
			draw_text(w, y, vx, base | colors_attr(CLR_DIM), colors_glyph(GLYPH_ELLIPSIS));
		int x = 28;
		for (size_t g = 0; g < row->n_groups && x < c->w - 4; g++)
			x += group_cell(w, y, x, row, g);
	}
}

const View view_layers = {
	"layers", "layers", layers_draw, NULL, NULL,
	"compare mode: every layer and kv group with its status, the first break marked",
};
