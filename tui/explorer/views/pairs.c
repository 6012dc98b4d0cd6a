#include "config.h"

#include <math.h>

#include "tui/explorer/colors.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/views.h"

/* The commutator map of R_q for one head: cell (i, j) is the norm of the
 * (i, j) block of R Theta_1 - Theta_1 R over frequency pairs (the last
 * row/column is the non-rotary block, if any). Off the diagonal: pairs the
 * rotation mixes; on it: a pair not turned by a plain rotation. */
static void pairs_draw(const ViewContext *c)
{
	const InvReport *rep = &c->res->rep;
	const Diagnostics *d = &rep->diag;
	WINDOW *w = c->win;
	size_t M = d->map_size, P = d->npairs;
	draw_textf(w, 0, 0, A_BOLD, "head %zu: R_q commutator blocks per frequency pair", c->head);
	if (!d->pair_map || M == 0) {
		draw_text(w, 2, 0, 0, "(no rotary pairs in this layer)");
		return;
	}
	int legend_w = 16, info_w = 0;
	int top = 1, left = 4;
	int rows = c->h - top - 1;
	int avail = c->w - left - legend_w - 1;
	if (rows < 2 || avail < 4) {
		draw_text(w, 2, 0, 0, "(no room for the map)");
		return;
	}
	(void)info_w;
	int R = (int)M < rows ? (int)M : rows;
	int cw = 3 * (int)M <= avail ? 3 : (2 * (int)M <= avail ? 2 : 1);
	int C = (int)M < avail / cw ? (int)M : avail / cw;
	const double *map = d->pair_map + c->head * M * M;
	for (int i = 0; i < R; i++) {
		size_t b0 = (size_t)i * M / (size_t)R, b1 = (size_t)(i + 1) * M / (size_t)R;
		for (int j = 0; j < C; j++) {
			size_t c0 = (size_t)j * M / (size_t)C, c1 = (size_t)(j + 1) * M / (size_t)C;
			double v = 0;
			for (size_t bi = b0; bi < b1; bi++)
				for (size_t bj = c0; bj < c1; bj++)
					if (map[bi * M + bj] > v)
						v = map[bi * M + bj];
			draw_heat_cell(w, top + i, left + j * cw, draw_heat_bucket(v, rep->eps),
				       cw > 1 ? cw - 1 : 1);
		}
	}
	draw_text(w, top, 0, colors_attr(CLR_DIM), "  0");
	draw_textf(w, top + R - 1, 0, colors_attr(CLR_DIM), "%3s",
		   M > P ? "nr" : "");
	if (M <= P)
		draw_textf(w, top + R - 1, 0, colors_attr(CLR_DIM), "%3zu", M - 1);
	if (top + R < c->h) {
		draw_text(w, top + R, left, colors_attr(CLR_DIM), "0");
		draw_textf(w, top + R, left + C * cw - 3, colors_attr(CLR_DIM), "%3s",
			   M > P ? "nr" : "");
		if (M <= P)
			draw_textf(w, top + R, left + C * cw - 3, colors_attr(CLR_DIM), "%3zu", M - 1);
	}
	int x = c->w - legend_w + 1;
	int used = draw_heat_legend(w, top, x, c->h - top - 4, rep->eps, 0, "norm");
	char a[16];
	double cq = d->comm_q ? d->comm_q[c->head] : 0;
	draw_fmt_err(cq, a, sizeof a);
	draw_textf(w, top + used + 1, x, 0, "this head");
	draw_textf(w, top + used + 2, x, 0, "%s", a);
	if (d->break_offset)
		draw_textf(w, top + used + 3, x, colors_attr(CLR_EXPECTED), "near %zu", d->break_offset);
}

const View view_pairs = {
	"pairs", "pairs", pairs_draw, NULL, NULL,
	"commutator map of R_q per frequency pair for the selected head",
};
