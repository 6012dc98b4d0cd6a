#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string.h>

#include "core/pair_mix.h"
#include "tui/explorer/colors.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/views.h"

/* The y range in decades [lo, hi] that fits the values (relative errors
 * by offset), the tolerance and, for pair-mix, its saturation level: at
 * least two decades, never below the precision's roundoff floor. */
static void fit_range(const InvReport *rep, double ref, double sat, double *lo, double *hi)
{
	double vmin = INFINITY, vmax = 0;
	for (size_t o = 0; o < rep->seq; o++) {
		double v = rep->by_offset[o] / ref;
		if (isinf(rep->by_offset[o]))
			continue;
		if (v > 0 && v < vmin)
			vmin = v;
		if (v > vmax)
			vmax = v;
	}
	double floor_ = floor(log10(rep->eps)) - 1;
	double l = isfinite(vmin) ? floor(log10(vmin)) : floor_;
	double h = vmax > 0 ? ceil(log10(vmax)) : l + 1;
	if (rep->tol > 0) {
		double t = log10(rep->tol);
		l = fmin(l, floor(t));
		h = fmax(h, ceil(t + 1e-9));
	}
	if (sat > 0)
		h = fmax(h, ceil(log10(sat) + 1e-9));
	if (l < floor_)
		l = floor_;
	if (h <= l + 1)
		h = l + 2;
	if (h - l < 2)
		l = h - 2;
	*lo = l;
	*hi = h;
}

/* Score error by relative offset m - n as a bar plot on a log scale that
 * fits the data (decades labelled), the tolerance marked, and for a
 * pair-mix fold its predicted break offset and saturation 2 sin EPS. */
