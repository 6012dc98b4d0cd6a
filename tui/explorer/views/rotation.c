#include "config.h"

#include <math.h>
#include <stdio.h>

#include "core/rope.h"
#include "tui/explorer/colors.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/views.h"

/* The rotation view: R_q (and R_k, R_v) of the selected head drawn as a
 * matrix whose coordinates are ordered by RoPE pair (pair i's two
 * coordinates side by side, the non-rotary block last), so that a
 * rotation commuting with RoPE shows as 2x2 blocks on the diagonal and a
 * Haar matrix as noise. Each cell is |R_ab| on five shades; empty cells
 * inside a diagonal pair block are dotted, so the blocks stay visible;
 * the frequency of each pair labels its rows. In compare mode the
 * matrices are the ones verify recovered from B. */

#define MAX_D 4096

/* Coordinate k of the pair order: pair i = k / 2 (first or second of
 * it), the non-rotary coordinates after the r rotary ones. */
static size_t coord_of(size_t k, RopeLayout layout, size_t r)
{
	if (k >= r)
		return k;
	size_t i = k / 2, second = k % 2;
	return layout == ROPE_INTERLEAVED ? 2 * i + second : i + second * (r / 2);
}

/* A shade of |v| in [0, 1]. */
static const char *shade(double v)
{
	static const char *const ascii[] = {" ", "-", ":", "+", "#"};
	static const char *const utf8[] = {" ", "\u2591", "\u2592", "\u2593", "\u2588"};
	int i = v < 0.05 ? 0 : v < 0.25 ? 1 : v < 0.5 ? 2 : v < 0.75 ? 3 : 4;
	return colors_utf8() ? utf8[i] : ascii[i];
}

/* One matrix R (d x d, row-major) at (y, x) in a box of rows x cols
 * cells, pooled (max |R|) when it does not fit; returns columns used. */
static int draw_matrix(WINDOW *w, int y, int x, int rows, int cols, const double *R, size_t d,
		       RopeLayout layout, size_t r, const char *title)
{
	/* square cells: rows and columns pooled alike; two columns a cell
	 * when they fit, so the blocks look square */
	int n = (int)d < rows ? (int)d : rows;
	if (cols < n)
		n = cols;
	int m = n;
	int cw = 2 * m <= cols ? 2 : 1;
	draw_text(w, y - 1, x, A_BOLD | colors_attr(CLR_PANEL), title);
	for (int i = 0; i < n; i++) {
		size_t a0 = (size_t)i * d / (size_t)n, a1 = (size_t)(i + 1) * d / (size_t)n;
		for (int j = 0; j < m; j++) {
			size_t b0 = (size_t)j * d / (size_t)m, b1 = (size_t)(j + 1) * d / (size_t)m;
			double v = 0;
			bool diag_block = false, tail = false;
			for (size_t a = a0; a < a1; a++)
				for (size_t b = b0; b < b1; b++) {
					double e = fabs(R[coord_of(a, layout, r) * d + coord_of(b, layout, r)]);
					if (e > v)
						v = e;
					if (a < r && b < r && a / 2 == b / 2)
						diag_block = true;
					if (a >= r || b >= r)
						tail = true;
				}
			const char *s = shade(v);
			int attr = 0;
			if (s[0] == ' ' && diag_block) {
				s = colors_utf8() ? "\u00b7" : ".";
				attr = colors_attr(CLR_DIM);
			} else if (s[0] == ' ' && tail) {
				s = colors_utf8() ? "\u00b7" : ",";
				attr = colors_attr(CLR_DIM);
			} else if (!diag_block && !tail && v >= 0.05) {
				attr = colors_attr(CLR_EXPECTED);  /* mixes two pairs */
			}
			for (int k = 0; k < cw; k++)
				draw_text(w, y + i, x + j * cw + k, attr, s);
		}
	}
	return m * cw;
}

