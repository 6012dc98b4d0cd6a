#include "config.h"

#include <math.h>

#include "tui/explorer/colors.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/views.h"

/* Score error over (m, n) for one head: rows are query tokens m, columns
 * key tokens n, each cell the worst |error| of its bins relative to the
 * largest original score. The masked half (n > m) stays blank. */
static void heatmap_draw(const ViewContext *c)
{
	const InvReport *rep = &c->res->rep;
	WINDOW *w = c->win;
	size_t B = rep->heat_bins, T = rep->seq;
	double ref = rep->level[LEVEL_SCORE].ref_max;
	if (!(ref > 0))
		ref = 1;
	draw_textf(w, 0, 0, A_BOLD, "head %zu/%zu: |score err|/max|score|, m down, n across",
		   c->head, rep->n_heads);
	int legend_w = 15;
	int top = 1, left = 4;
	int rows = c->h - top - 1;
	int avail = c->w - left - legend_w - 1;
	if (B == 0 || rows < 2 || avail < 4) {
		draw_text(w, 2, 0, 0, "(no room for the heatmap)");
		return;
	}
	/* A square grid of S x S cells, each a block of bins; a cell on the
	 * diagonal shows the m = n bins only, so the diagonal's survival is
	 * not hidden by its off-diagonal neighbours. */
	int S = (int)B < rows ? (int)B : rows;
	if (S > avail)
		S = avail;
	int cw = 2 * S <= avail ? 2 : 1;
	int R = S, C = S;
	const double *heat = rep->heat + c->head * B * B;
	for (int i = 0; i < R; i++) {
		size_t b0 = (size_t)i * B / (size_t)R, b1 = (size_t)(i + 1) * B / (size_t)R;
		for (int j = 0; j < C; j++) {
			size_t c0 = (size_t)j * B / (size_t)C, c1 = (size_t)(j + 1) * B / (size_t)C;
			double v = -1;
			for (size_t bi = b0; bi < b1; bi++)
				for (size_t bj = c0; bj < c1; bj++) {
					if (i == j && bi != bj)
						continue;
					double e = heat[bi * B + bj];
					if (e >= 0 && e > v)
						v = e;
				}
			/* Inf: an overflow, the worst color whatever ref is */
			int k = v < 0 ? -1 : draw_heat_bucket(isinf(v) ? v : v / ref, rep->eps);
			draw_heat_cell(w, top + i, left + j * cw, k, cw);
		}
	}
	/* Token labels: m down the left, n along the bottom. */
	draw_textf(w, top, 0, colors_attr(CLR_DIM), "%3d", 0);
	draw_textf(w, top + R - 1, 0, colors_attr(CLR_DIM), "%3zu", T - 1);
	draw_text(w, top + R / 2, 0, colors_attr(CLR_DIM), "  m");
	if (top + R < c->h) {
		draw_text(w, top + R, left, colors_attr(CLR_DIM), "0");
		draw_textf(w, top + R, left + C * cw / 2 - 1, colors_attr(CLR_DIM), "n");
		draw_textf(w, top + R, left + C * cw - 3, colors_attr(CLR_DIM), "%3zu", T - 1);
	}
	draw_heat_legend(w, top, c->w - legend_w + 1, c->h - top, rep->eps, rep->tol,
			 "rel err");
}

const View view_heatmap = {
	"heatmap", "heatmap", heatmap_draw, NULL, NULL,
	"score error over (m, n) for the selected head, log color scale",
};
