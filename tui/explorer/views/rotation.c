#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

/* The window of the matrix a view shows: coordinates [off, off + n * k)
 * of the pair order in rows and columns alike, k coordinates a cell
 * (k = 1, or even, so that a pooled cell never splits a pair). */
typedef struct {
	size_t off, k;
	int n;       /* cells per side */
	int cw;      /* columns a cell: 2 when they fit (square blocks) */
} Window;

/* The window for a box of rows x cols cells: the whole matrix, pooled
 * by the smallest k that fits (fit), or one coordinate a cell from the
 * first coordinate asked (full), clamped so that the window is full. */
static Window window_of(size_t d, int rows, int cols, bool full, size_t off)
{
	Window v = {0, 1, 0, 1};
	int side = rows < cols ? rows : cols;
	if (side < 1)
		side = 1;
	if (!full) {
		/* one coordinate a cell when it fits, else whole pairs a cell */
		if (d > (size_t)side)
			v.k = 2 * ((d / 2 + (size_t)side - 1) / (size_t)side);
		v.n = (int)((d + v.k - 1) / v.k);
	} else {
		v.n = (size_t)side < d ? side : (int)d;
		if (v.n > 1)
			v.n &= ~1;  /* whole pairs */
		v.off = off + (size_t)v.n > d ? d - (size_t)v.n : off;
		v.off &= ~(size_t)1;
	}
	v.cw = 2 * v.n <= cols ? 2 : 1;
	return v;
}

/* One matrix R (d x d, row-major) in window v at (y, x); returns the
 * columns used. */
static int draw_matrix(WINDOW *w, int y, int x, const Window *v, const double *R, size_t d,
		       RopeLayout layout, size_t r)
{
	for (int i = 0; i < v->n; i++) {
		size_t a0 = v->off + (size_t)i * v->k, a1 = a0 + v->k < d ? a0 + v->k : d;
		for (int j = 0; j < v->n; j++) {
			size_t b0 = v->off + (size_t)j * v->k, b1 = b0 + v->k < d ? b0 + v->k : d;
			double e = 0;
			bool diag_block = false, tail = false;
			for (size_t a = a0; a < a1; a++)
				for (size_t b = b0; b < b1; b++) {
					double t = fabs(R[coord_of(a, layout, r) * d + coord_of(b, layout, r)]);
					if (t > e)
						e = t;
					if (a < r && b < r && a / 2 == b / 2)
						diag_block = true;
					if (a >= r || b >= r)
						tail = true;
				}
			const char *s = shade(e);
			int attr = 0;
			if (s[0] == ' ' && diag_block) {
				s = colors_utf8() ? "\u00b7" : ".";
				attr = colors_attr(CLR_DIM);
			} else if (s[0] == ' ' && tail) {
				s = colors_utf8() ? "\u00b7" : ",";
				attr = colors_attr(CLR_DIM);
			} else if (!diag_block && !tail && e >= 0.05) {
				attr = colors_attr(CLR_EXPECTED);  /* mixes two pairs */
			}
			for (int c = 0; c < v->cw; c++)
				draw_text(w, y + i, x + j * v->cw + c, attr, s);
		}
	}
	return v->n * v->cw;
}

/* A pair's frequency in at most 5 columns: "1", "0.32", "3e-03". */
static void fmt_freq(double f, char *buf, size_t n)
{
	if (f >= 0.01)
		snprintf(buf, n, "%.2g", f);
	else
		snprintf(buf, n, "%.0e", f);
}

/* The row labels: the pair (and its frequency) where a pair starts in
 * the window, "nr" where the non-rotary block does, in lw columns. */
static void draw_row_labels(WINDOW *w, int y, int lw, const Window *v, size_t r,
			    const Diagnostics *dg)
{
	for (int i = 0; i < v->n; i++) {
		size_t a = v->off + (size_t)i * v->k;
		bool first_row = i == 0;
		if (a >= r) {
			if (first_row || a - v->k < r)
				draw_text(w, y + i, 0, colors_attr(CLR_DIM), "nr");
			continue;
		}
		if (a % 2 && !first_row)
			continue;  /* a pair's second coordinate: its label is above */
		char lab[32], f[16] = "";
		size_t p = a / 2;
		if (dg->freqs && p < dg->npairs)
			fmt_freq(dg->freqs[p], f, sizeof f);
		if (v->k > 2)
			snprintf(lab, sizeof lab, "p%zu-%zu", p, (a + v->k < r ? a + v->k : r) / 2 - 1);
		else
			snprintf(lab, sizeof lab, "p%zu", p);
		/* the frequency only when it fits beside the pair's name */
		if (strlen(lab) + 1 + strlen(f) <= (size_t)lw - 1)
			draw_textf(w, y + i, 0, colors_attr(CLR_DIM), "%s%*s", lab,
				   lw - 1 - (int)strlen(lab), f);
		else
			draw_text(w, y + i, 0, colors_attr(CLR_DIM), lab);
	}
}

/* The column header: each pair's number where a pair starts and there is
 * room for it, so the columns can be read off as well as the rows. */