static void rotation_draw(const ViewContext *c)
{
	WINDOW *w = c->win;
	const EvalResult *res = c->res;
	const LayerInfo *li = &res->info;
	size_t d = li->shape.head_dim, r = li->rope.rotary_dim;
	size_t H = li->shape.n_heads, G = li->shape.n_kv_heads;
	size_t h = c->head < H ? c->head : 0, g = h / (H / G);
	bool cmp = res->cmp.on;
	if (!res->rq || !res->rk || !res->rv || d == 0 || d > MAX_D) {
		draw_text(w, 0, 0, 0, "(no rotations to show)");
		return;
	}
	char part = c->set->rot_part ? c->set->rot_part : 'q';
	draw_textf(w, 0, 0, A_BOLD, "head %zu, group %zu: %s R by RoPE pair%s", h, g,
		   cmp ? "recovered" : "folded", r < d ? " (nr: non-rotary)" : "");
	if (cmp && !res->cmp.equivalent && res->cmp.brk_tensor[0])
		draw_textf(w, 1, 0, colors_attr(CLR_DIM), "verify stopped at %s%s: what it had not "
			   "reached is the identity", res->cmp.brk_tensor,
			   res->cmp.brk_group == (size_t)-1 ? "" : " of a group");
	const Diagnostics *dg = &res->rep.diag;
	int label_w = 10;
	int top = 3, rows = c->h - top;
	if (rows < 2 || c->w < label_w + 8) {
		draw_text(w, 1, 0, 0, "(no room for the matrix)");
		return;
	}
	const double *mats[3] = {res->rq + h * d * d, res->rk + g * d * d, res->rv + g * d * d};
	const char *names[3] = {"R_q", "R_k", "R_v"};
	int avail = c->w - label_w - 12;
	int per = part == 'a' ? (avail - 4) / 3 : avail;
	if (part == 'a' && per < 8) {
		part = 'q';
		per = avail;
	}
	/* Pair labels: "p0 1", "p1 0.32", ... on the first row of each pair. */
	int n = (int)d < rows ? (int)d : rows;
	if (per < n)
		n = per;
	int last_pair = -1;
	for (int i = 0; i < n; i++) {
		size_t a = (size_t)i * d / (size_t)n;
		if (a >= r) {
			if (last_pair != -2)
				draw_text(w, top + i, 0, colors_attr(CLR_DIM), "nr");
			last_pair = -2;
			continue;
		}
		int p = (int)(a / 2);
		if (p != last_pair && dg->freqs && (size_t)p < dg->npairs) {
			double f = dg->freqs[p];
			draw_textf(w, top + i, 0, colors_attr(CLR_DIM), f >= 0.01 ? "p%-2d%6.2g" : "p%-2d%6.0e",
				   p, f);
		}
		last_pair = p;
	}
	int x = label_w;
	for (int k = 0; k < 3; k++) {
		if (part != 'a' && names[k][2] != part)
			continue;
		char title[24];
		snprintf(title, sizeof title, "%s", names[k]);
		x += draw_matrix(w, top, x, rows, per, mats[k], d, li->rope.layout, r, title) + 3;
	}
	/* the shades, and what the marks mean */
	int lx = c->w - 11;
	static const double lv[] = {0.9, 0.6, 0.3, 0.1};
	static const char *const lt[] = {">=.75", ">=.5", ">=.25", ">=.05"};
	for (int i = 0; i < 4 && top + i < c->h; i++) {
		draw_text(w, top + i, lx, 0, shade(lv[i]));
		draw_text(w, top + i, lx + 2, colors_attr(CLR_DIM), lt[i]);
	}
	if (top + 5 < c->h)
		draw_text(w, top + 5, lx, colors_attr(CLR_DIM), colors_utf8() ? "\u00b7 pair" : ". pair");
	if (top + 6 < c->h)
		draw_text(w, top + 6, lx, colors_attr(CLR_EXPECTED), "mixes");
	if (top + 8 < c->h)
		draw_textf(w, top + 8, lx, colors_attr(CLR_DIM), ":rotation");
	if (top + 9 < c->h)
		draw_textf(w, top + 9, lx, colors_attr(CLR_DIM), " q k v all");
}

const View view_rotation = {
	"rotation", "rotation", rotation_draw, NULL, NULL,
	"the selected head's R_q, R_k, R_v by RoPE pair (':rotation q|k|v|all')",
};
