#include "config.h"

#include <math.h>

#include "tui/explorer/colors.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/views.h"

/* Length in eighths of a cell of a relative error on a log bar of n
 * cells from 10^lo to 10^hi (at least one cell when positive). */
static int bar_len8(double rel, double lo, double hi, int n)
{
	if (!(rel > 0))
		return 0;
	if (isinf(rel))  /* an overflow: the whole bar */
		return 8 * n;
	double f = (log10(rel) - lo) / (hi - lo);
	int k = (int)ceil(f * n * 8);
	return k < 8 ? 8 : (k > 8 * n ? 8 * n : k);
}

/* Whole cells of the same. */
static int bar_len(double rel, double lo, double hi, int n)
{
	return (bar_len8(rel, lo, hi, n) + 7) / 8;
}

/* The last, partial cell of a bar: eighth blocks in UTF-8, a '+' for at
 * least half a cell in ASCII. */
static const char *partial_glyph(int eighths)
{
	static const char *const utf8[8] = {"", "\u258f", "\u258e", "\u258d", "\u258c",
					    "\u258b", "\u258a", "\u2589"};
	if (colors_utf8())
		return utf8[eighths & 7];
	return (eighths & 7) >= 4 ? "+" : "";
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
	/* The scale fits the errors: from the roundoff floor (or a decade
	 * under the smallest error and the tolerance) to a decade over the
	 * largest, so errors near 1 stay apart (0.45 and 1.41 differ). */
	double lo = floor(log10(rep->eps)) - 1, top = rep->tol;
	double small = rep->tol > 0 ? rep->tol : 1;
	for (size_t h = 0; h < H; h++) {
		double e[2] = {rep->head_rel_err[h], rep->score_rel_err[h]};
		for (int i = 0; i < 2; i++) {
			if (e[i] > top && !isinf(e[i]))
				top = e[i];
			if (e[i] > 0 && e[i] < small)
				small = e[i];
		}
	}
	double hi = top > 0 ? ceil(log10(top) + 1e-9) : 0;
	if (floor(log10(small)) - 1 > lo)
		lo = floor(log10(small)) - 1;
	if (hi < lo + 2)
		hi = lo + 2;
	int tolx = rep->tol > 0 ? bar_len(rep->tol, lo, hi, barw) - 1 : -1;
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
		int n8 = bar_len8(he, lo, hi, barw), n = n8 / 8;
		int k = draw_heat_bucket(he, rep->eps);
		for (int i = 0; i < barw; i++) {
			int x = 10 + i;
			if (i == n && (n8 & 7)) {
				int a = colors_enabled() ? colors_attr((ColorId)(CLR_HEAT0 + k)) | A_REVERSE : 0;
				draw_text(w, y, x, a, partial_glyph(n8));
			}
			if (i < n) {
				if (colors_enabled())
					draw_text(w, y, x, colors_attr((ColorId)(CLR_HEAT0 + k)), " ");
				else
					draw_text(w, y, x, 0, colors_glyph(GLYPH_BAR));
			}
			if (i == tolx)  /* over the bar too: always in sight */
				draw_text(w, y, x, colors_attr(CLR_TOL) | (i < n ? A_REVERSE : 0),
					  colors_glyph(GLYPH_TOLMARK));
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
		draw_textf(w, c->h - 1, 0, colors_attr(CLR_DIM), "%s marks the tolerance %g; bars 1e%+03d to 1e%+03d",
			   colors_glyph(GLYPH_TOLMARK), rep->tol, (int)lo, (int)hi);
}

const View view_heads = {
	"heads", "heads", heads_draw, NULL, NULL,
	"per-head bars: head-level error of each query head, score error beside",
};