static void offset_draw(const ViewContext *c)
{
	const InvReport *rep = &c->res->rep;
	const Diagnostics *dg = &rep->diag;
	WINDOW *w = c->win;
	size_t T = rep->seq;
	double ref = rep->level[LEVEL_SCORE].ref_max;
	if (!(ref > 0))
		ref = 1;
	/* the title, shorter when the view is narrow (80 columns) */
	static const char *const title[] = {
		"max |score error| / max|score| by offset m - n (all heads)",
		"|score err| / max|score| by offset m - n, all heads",
		"|score err| by offset m - n",
	};
	int t = 0;
	while (t < 2 && (int)strlen(title[t]) > c->w)
		t++;
	draw_text(w, 0, 0, A_BOLD, title[t]);
	int ylab = 7, top = 1;
	bool mix = dg->mix_eps > 0;
	int ph = c->h - top - 1 - (mix ? 1 : 0);
	int pw = c->w - ylab;
	if (ph < 3 || pw < 8 || T == 0) {
		draw_text(w, 2, 0, 0, "(no room for the plot)");
		return;
	}
	double sat = mix ? 2.0 * sin(dg->mix_eps) : 0;
	double lo, hi;
	fit_range(rep, ref, sat, &lo, &hi);
	/* Cells: whole characters, half blocks (2 steps a row) or braille
	 * (4 steps a row, 2 columns of offsets a character). */
	CellStyle cells = draw_cells(c->set->cells);
	int sub = cells == CELLS_HALF ? 2 : cells == CELLS_BRAILLE ? 4 : 1;
	int dc = cells == CELLS_BRAILLE && (int)T > pw ? 2 : 1;
	int cols = (int)T < pw * dc ? (int)T : pw * dc;
	int cw = dc == 2 ? 1 : pw / cols;
	if (cw > 3)
		cw = 3;
	/* Row r (0 = top) covers the values 10^(hi - (r + 1) span) ..
	 * 10^(hi - r span); a value's bar fills the rows at or below it. */
	double span = (hi - lo) / ph;
	int tol_row = -1, sat_row = -1;
	if (rep->tol > 0) {
		tol_row = (int)floor((hi - log10(rep->tol)) / span);
		if (tol_row >= ph || tol_row < 0)
			tol_row = -1;
	}
	if (sat > 0) {
		sat_row = (int)floor((hi - log10(sat)) / span);
		if (sat_row >= ph || sat_row < 0 || sat_row == tol_row)
			sat_row = -1;
	}
	int brk_col = -1;
	if (mix && dg->mix_break && dg->mix_break < T)
		brk_col = (int)((size_t)dg->mix_break * (size_t)cols / T) / dc;
	/* Per column of offsets: its bar's height in steps (sub a row), its
	 * heat bucket, and the row of the closed form (pair-mix). */
	int *hs = calloc((size_t)cols * 3, sizeof(int));
	if (!hs) {
		draw_text(w, 2, 0, 0, "(out of memory)");
		return;
	}
	int *bk = hs + cols, *pr = hs + 2 * cols;
	for (int j = 0; j < cols; j++) {
		size_t o0 = (size_t)j * T / (size_t)cols, o1 = (size_t)(j + 1) * T / (size_t)cols;
		double v = 0;
		for (size_t o = o0; o < o1; o++)
			if (rep->by_offset[o] > v)
				v = rep->by_offset[o];
		double rel = isinf(v) ? v : v / ref;  /* Inf: an overflow */
		int height = 0;
		if (isinf(rel)) {  /* an overflow: the whole column */
			height = ph * sub;
		} else if (rel > 0) {
			height = (int)ceil((log10(rel) - lo) / span * sub);
			if (height > ph * sub)
				height = ph * sub;
			if (height < 1)
				height = 1;
		}
		hs[j] = height;
		bk[j] = draw_heat_bucket(rel, rep->eps);
		pr[j] = -1;
		if (mix && dg->npairs > 1) {
			double g = 0;
			for (size_t o = o0; o < o1; o++) {
				double x = pair_mix_growth(dg->freqs, dg->npairs, dg->mix_eps, (double)o);
				g = x > g ? x : g;
			}
			if (g > 0)
				pr[j] = ph - (int)ceil((log10(g) - lo) / span);
			if (pr[j] < 0 || pr[j] >= ph)
				pr[j] = -1;
		}
	}
	int chars = (cols + dc - 1) / dc;  /* character columns of bars */
	for (int jc = 0; jc < chars; jc++) {
		int j = jc * dc;
		for (int r = 0; r < ph; r++) {
			int y = top + r;
			int x = ylab + jc * cw;
			int base = (ph - 1 - r) * sub;  /* the steps below this row */
			int fill = hs[j] - base < 0 ? 0 : hs[j] - base > sub ? sub : hs[j] - base;
			int k = bk[j];
			const char *g = NULL;
			char gb[8];
			if (cells == CELLS_BRAILLE) {
				unsigned bits = 0;
				/* two offsets a character, or one in both dot columns */
				for (int d2 = 0; d2 < 2 && j + (dc == 2 ? d2 : 0) < cols; d2++) {
					int jj = j + (dc == 2 ? d2 : 0);
					int f = hs[jj] - base;
					f = f < 0 ? 0 : f > sub ? sub : f;
					for (int st = 0; st < f; st++)
						bits |= draw_braille_dot(3 - st, d2);
					k = bk[jj] > k ? bk[jj] : k;
				}
				if (bits)
					g = draw_braille(bits, gb, sizeof gb);
			} else if (cells == CELLS_HALF && fill) {
				g = fill == 2 ? "\u2588" : "\u2584";
			}
			if (g) {
				int a = colors_enabled() && k >= 0 ? colors_heat_halves(k, -1) : 0;
				draw_text(w, y, x, a, g);
				for (int i = 1; i < cw - 1; i++)
					draw_text(w, y, x + i, a, g);
				if (cw == 1)
					continue;
			}
			for (int i = g ? (cw > 1 ? cw - 1 : 1) : 0; i < cw; i++) {
				if (!g && sub == 1 && fill && i < (cw > 1 ? cw - 1 : 1)) {
					int a = colors_enabled() ? colors_attr((ColorId)(CLR_HEAT0 + k)) : 0;
					if (colors_enabled())
						draw_text(w, y, x + i, a, " ");
					else
						draw_text(w, y, x + i, 0, colors_glyph(GLYPH_BAR));
				} else if (r == pr[j] && i == 0) {
					draw_text(w, y, x + i, colors_attr(CLR_EXPECTED), "+");
				} else if (r == tol_row) {
					draw_text(w, y, x + i, colors_attr(CLR_TOL), "-");
				} else if (r == sat_row) {
					draw_text(w, y, x + i, colors_attr(CLR_DIM), ".");
				} else if (jc == brk_col && i == 0) {
					draw_text(w, y, x + i, colors_attr(CLR_EXPECTED), ":");
				}
			}
		}
	}
	free(hs);
	/* y axis: every decade that has a row of its own, labelled */
	int last = -2;
	for (double e = hi; e >= lo; e -= 1) {
		int r = (int)lround((hi - e) / span) - 1;
		if (r < 0)
			r = 0;
		if (r >= ph || r - last < 2)
			continue;
		draw_textf(w, top + r, 0, colors_attr(CLR_DIM), "1e%+03d", (int)e);
		last = r;
	}
	if (tol_row >= 0)
		draw_text(w, top + tol_row, 0, colors_attr(CLR_TOL), "tol   ");
	if (sat_row >= 0)
		draw_text(w, top + sat_row, 0, colors_attr(CLR_DIM), "2sinE ");
	draw_text(w, top + ph, ylab, colors_attr(CLR_DIM), "0");
	int plot_w = (cols + dc - 1) / dc * cw;
	if (plot_w >= 20)
		draw_text(w, top + ph, ylab + plot_w / 2 - 4, colors_attr(CLR_DIM), "offset m-n");
	draw_textf(w, top + ph, ylab + plot_w - 4, colors_attr(CLR_DIM), "%4zu", T - 1);
	if (brk_col >= 0)
		draw_text(w, top + ph, ylab + brk_col * cw, colors_attr(CLR_EXPECTED) | A_BOLD, "^");
	if (mix) {
		char b[96];
		if (dg->mix_break)
			snprintf(b, sizeof b, "pair-mix %.0e: + predicted, break near offset %zu%s",
				 dg->mix_eps, dg->mix_break, dg->mix_break >= T ? ", past T" : " (^)");
		else
			snprintf(b, sizeof b, "pair-mix %.0e: + predicted, saturates below tol",
				 dg->mix_eps);
		draw_text(w, top + ph + 1, 0, colors_attr(CLR_EXPECTED), b);
	}
}

const View view_offset = {
	"offset", "offset", offset_draw, NULL, NULL,
	"score error by relative offset m - n, log scale fitted to the data, tolerance marked",
};
