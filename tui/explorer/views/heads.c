#include "config.h"

#include <math.h>

#include "tui/explorer/colors.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/views.h"

/* Position of a relative error on a log bar of n cells. */
static int bar_len(double rel, double lo, int n)
{
	if (!(rel > 0))
		return 0;
	if (isinf(rel))  /* an overflow: the whole bar */
		return n;
	double f = (log10(rel) - lo) / (0 - lo);
	int k = (int)ceil(f * n);
	return k < 1 ? 1 : (k > n ? n : k);
}

/* Per-head bars: the head level's relative error of each query head, with
 * the score error beside it, log scale, the tolerance marked. */
static void heads_draw(const ViewContext *c)
{
	const InvReport *rep = &c->res->rep;
	WINDOW *w = c->win;
	size_t H = rep->n_heads, G = rep->n_kv_heads;
	draw_text(w, 0, 0, A_BOLD, "head-level relative error per query head (log scale)");
	int rows = c->h - 2;
	int barw = c->w - 36;
	if (rows < 1 || barw < 6) {
		draw_text(w, 1, 0, 0, "(no room for the bars)");
		return;
	}
	double lo = floor(log10(rep->eps)) - 1;
	int tolx = rep->tol > 0 ? bar_len(rep->tol, lo, barw) - 1 : -1;
	/* Keep the selected head in sight. */
	size_t first = 0;
	if (H > (size_t)rows && c->head >= (size_t)rows / 2) {
		first = c->head - (size_t)rows / 2;
		if (first + (size_t)rows > H)
			first = H - (size_t)rows;
	}
	for (int r = 0; r < rows && first + (size_t)r < H; r++) {
		size_t h = first + (size_t)r;
		int y = 1 + r;
		double he = rep->head_rel_err[h], se = rep->score_rel_err[h];
		int sel = h == c->head ? colors_attr(CLR_SELECT) : 0;
		draw_textf(w, y, 0, sel, "h%-3zu g%-3zu", h, G ? h / (H / G) : 0);
		int n = bar_len(he, lo, barw);
		int k = draw_heat_bucket(he, rep->eps);
		for (int i = 0; i < barw; i++) {
			int x = 10 + i;
			if (i < n) {
				if (colors_enabled())
					draw_text(w, y, x, colors_attr((ColorId)(CLR_HEAT0 + k)), " ");
				else
					draw_text(w, y, x, 0, colors_glyph(GLYPH_BAR));
			} else if (i == tolx) {
				draw_text(w, y, x, colors_attr(CLR_TOL), colors_glyph(GLYPH_TOLMARK));
			}
		}
		char a[16], b[16];
		draw_fmt_err(he, a, sizeof a);
		draw_fmt_err(se, b, sizeof b);
		bool hold = he <= rep->tol;
		draw_textf(w, y, 11 + barw, hold ? colors_attr(CLR_HOLDS) : colors_attr(CLR_EXPECTED),
			   "%s %-9s", colors_glyph(hold ? GLYPH_HOLDS : GLYPH_BREAKS), a);
		draw_textf(w, y, 22 + barw, colors_attr(CLR_DIM), "score %s", b);
	}
	if (H > (size_t)rows)
		draw_textf(w, c->h - 1, 0, colors_attr(CLR_DIM), "heads %zu-%zu of %zu ([ ] moves)",
			   first, first + (size_t)rows - 1, H);
	else
		draw_textf(w, c->h - 1, 0, colors_attr(CLR_DIM), "%s marks the tolerance %g",
			   colors_glyph(GLYPH_TOLMARK), rep->tol);
}

const View view_heads = {
	"heads", "heads", heads_draw, NULL, NULL,
	"per-head bars: head-level error of each query head, score error beside",
};
