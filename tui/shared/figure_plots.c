#include "config.h"

#include <math.h>
#include <stdio.h>

#include "core/pair_mix.h"
#include "tui/shared/figure_impl.h"

/* ---- shared pieces ----------------------------------------------------- */

static void font(cairo_t *cr, double size, bool bold)
{
	cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
			       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
}

/* Text at (x, y) aligned by ax (0 left, 0.5 centre, 1 right) on its
 * baseline. */
static void text(cairo_t *cr, double x, double y, double ax, const char *s)
{
	cairo_text_extents_t e;
	cairo_text_extents(cr, s, &e);
	cairo_move_to(cr, x - ax * e.x_advance, y);
	cairo_show_text(cr, s);
}

static void rgb(cairo_t *cr, unsigned hex)
{
	cairo_set_source_rgb(cr, ((hex >> 16) & 255) / 255.0, ((hex >> 8) & 255) / 255.0,
			     (hex & 255) / 255.0);
}

/* A perceptual ramp (dark blue, teal, green, yellow) at t in [0, 1]. */
static void ramp(cairo_t *cr, double t)
{
	static const double stop[5][3] = {
		{0.267, 0.005, 0.329}, {0.229, 0.322, 0.546}, {0.128, 0.567, 0.551},
		{0.369, 0.789, 0.383}, {0.993, 0.906, 0.144},
	};
	t = t < 0 ? 0 : (t > 1 ? 1 : t);
	double u = t * 4;
	int i = (int)floor(u);
	if (i >= 4)
		i = 3;
	double f = u - i;
	cairo_set_source_rgb(cr, stop[i][0] + f * (stop[i + 1][0] - stop[i][0]),
			     stop[i][1] + f * (stop[i + 1][1] - stop[i][1]),
			     stop[i][2] + f * (stop[i + 1][2] - stop[i][2]));
}

static void dash(cairo_t *cr, double on)
{
	double d[2] = {on, on};
	cairo_set_dash(cr, on > 0 ? d : NULL, on > 0 ? 2 : 0, 0);
}

static void panel_title(cairo_t *cr, FigBox b, const char *s)
{
	font(cr, 14, true);
	rgb(cr, 0x202020);
	text(cr, b.x + b.w / 2, b.y + 20, 0.5, s);
}

/* The decade range [lo, hi] that holds every positive finite v[0..n-1]
 * (stride apart) and the extra levels, never below floor_. */
static void decades(const double *v, size_t n, size_t stride, double scale, const double *extra,
		    size_t nextra, double floor_, double *lo, double *hi)
{
	double mn = INFINITY, mx = 0;
	for (size_t i = 0; i < n; i++) {
		double x = v[i * stride] / scale;
		if (x > 0 && isfinite(x)) {
			mn = x < mn ? x : mn;
			mx = x > mx ? x : mx;
		}
	}
	for (size_t i = 0; i < nextra; i++)
		if (extra[i] > 0) {
			mn = extra[i] < mn ? extra[i] : mn;
			mx = extra[i] > mx ? extra[i] : mx;
		}
	*lo = isfinite(mn) ? floor(log10(mn)) : floor_;
	*hi = mx > 0 ? ceil(log10(mx) + 1e-9) : *lo + 1;
	if (*lo < floor_)
		*lo = floor_;
	if (*hi < *lo + 2)
		*hi = *lo + 2;
}

/* Tick labels of decade e. */
static void decade_label(char *buf, size_t n, double e)
{
	snprintf(buf, n, "1e%+03d", (int)e);
}

