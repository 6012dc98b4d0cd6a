#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/explorer/colors.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/views.h"

/* Bucket of a relative error on the linear scale 0..top. */
static int linear_bucket(double rel, double top)
{
	if (rel < 0 || isnan(rel))
		return -1;
	if (isinf(rel) || !(top > 0))
		return isinf(rel) ? HEAT_LEVELS - 1 : 0;
	int k = (int)floor(rel / top * HEAT_LEVELS);
	return k < 0 ? 0 : (k >= HEAT_LEVELS ? HEAT_LEVELS - 1 : k);
}

/* The linear legend: bucket k covers [k, k+1) * top / HEAT_LEVELS. */
static void linear_legend(WINDOW *w, int y, int x, int rows, double top, double tol)
{
	if (rows < 2)
		return;
	draw_text(w, y, x, A_BOLD, "rel err, lin");
	int stride = rows - 1 >= HEAT_LEVELS ? 1 : 2;
	int tolb = linear_bucket(tol, top);
	int r = 1;
	for (int k = HEAT_LEVELS - 1; k >= 0 && r < rows; k -= stride, r++) {
		char e[24];
		snprintf(e, sizeof e, ">=%.2g", k * top / HEAT_LEVELS);
		draw_heat_cell(w, y + r, x, k, 2);
		draw_text(w, y + r, x + 3, 0, e);
		if (k == tolb || (stride == 2 && k - 1 == tolb))
			draw_text(w, y + r, x + 3 + (int)strlen(e) + 1, colors_attr(CLR_TOL), "tol");
	}
}

/* Score error over (m, n) for one head: rows are query tokens m, columns
 * key tokens n, each cell the worst |error| of its bins relative to the
 * largest original score, on a log (default) or linear color scale. The
 * masked half (n > m) stays blank; the worst cell is marked. */
