#include "config.h"

#include <math.h>

#include "tui/explorer/colors.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/views.h"

/* Score error by relative offset m - n as a bar plot on a log scale from
 * below the precision's epsilon to 1, with the tolerance marked. */
static void offset_draw(const ViewContext *c)
{
	const InvReport *rep = &c->res->rep;
	WINDOW *w = c->win;
	size_t T = rep->seq;
	double ref = rep->level[LEVEL_SCORE].ref_max;
	if (!(ref > 0))
		ref = 1;
	draw_text(w, 0, 0, A_BOLD, "max |score error| / max|score| by offset m - n (all heads)");
	int ylab = 7, top = 1;
	int ph = c->h - top - 1;
	int pw = c->w - ylab;
	if (ph < 3 || pw < 8 || T == 0) {
		draw_text(w, 2, 0, 0, "(no room for the plot)");
		return;
	}
	double lo = floor(log10(rep->eps)) - 1, hi = 0;
	int cols = (int)T < pw ? (int)T : pw;
	int cw = pw / cols;
	if (cw > 3)
		cw = 3;
	/* Row r (0 = top) stands for the value 10^(hi - (r + 1) * span). */
	double span = (hi - lo) / ph;
	int tol_row = -1;
	if (rep->tol > 0) {
		tol_row = (int)floor((hi - log10(rep->tol)) / span);
		if (tol_row >= ph)
			tol_row = -1;
	}
	for (int j = 0; j < cols; j++) {
		size_t o0 = (size_t)j * T / (size_t)cols, o1 = (size_t)(j + 1) * T / (size_t)cols;
		double v = 0;
		for (size_t o = o0; o < o1; o++)
			if (rep->by_offset[o] > v)
				v = rep->by_offset[o];
		double rel = isinf(v) ? v : v / ref;  /* Inf: an overflow */
		int height = 0;
		if (isinf(rel)) {  /* an overflow: the whole column */
			height = ph;
		} else if (rel > 0) {
			double lv = log10(rel);
			height = (int)ceil((lv - lo) / span);
			if (height > ph)
				height = ph;
			if (height < 1)
				height = 1;
		}
		int k = draw_heat_bucket(rel, rep->eps);
		for (int r = 0; r < ph; r++) {
			int y = top + r;
			int x = ylab + j * cw;
			bool filled = r >= ph - height;
			for (int i = 0; i < cw; i++) {
				if (filled && i < (cw > 1 ? cw - 1 : 1)) {
					int a = colors_enabled() ? colors_attr((ColorId)(CLR_HEAT0 + k)) : 0;
					if (colors_enabled())
						draw_text(w, y, x + i, a, " ");
					else
						draw_text(w, y, x + i, 0, colors_glyph(GLYPH_BAR));
				} else if (r == tol_row) {
					draw_text(w, y, x + i, colors_attr(CLR_TOL), "-");
				}
			}
		}
	}
	/* y axis */
	for (int r = 0; r < ph; r += (ph > 6 ? 3 : 2))
		draw_textf(w, top + r, 0, colors_attr(CLR_DIM), "1e%+03d", (int)lround(hi - (r + 1) * span));
	if (tol_row >= 0)
		draw_text(w, top + tol_row, 0, colors_attr(CLR_TOL), "tol   ");
	draw_text(w, top + ph, ylab, colors_attr(CLR_DIM), "0");
	draw_text(w, top + ph, ylab + cols * cw / 2 - 4, colors_attr(CLR_DIM), "offset m-n");
	draw_textf(w, top + ph, ylab + cols * cw - 4, colors_attr(CLR_DIM), "%4zu", T - 1);
}

const View view_offset = {
	"offset", "offset", offset_draw, NULL, NULL,
	"score error by relative offset m - n, log scale, tolerance marked",
};