/* A nice step for a linear axis of n units with about k ticks. */
static size_t nice_step(size_t n, size_t k)
{
	size_t steps[] = {1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
		if (n / steps[i] <= k)
			return steps[i];
	return n / k + 1;
}

/* ---- the offset curve -------------------------------------------------- */

void figure_draw_offset(cairo_t *cr, const FigureInput *in, FigBox b)
{
	const InvReport *rep = in->rep;
	const Diagnostics *dg = &rep->diag;
	size_t T = rep->seq;
	double ref = rep->level[LEVEL_SCORE].ref_max;
	if (!(ref > 0))
		ref = 1;
	panel_title(cr, b, "score error by offset m - n (all heads)");
	double sat = dg->mix_eps > 0 ? 2 * sin(dg->mix_eps) : 0;
	double extra[2] = {rep->tol, sat};
	double lo, hi;
	decades(rep->by_offset, T, 1, ref, extra, 2, floor(log10(rep->eps)) - 1, &lo, &hi);
	double px = b.x + 78, py = b.y + 36, pw = b.w - 100, ph = b.h - 96;
	double xmax = T > 1 ? (double)(T - 1) : 1;
#define XO(o) (px + pw * (double)(o) / xmax)
#define YV(v) (py + ph * (hi - log10(v)) / (hi - lo))
	/* grid and decade labels */
	cairo_set_line_width(cr, 0.6);
	font(cr, 11, false);
	for (double e = lo; e <= hi + 1e-9; e += 1) {
		double y = py + ph * (hi - e) / (hi - lo);
		rgb(cr, 0xdddddd);
		cairo_move_to(cr, px, y);
		cairo_line_to(cr, px + pw, y);
		cairo_stroke(cr);
		char s[16];
		decade_label(s, sizeof s, e);
		rgb(cr, 0x404040);
		text(cr, px - 6, y + 4, 1, s);
	}
	size_t step = nice_step(T, 8);
	for (size_t o = 0; o < T; o += step) {
		char s[24];
		snprintf(s, sizeof s, "%zu", o);
		rgb(cr, 0x404040);
		text(cr, XO(o), py + ph + 16, 0.5, s);
	}
	text(cr, px + pw / 2, py + ph + 34, 0.5, "offset m - n");
	cairo_save(cr);
	cairo_translate(cr, b.x + 16, py + ph / 2);
	cairo_rotate(cr, -M_PI / 2);
	text(cr, 0, 0, 0.5, "max |score error| / max |score|");
	cairo_restore(cr);
	rgb(cr, 0x404040);
	cairo_set_line_width(cr, 1);
	cairo_rectangle(cr, px, py, pw, ph);
	cairo_stroke(cr);
	/* the tolerance, the saturation and the predicted break */
	cairo_set_line_width(cr, 1.4);
	if (rep->tol > 0) {
		rgb(cr, 0xc0392b);
		dash(cr, 6);
		cairo_move_to(cr, px, YV(rep->tol));
		cairo_line_to(cr, px + pw, YV(rep->tol));
		cairo_stroke(cr);
		char s[48];
		snprintf(s, sizeof s, "tolerance %.3g", rep->tol);
		text(cr, px + pw - 4, YV(rep->tol) - 4, 1, s);
	}
	if (sat > 0) {
		rgb(cr, 0x7f8c8d);
		dash(cr, 2);
		cairo_move_to(cr, px, YV(sat));
		cairo_line_to(cr, px + pw, YV(sat));
		cairo_stroke(cr);
		char s[64];
		snprintf(s, sizeof s, "saturation 2 sin EPS (pair-mix %.3g)", dg->mix_eps);
		text(cr, px + 4, YV(sat) - 4, 0, s);
	}
	if (dg->mix_eps > 0 && dg->mix_break && dg->mix_break < T) {
		rgb(cr, 0xe67e22);
		dash(cr, 4);
		cairo_move_to(cr, XO(dg->mix_break), py);
		cairo_line_to(cr, XO(dg->mix_break), py + ph);
		cairo_stroke(cr);
		char s[48];
		snprintf(s, sizeof s, "predicted break %zu", dg->mix_break);
		text(cr, XO(dg->mix_break) + 4, py + 14, 0, s);
	}
	/* pair-mix: the commutator's closed form beside the measured curve */
	if (dg->mix_eps > 0 && dg->npairs > 1) {
		rgb(cr, 0xe67e22);
		dash(cr, 3);
		cairo_set_line_width(cr, 1.2);
		bool on = false;
		for (size_t k = 1; k <= 400; k++) {
			double o = xmax * (double)k / 400;
			double g = pair_mix_growth(dg->freqs, dg->npairs, dg->mix_eps, o);
			if (!(g > 0)) {
				on = false;
				continue;
			}
			double y = YV(g);
			y = y < py ? py : (y > py + ph ? py + ph : y);
			if (on)
				cairo_line_to(cr, XO(o), y);
			else
				cairo_move_to(cr, XO(o), y);
			on = true;
		}
		cairo_stroke(cr);
		font(cr, 11, false);
		text(cr, px + pw - 4, py + ph - 8, 1,
		     "dashed: 2 sin(EPS) max |sin((w_i - w_j) p / 2)|, the commutator's norm");
	}
	dash(cr, 0);
	/* the curve: zeros and overflows drawn on the frame, hollow */
	rgb(cr, 0x1f4e79);
	cairo_set_line_width(cr, 1.6);
	bool pen = false;
	for (size_t o = 0; o < T; o++) {
		double v = rep->by_offset[o] / ref;
		if (!(v > 0) || !isfinite(v)) {
			pen = false;
			continue;
		}
		double y = YV(v);
		y = y < py ? py : (y > py + ph ? py + ph : y);
		if (pen)
			cairo_line_to(cr, XO(o), y);
		else
			cairo_move_to(cr, XO(o), y);
		pen = true;
	}
	cairo_stroke(cr);
	for (size_t o = 0; o < T && T <= 256; o++) {
		double v = rep->by_offset[o] / ref;
		bool real = v > 0 && isfinite(v);
		double y = real ? YV(v) : (isinf(v) ? py : py + ph);
		y = y < py ? py : (y > py + ph ? py + ph : y);
		cairo_arc(cr, XO(o), y, 2.6, 0, 2 * M_PI);
		if (real)
			cairo_fill(cr);
		else
			cairo_stroke(cr);
	}
#undef XO
#undef YV
}

/* ---- the heatmap ------------------------------------------------------- */

/* The color of a relative error: log from the precision's roundoff to 1,
 * or linear from 0 to top. */
static void heat_color(cairo_t *cr, double rel, bool linear, double lo, double top)
{
	if (isinf(rel)) {
		rgb(cr, 0xc0392b);
		return;
	}
	if (linear)
		ramp(cr, top > 0 ? rel / top : 0);
	else
		ramp(cr, rel > 0 ? (log10(rel) - lo) / (0 - lo) : 0);
}

void figure_draw_heatmap(cairo_t *cr, const FigureInput *in, FigBox b)
{
	const InvReport *rep = in->rep;
	size_t B = rep->heat_bins, T = rep->seq, h = in->head < rep->n_heads ? in->head : 0;
	double ref = rep->level[LEVEL_SCORE].ref_max;
	if (!(ref > 0))
		ref = 1;
	char t[96];
	snprintf(t, sizeof t, "score error over (m, n), head %zu of %zu%s", h, rep->n_heads,
		 in->heat_linear ? " (linear)" : "");
	panel_title(cr, b, t);
	const double *heat = rep->heat + h * B * B;
	const double *diag = rep->heat_diag ? rep->heat_diag + h * B : NULL;
	double lo = floor(log10(rep->eps));
	double side = b.h - 90, px = b.x + 60, py = b.y + 36;
	double cell = side / (double)B;
	/* the values, the top and the worst bin */
	double top = 0;
	size_t wi = 0, wj = 0;
	bool any = false;
	for (size_t i = 0; i < B; i++)
		for (size_t j = 0; j <= i; j++) {
			double v = (i == j && diag) ? diag[i] : heat[i * B + j];
			if (v < 0)
				continue;
			double rel = isinf(v) ? v : v / ref;
			if (!any || rel > top) {
				top = rel;
				wi = i;
				wj = j;
				any = true;
			}
		}
	double ltop = isinf(top) ? 1 : top;
	for (size_t i = 0; i < B; i++)
		for (size_t j = 0; j < B; j++) {
			double v = j > i ? -1 : (i == j && diag) ? diag[i] : heat[i * B + j];
			if (v < 0) {
				rgb(cr, 0xf4f4f4);
			} else {
				heat_color(cr, isinf(v) ? v : v / ref, in->heat_linear, lo, ltop);
			}
			cairo_rectangle(cr, px + j * cell, py + i * cell, cell + 0.3, cell + 0.3);
			cairo_fill(cr);
		}
	if (any) {
		rgb(cr, 0xe74c3c);
		cairo_set_line_width(cr, 2);
		cairo_rectangle(cr, px + wj * cell - 1, py + wi * cell - 1, cell + 2, cell + 2);
		cairo_stroke(cr);
		char s[64];
		snprintf(s, sizeof s, "worst %.3g at bin (%zu, %zu)", top, wi, wj);
		font(cr, 11, false);
		text(cr, px + side, py + side + 34, 1, s);
	}
	rgb(cr, 0x404040);
	cairo_set_line_width(cr, 1);
	cairo_rectangle(cr, px, py, side, side);
	cairo_stroke(cr);
	font(cr, 11, false);
	char s[32];
	text(cr, px - 6, py + 10, 1, "0");
	snprintf(s, sizeof s, "%zu", T - 1);
	text(cr, px - 6, py + side, 1, s);
	text(cr, px - 30, py + side / 2, 0.5, "m");
	text(cr, px, py + side + 16, 0.5, "0");
	text(cr, px + side, py + side + 16, 0.5, s);
	text(cr, px + side / 2, py + side + 16, 0.5, "n");
	/* the color bar, the tolerance marked */
	double cx = px + side + 40, cw = 18;
	for (int k = 0; k < 100; k++) {
		double f = (k + 0.5) / 100;
		if (in->heat_linear)
			ramp(cr, f);
		else
			ramp(cr, f);
		cairo_rectangle(cr, cx, py + side * (1 - (k + 1) / 100.0), cw, side / 100 + 0.5);
		cairo_fill(cr);
	}
	rgb(cr, 0x404040);
	if (in->heat_linear) {
		for (int k = 0; k <= 4; k++) {
			snprintf(s, sizeof s, "%.2g", ltop * k / 4);
			text(cr, cx + cw + 4, py + side * (1 - k / 4.0) + 4, 0, s);
		}
	} else {
		for (double e = lo; e <= 0; e += (lo < -8 ? 2 : 1)) {
			decade_label(s, sizeof s, e);
			text(cr, cx + cw + 4, py + side * (e / lo) + 4, 0, s);
		}
	}
	double tf = in->heat_linear ? (ltop > 0 ? rep->tol / ltop : 2)
				    : (log10(rep->tol) - lo) / (0 - lo);
	if (rep->tol > 0 && tf >= 0 && tf <= 1) {
		rgb(cr, 0xc0392b);
		cairo_set_line_width(cr, 2);
		cairo_move_to(cr, cx - 4, py + side * (1 - tf));
		cairo_line_to(cr, cx + cw + 2, py + side * (1 - tf));
		cairo_stroke(cr);
		text(cr, cx - 6, py + side * (1 - tf) + 4, 1, "tol");
	}
}

/* ---- per-head bars ----------------------------------------------------- */

void figure_draw_heads(cairo_t *cr, const FigureInput *in, FigBox b)
{
	const InvReport *rep = in->rep;
	size_t H = rep->n_heads, G = rep->n_kv_heads;
	panel_title(cr, b, "relative error per query head");
	double extra[1] = {rep->tol}, lo, hi, l2, h2;
	decades(rep->head_rel_err, H, 1, 1, extra, 1, floor(log10(rep->eps)) - 1, &lo, &hi);
	decades(rep->score_rel_err, H, 1, 1, extra, 1, floor(log10(rep->eps)) - 1, &l2, &h2);
	lo = fmin(lo, l2) - 1;
	hi = fmax(hi, h2);
	double px = b.x + 70, py = b.y + 40, pw = b.w - 100, ph = b.h - 100;
	double row = ph / (double)(H ? H : 1);
#define XV(v) (px + pw * (log10(v) - lo) / (hi - lo))
	font(cr, 11, false);
	cairo_set_line_width(cr, 0.6);
	for (double e = lo; e <= hi + 1e-9; e += (hi - lo > 10 ? 2 : 1)) {
		double x = px + pw * (e - lo) / (hi - lo);
		rgb(cr, 0xdddddd);
		cairo_move_to(cr, x, py);
		cairo_line_to(cr, x, py + ph);
		cairo_stroke(cr);
		char s[16];
		decade_label(s, sizeof s, e);
		rgb(cr, 0x404040);
		text(cr, x, py + ph + 16, 0.5, s);
	}
	for (size_t h = 0; h < H; h++) {
		double y = py + h * row;
		double he = rep->head_rel_err[h], se = rep->score_rel_err[h];
		double x1 = he > 0 ? (isinf(he) ? px + pw : XV(he)) : px;
		x1 = x1 > px + pw ? px + pw : x1;
		rgb(cr, he <= rep->tol ? 0x27ae60 : 0x2e86c1);
		cairo_rectangle(cr, px, y + row * 0.2, x1 - px, row * 0.6);
		cairo_fill(cr);
		if (se > 0 && isfinite(se)) {   /* the score error: a diamond */
			double xs = XV(se), yc = y + row / 2, r = fmin(6, row * 0.3);
			rgb(cr, 0x222222);
			cairo_move_to(cr, xs, yc - r);
			cairo_line_to(cr, xs + r, yc);
			cairo_line_to(cr, xs, yc + r);
			cairo_line_to(cr, xs - r, yc);
			cairo_close_path(cr);
			cairo_fill(cr);
		}
		char s[48];
		snprintf(s, sizeof s, "h%zu g%zu", h, G ? h / (H / G) : 0);
		rgb(cr, 0x404040);
		if (row >= 9)
			text(cr, px - 6, y + row / 2 + 4, 1, s);
	}
	if (rep->tol > 0) {
		rgb(cr, 0xc0392b);
		cairo_set_line_width(cr, 1.6);
		dash(cr, 6);
		cairo_move_to(cr, XV(rep->tol), py - 6);
		cairo_line_to(cr, XV(rep->tol), py + ph);
		cairo_stroke(cr);
		dash(cr, 0);
		char s[48];
		snprintf(s, sizeof s, "tolerance %.3g", rep->tol);
		text(cr, XV(rep->tol), py - 9, 0.5, s);
	}
	rgb(cr, 0x404040);
	text(cr, px + pw / 2, py + ph + 34, 0.5,
	     "head-level relative error (bars), score error (diamonds)");
#undef XV
}

/* ---- the commutator map per frequency pair ----------------------------- */

void figure_draw_pairs(cairo_t *cr, const FigureInput *in, FigBox b)
{
	const InvReport *rep = in->rep;
	const Diagnostics *dg = &rep->diag;
	size_t ms = dg->map_size, np = dg->npairs;
	size_t h = in->head < rep->n_heads ? in->head : 0;
	char t[128];
	snprintf(t, sizeof t, "||block of R_q Theta_1 - Theta_1 R_q||, head %zu", h);
	panel_title(cr, b, t);
	if (ms == 0)
		return;
	const double *map = dg->pair_map + h * ms * ms;
	double lo = -16, side = b.h - 100, px = b.x + 70, py = b.y + 40;
	double cell = side / (double)ms;
	for (size_t i = 0; i < ms; i++)
		for (size_t j = 0; j < ms; j++) {
			double v = map[i * ms + j];
			ramp(cr, v > 0 ? (log10(v) - lo) / (1 - lo) : 0);
			cairo_rectangle(cr, px + j * cell, py + i * cell, cell + 0.3, cell + 0.3);
			cairo_fill(cr);
		}
	rgb(cr, 0x404040);
	cairo_set_line_width(cr, 1);
	cairo_rectangle(cr, px, py, side, side);
	cairo_stroke(cr);
	font(cr, 10, false);
	size_t step = ms > 16 ? ms / 8 : 1;
	for (size_t i = 0; i < ms; i += step) {
		char s[32];
		if (i < np)
			snprintf(s, sizeof s, "%zu", i);
		else
			snprintf(s, sizeof s, "rest");
		text(cr, px - 4, py + (i + 0.5) * cell + 4, 1, s);
		text(cr, px + (i + 0.5) * cell, py + side + 14, 0.5, s);
	}
	font(cr, 11, false);
	text(cr, px + side / 2, py + side + 32, 0.5, "frequency pair (w_i = theta^(-2i/r))");
	for (int k = 0; k < 100; k++) {
		ramp(cr, (k + 0.5) / 100);
		cairo_rectangle(cr, px + side + 30, py + side * (1 - (k + 1) / 100.0), 16,
				side / 100 + 0.5);
		cairo_fill(cr);
	}
	rgb(cr, 0x404040);
	for (double e = lo; e <= 1; e += 4) {
		char s[16];
		decade_label(s, sizeof s, e);
		text(cr, px + side + 50, py + side * (1 - (e - lo) / (1 - lo)) + 4, 0, s);
	}
}