static void draw_col_labels(WINDOW *w, int y, int x, const Window *v, size_t r)
{
	int end = x - 2;  /* the last column written */
	for (int j = 0; j < v->n; j++) {
		size_t b = v->off + (size_t)j * v->k;
		int cx = x + j * v->cw;
		char lab[32];
		if (b >= r) {
			if (j == 0 || b - v->k < r)
				snprintf(lab, sizeof lab, "nr");
			else
				continue;
		} else if (b % 2 == 0 || j == 0) {
			snprintf(lab, sizeof lab, "%zu", b / 2);
		} else {
			continue;
		}
		int len = (int)strlen(lab);
		if (cx <= end + 1)
			continue;
		if (cx + len > x + v->n * v->cw)
			break;
		draw_text(w, y, cx, colors_attr(CLR_DIM), lab);
		end = cx + len;
	}
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
	char head[160];
	snprintf(head, sizeof head, "head %zu, group %zu: %s R by RoPE pair", h, g,
		 cmp ? "recovered" : "folded");
	int y0 = draw_wrap(w, 0, 0, c->w, 2, A_BOLD, head);
	if (cmp && !res->cmp.equivalent && res->cmp.brk_tensor[0]) {
		char note[160];
		snprintf(note, sizeof note, "verify stopped at %s%s: past it, R = I",
			 res->cmp.brk_tensor, res->cmp.brk_group == (size_t)-1 ? "" : " of a group");
		y0 += draw_wrap(w, y0, 0, c->w, 2, colors_attr(CLR_DIM), note);
	}
	const Diagnostics *dg = &res->rep.diag;
	/* Columns: row labels, the matrices, the legend; rows: the header,
	 * the matrix titles with the column pairs, the cells, the window's
	 * line at the bottom. */
	int label_w = d / 2 > 100 ? 12 : d / 2 > 10 ? 10 : 9;
	int legend_w = 11;
	int top = y0 + 1, rows = c->h - top - 1;
	int avail = c->w - label_w - legend_w - 1;
	if (rows < 2 || avail < 8) {
		draw_text(w, y0, 0, 0, "(no room for the matrix: z gives it the screen)");
		return;
	}
	const double *mats[3] = {res->rq + h * d * d, res->rk + g * d * d, res->rv + g * d * d};
	const char *names[3] = {"R_q", "R_k", "R_v"};
	int per = part == 'a' ? (avail - 4) / 3 : avail;
	if (part == 'a' && per < 8) {
		part = 'q';
		per = avail;
	}
	Window v = window_of(d, rows, per, c->set->rot_full, c->set->rot_off);
	draw_row_labels(w, top, label_w, &v, r, dg);
	int x = label_w;
	for (int k = 0; k < 3; k++) {
		if (part != 'a' && names[k][2] != part)
			continue;
		/* one matrix: its name over the row labels; three: over each */
		int tx = part == 'a' ? x : 0;
		draw_text(w, top - 1, tx, A_BOLD | colors_attr(CLR_PANEL), names[k]);
		if (part != 'a')
			draw_col_labels(w, top - 1, x, &v, r);
		x += draw_matrix(w, top, x, &v, mats[k], d, li->rope.layout, r) + 2;
	}
	/* which coordinates the window shows, and how to change it */
	char line[160];
	size_t last = v.off + (size_t)v.n * v.k;
	if (last > d)
		last = d;
	if (v.k > 1)
		snprintf(line, sizeof line, "all %zu coords, %zu a cell (max|R|); PgDn: 1 a cell", d, v.k);
	else if (v.off == 0 && last == d)
		snprintf(line, sizeof line, "all %zu coords, 1 a cell", d);
	else
		snprintf(line, sizeof line, "coords %zu-%zu of %zu; PgUp/PgDn scroll, Home: all",
			 v.off, last - 1, d);
	draw_wrap(w, c->h - 1, 0, c->w, 1, colors_attr(CLR_DIM), line);
	/* the shades, and what the marks mean */
	int lx = c->w - legend_w;
	static const double lv[] = {0.9, 0.6, 0.3, 0.1};
	static const char *const lt[] = {">=.75", ">=.5", ">=.25", ">=.05"};
	int ly = top;
	for (int i = 0; i < 4 && ly < c->h - 1; i++, ly++) {
		draw_text(w, ly, lx, 0, shade(lv[i]));
		draw_text(w, ly, lx + 2, colors_attr(CLR_DIM), lt[i]);
	}
	if (ly < c->h - 1)
		draw_text(w, ly++, lx, colors_attr(CLR_DIM), colors_utf8() ? "\u00b7 pair" : ". pair");
	if (ly < c->h - 1)
		draw_text(w, ly++, lx, colors_attr(CLR_EXPECTED), "mixes");
	if (r < d && ly < c->h - 1)
		draw_text(w, ly++, lx, colors_attr(CLR_DIM), "nr no rope");
	if (ly + 1 < c->h - 1)
		draw_text(w, ++ly, lx, colors_attr(CLR_DIM), ":rotation");
	if (ly + 1 < c->h - 1)
		draw_text(w, ++ly, lx, colors_attr(CLR_DIM), " q k v all");
}

const View view_rotation = {
	"rotation", "rotation", rotation_draw, NULL, NULL,
	"the selected head's R_q, R_k, R_v by RoPE pair (':rotation q|k|v|all', PgDn/PgUp/Home)",
};