static void heatmap_draw(const ViewContext *c)
{
	const InvReport *rep = &c->res->rep;
	WINDOW *w = c->win;
	size_t B = rep->heat_bins, T = rep->seq;
	bool linear = c->set->heat_linear;
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
	/* A square grid of S x S cells, each a block of bins, each cell ch
	 * rows by cw columns (larger on a large screen); in a UTF-8 locale
	 * with colors, when the bins outnumber the rows, cells are half a row
	 * tall (an upper half block over a lower one) and one column wide. A
	 * cell on the diagonal shows the exact m = n entries only (heat_diag),
	 * so the diagonal's survival is not hidden by its neighbours. */
	int S = (int)B < rows ? (int)B : rows;
	if (S > avail)
		S = avail;
	int ch = rows / S;
	if (ch > 4)
		ch = 4;
	int cw = 2 * ch;
	while (cw > 1 && cw * S > avail)
		cw--;
	if (cw < 2 * ch && ch > 1)
		ch = cw / 2 > 0 ? cw / 2 : 1;
	CellStyle cells = draw_cells(c->set->cells);
	bool halves = false, dots = false;
	if (cells == CELLS_BRAILLE) {
		/* 2 x 4 dots a character: S x S dots */
		int Sb = (int)B < 4 * rows ? (int)B : 4 * rows;
		if (Sb > 2 * avail)
			Sb = 2 * avail;
		dots = true;
		S = Sb;
		ch = 1;
		cw = 1;
	} else if (cells == CELLS_HALF || ((int)B > rows && cells == CELLS_AUTO &&
				     colors_enabled() && colors_heat_halves(0, -1))) {
		int Sh = (int)B < 2 * rows ? (int)B : 2 * rows;
		if (Sh > avail)
			Sh = avail;
		if (Sh > S) {
			halves = true;
			S = Sh;
			ch = 1;
			cw = 1;
		}
	}
	const double *heat = rep->heat + c->head * B * B;
	const double *diag = rep->heat_diag ? rep->heat_diag + c->head * B : NULL;
	/* val: S x S relative errors, -1 where masked (n > m or no bins) */
	double *val = malloc((size_t)S * (size_t)S * sizeof(double));
	if (!val) {
		draw_text(w, 2, 0, 0, "(out of memory)");
		return;
	}
	double vmax = 0;
	int wi = -1, wj = -1;
	for (int i = 0; i < S; i++) {
		size_t b0 = (size_t)i * B / (size_t)S, b1 = (size_t)(i + 1) * B / (size_t)S;
		for (int j = 0; j < S; j++) {
			size_t c0 = (size_t)j * B / (size_t)S, c1 = (size_t)(j + 1) * B / (size_t)S;
			double v = -1;
			for (size_t bi = b0; j <= i && bi < b1; bi++)
				for (size_t bj = c0; bj < c1; bj++) {
					double e = heat[bi * B + bj];
					if (i == j) {
						if (bi != bj)
							continue;
						if (diag)
							e = diag[bi];
					}
					if (e >= 0 && e > v)
						v = e;
				}
			double rel = v < 0 ? v : (isinf(v) ? v : v / ref);
			val[(size_t)i * S + j] = rel;
			if (rel >= 0 && (rel > vmax || wi < 0)) {
				vmax = rel > vmax ? rel : vmax;
				wi = i;
				wj = j;
			}
		}
	}
#define BUCKET(r) ((r) < 0 ? -1 : linear ? linear_bucket((r), vmax) : draw_heat_bucket((r), rep->eps))
	int xattr = colors_enabled() ? A_REVERSE | A_BOLD : A_REVERSE | A_BOLD;
	/* above the tolerance: a dot, or a half block in monochrome */
#define OVER(r) ((r) >= 0 && (r) > rep->tol)
	if (dots) {
		for (int i = 0; i < S; i += 4)
			for (int j = 0; j < S; j += 2) {
				unsigned bits = 0;
				int k = -1;
				for (int di = 0; di < 4 && i + di < S; di++)
					for (int dj = 0; dj < 2 && j + dj < S; dj++) {
						double r = val[(size_t)(i + di) * S + j + dj];
						int b = BUCKET(r);
						k = b > k ? b : k;
						if (OVER(r))
							bits |= draw_braille_dot(di, dj);
					}
				char g[8];
				int a = k >= 0 && colors_enabled() ? colors_heat_halves(k, -1) : 0;
				draw_text(w, top + i / 4, left + j / 2, a,
					  k < 0 ? " " : draw_braille(bits, g, sizeof g));
			}
		if (wi >= 0 && vmax > 0)
			draw_text(w, top + wi / 4, left + wj / 2, xattr, "X");
	} else if (halves && !colors_enabled()) {
		for (int i = 0; i < S; i += 2)
			for (int j = 0; j < S; j++) {
				double rt = val[(size_t)i * S + j];
				double rb = i + 1 < S ? val[(size_t)(i + 1) * S + j] : -1;
				static const char *const g[4] = {" ", "\u2580", "\u2584", "\u2588"};
				draw_text(w, top + i / 2, left + j, 0, g[OVER(rt) + 2 * OVER(rb)]);
			}
		if (wi >= 0 && vmax > 0)
			draw_text(w, top + wi / 2, left + wj, xattr, "X");
	} else if (halves) {
		for (int i = 0; i < S; i += 2)
			for (int j = 0; j < S; j++) {
				int kt = BUCKET(val[(size_t)i * S + j]);
				int kb = i + 1 < S ? BUCKET(val[(size_t)(i + 1) * S + j]) : -1;
				int y = top + i / 2, x = left + j;
				if (kt < 0 && kb < 0)
					draw_text(w, y, x, 0, " ");
				else if (kt < 0)
					draw_text(w, y, x, colors_heat_halves(kb, -1), "\u2584");
				else
					draw_text(w, y, x, colors_heat_halves(kt, kb), "\u2580");
			}
		if (wi >= 0 && vmax > 0)
			draw_text(w, top + wi / 2, left + wj, xattr, "X");
	} else {
		for (int i = 0; i < S; i++)
			for (int j = 0; j < S; j++) {
				int k = BUCKET(val[(size_t)i * S + j]);
				for (int y = 0; y < ch; y++)
					draw_heat_cell(w, top + i * ch + y, left + j * cw, k, cw);
				if (i == wi && j == wj && vmax > 0) {
					int a = colors_enabled() ? colors_attr((ColorId)(CLR_HEAT0 + k)) | A_BOLD
								 : A_REVERSE | A_BOLD;
					draw_text(w, top + i * ch + (ch - 1) / 2, left + j * cw + (cw - 1) / 2,
						  a, "X");
				}
			}
	}
#undef BUCKET
#undef OVER
	free(val);
	int R = dots ? (S + 3) / 4 : halves ? (S + 1) / 2 : S * ch;
	int C = dots ? (S + 1) / 2 : S * cw;
	/* Token labels: m down the left, n along the bottom. */
	draw_textf(w, top, 0, colors_attr(CLR_DIM), "%3d", 0);
	draw_textf(w, top + R - 1, 0, colors_attr(CLR_DIM), "%3zu", T - 1);
	draw_text(w, top + R / 2, 0, colors_attr(CLR_DIM), "  m");
	if (top + R < c->h) {
		draw_text(w, top + R, left, colors_attr(CLR_DIM), "0");
		draw_textf(w, top + R, left + C / 2 - 1, colors_attr(CLR_DIM), "n");
		draw_textf(w, top + R, left + C - 3, colors_attr(CLR_DIM), "%3zu", T - 1);
	}
	int lx = c->w - legend_w + 1;
	/* Dots and monochrome half blocks say only "over the tolerance":
	 * their legend says so, and the colors (if any) keep theirs. */
	bool binary = dots || (halves && !colors_enabled());
	const char *unit = dots ? "\u28ff rel > tol" : binary ? "\u2588 rel > tol" : "rel err";
	if (binary && !colors_enabled()) {
		char t[24];
		draw_text(w, top, lx, A_BOLD, unit);
		snprintf(t, sizeof t, "tol %.0e", rep->tol);
		draw_text(w, top + 1, lx, colors_attr(CLR_TOL), t);
	} else if (linear) {
		linear_legend(w, top, lx, c->h - top - 1, vmax, rep->tol);
	} else {
		draw_heat_legend(w, top, lx, c->h - top - 1, rep->eps, rep->tol, unit);
	}
	if (wi >= 0 && vmax > 0) {
		char e[16];
		draw_fmt_err(vmax, e, sizeof e);
		draw_textf(w, c->h - 1, lx, colors_attr(CLR_DIM), "X max %s", e);
	}
}

const View view_heatmap = {
	"heatmap", "heatmap", heatmap_draw, NULL, NULL,
	"score error over (m, n) for the selected head, log or linear (L) color scale, worst cell X",
};
