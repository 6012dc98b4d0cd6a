#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core/fold.h"
#include "core/rope.h"
#include "tui/explorer/colors.h"
#include "tui/explorer/keys.h"
#include "tui/explorer/views/compare_panel.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/panels.h"
#include "tui/explorer/views/views.h"
#include "tui/shared/findings_text.h"

static void fill_line(WINDOW *w, int y, int attr)
{
	int maxx = getmaxx(w);
	wattron(w, attr);
	mvwhline(w, y, 0, ' ', maxx);
	wattroff(w, attr);
}

/* A frame: line drawing in a UTF-8 locale, plain ASCII otherwise. */
static void frame(WINDOW *w)
{
	if (colors_utf8())
		box(w, 0, 0);
	else
		wborder(w, '|', '|', '-', '-', '+', '+', '+', '+');
}

static void box_title(WINDOW *w, const char *title)
{
	frame(w);
	draw_textf(w, 0, 2, colors_attr(CLR_PANEL), " %s ", title);
}

void panels_title(WINDOW *w, const EvalResult *r, bool computing)
{
	int a = colors_attr(CLR_TITLE);
	fill_line(w, 0, a);
	int x = draw_text(w, 0, 0, a | A_BOLD, " ropefold ");
	if (r) {
		const LayerInfo *li = &r->info;
		char src[96];
		if (!strcmp(li->source, "random"))
			snprintf(src, sizeof src, "random layer");
		else if (!strcmp(li->source, "default"))
			snprintf(src, sizeof src, "default layer %zu", li->layer_index);
		else {
			const char *base = strrchr(li->source, '/');
			base = base && base[1] ? base + 1 : li->source;
			snprintf(src, sizeof src, "%.60s #%zu", base, li->layer_index);
		}
		draw_textf(w, 0, x, a, " %s  D=%zu H=%zu G=%zu d=%zu  T=%zu  %s",
			   src, li->shape.d_model, li->shape.n_heads, li->shape.n_kv_heads,
			   li->shape.head_dim, li->seq, rope_layout_name(li->rope.layout));
	}
	if (computing) {
		int maxx = getmaxx(w);
		draw_textf(w, 0, maxx - 12, colors_attr(CLR_EXPECTED) | A_REVERSE, " computing%s ",
			   colors_glyph(GLYPH_ELLIPSIS));
	}
}

void panels_toggles(WINDOW *w, const TuiSettings *s, int sel,
		    int row_of[TOGGLE_COUNT])
{
	box_title(w, "fold");
	int maxy = getmaxy(w);
	int y = 1;
	/* the group headings, in the order they give way when the panel is
	 * short (at 80x24 only the first fits beside every toggle: what
	 * [x] means for an assumption) */
	static const struct {
		int toggle;
		const char *text;
	} heads[] = {{TOGGLE_ASSUME0, "assumptions held"}, {TOGGLE_Q, "rotate"},
		     {TOGGLE_PERMUTE, "also"}, {TOGGLE_R1, "QuaRot, beside"}};
	int room = maxy - 2 - TOGGLE_COUNT;
	for (int t = 0; t < TOGGLE_COUNT; t++) {
		for (int i = 0; i < (int)(sizeof heads / sizeof heads[0]); i++)
			if (heads[i].toggle == t && i < room && y < maxy - 1)
				draw_text(w, y++, 1, colors_attr(CLR_DIM), heads[i].text);
		row_of[t] = -1;
		if (y >= maxy - 1)
			continue;
		row_of[t] = y;
		const char *key = keys_name_for(ACT_TOGGLE, t);
		const char *val = commands_toggle_value(s, (ToggleId)t);
		int base = t == sel ? colors_attr(CLR_SELECT) : 0;
		if (t == sel)
			mvwhline(w, y, 1, ' ' | (chtype)base, getmaxx(w) - 2);
		draw_text(w, y, 2, base | colors_attr(CLR_KEY), key);
		/* a fold built for the other layout breaks commutes itself */
		bool mismatch = s->opts.fold.layout_set && s->opts.fold.layout != s->opts.rope.layout;
		if (val) {
			/* a setting that breaks: a mismatched layout, R1 unfused,
			 * R3 folded */
			bool breaks = (t == TOGGLE_FOLD_LAYOUT && mismatch) ||
				      (t == TOGGLE_R1 && s->opts.fold.r1 == FRAME_R1_UNFUSED) ||
				      (t == TOGGLE_R3 && s->opts.fold.r3 == FRAME_R3_FOLDED);
			int va = breaks ? colors_attr(CLR_OFF) : 0;
			draw_textf(w, y, 4, base | va, "%s: %s", commands_toggle_label((ToggleId)t), val);
		} else if (t == TOGGLE_ASSUME0 + 1 && mismatch && commands_toggle_on(s, (ToggleId)t)) {
			draw_text(w, y, 4, base | colors_attr(CLR_OFF), "[!]");
			draw_text(w, y, 8, base | colors_attr(CLR_OFF), "commutes: no (y)");
		} else {
			bool on = commands_toggle_on(s, (ToggleId)t);
			bool bad = !on && t >= TOGGLE_ASSUME0 && t < TOGGLE_PERMUTE;
			draw_text(w, y, 4, base | (on ? colors_attr(CLR_ON) : (bad ? colors_attr(CLR_OFF) : 0)),
				  colors_glyph(on ? GLYPH_ON : GLYPH_OFF));
			draw_text(w, y, 8, base | (bad ? colors_attr(CLR_OFF) : 0),
				  commands_toggle_label((ToggleId)t));
		}
		y++;
	}
}

void panels_tour(WINDOW *w, const TourStep *step, size_t i, size_t n,
		 const TuiSettings *s)
{
	char title[48];
	snprintf(title, sizeof title, "tour %zu/%zu", i + 1, n);
	box_title(w, title);
	int maxy = getmaxy(w), maxx = getmaxx(w);
	int y = 1;
	y += draw_wrap(w, y, 2, maxx - 4, 3, A_BOLD, step->title);
	y++;
	char rot[8], fold[256], drop[160] = "";
	fold_rotate_format(s->opts.fold.rotate, rot, sizeof rot);
	for (unsigned k = 0; k < ASSUME_COUNT; k++)
		if (s->opts.fold.dropped & (1u << k)) {
			if (*drop)
				strncat(drop, ",", sizeof drop - strlen(drop) - 1);
			strncat(drop, fold_assumption_name(k), sizeof drop - strlen(drop) - 1);
		}
	snprintf(fold, sizeof fold, "rotate %s; drop %s%s%s", rot, *drop ? drop : "none",
		 s->opts.fold.permute_heads ? "; heads permuted" : "",
		 s->opts.precision == PREC_F32 ? "; f32" : "");
	int foot = 4;
	y += draw_wrap(w, y, 2, maxx - 4, maxy - 1 - y - foot, 0, step->text);
	draw_wrap(w, maxy - 4, 2, maxx - 4, 2, colors_attr(CLR_DIM), fold);
	draw_textf(w, maxy - 2, 2, colors_attr(CLR_KEY), "Space");
	draw_text(w, maxy - 2, 8, 0, i + 1 < n ? "next  p back" : "end   p back");
	draw_text(w, maxy - 2, 21, colors_attr(CLR_KEY), "Esc");
}

/* Where a level is worst, in at most room columns: the whole place when
 * it fits, else fewer of its coordinates (each shown one true; the why
 * line and check give the rest), never a number cut short. */
static void worst_str(const InvReport *rep, LevelId id, int room, char *buf, size_t n)
{
	const LevelResult *L = &rep->level[id];
	char c[3][48];
	if (id == LEVEL_SCORE) {
		snprintf(c[0], sizeof c[0], "h%zu (%zu,%zu)", L->worst_head, L->worst_m, L->worst_n);
		snprintf(c[1], sizeof c[1], "h%zu(%zu,%zu)", L->worst_head, L->worst_m, L->worst_n);
		snprintf(c[2], sizeof c[2], "h%zu m%zu", L->worst_head, L->worst_m);
	} else if (id == LEVEL_HEAD) {
		snprintf(c[0], sizeof c[0], "h%zu t%zu c%zu", L->worst_head, L->worst_m, L->worst_coord);
		snprintf(c[1], sizeof c[1], "h%zu t%zu", L->worst_head, L->worst_m);
		snprintf(c[2], sizeof c[2], "h%zu", L->worst_head);
	} else {
		snprintf(c[0], sizeof c[0], "t%zu c%zu", L->worst_m, L->worst_coord);
		snprintf(c[1], sizeof c[1], "t%zu", L->worst_m);
		snprintf(c[2], sizeof c[2], "t%zu", L->worst_m);
	}
	int k = 0;
	while (k < 2 && (int)strlen(c[k]) > room)
		k++;
	size_t len = (int)strlen(c[k]) <= room ? strlen(c[k]) : 0;
	if (len >= n)
		len = n - 1;
	memcpy(buf, c[k], len);
	buf[len] = 0;
}

void panels_levels(WINDOW *w, const EvalResult *r)
{
	if (!r) {
		box_title(w, "levels");
		return;
	}
	const InvReport *rep = &r->rep;
	char title[64];
	snprintf(title, sizeof title, "levels: %s, tol %.0e",
		 rep->precision == PREC_F32 ? "f32" : "f64", rep->tol);
	box_title(w, title);
	int maxx = getmaxx(w);
	bool wide = maxx >= 70;
	draw_textf(w, 1, 2, colors_attr(CLR_DIM), "%-9s%-*s%-9s%-9s%-8s%s", "level",
		   wide ? 16 : 6, wide ? "prediction" : "guar.", "verdict", "rel err",
		   "eps", "worst at");
	for (int i = 0; i < LEVEL_COUNT; i++) {
		const LevelResult *L = &rep->level[i];
		int y = 2 + i;
		char rel[16], eps[16], worst[48];
		/* an overflow has no error to show; worst names its first place */
		draw_fmt_err(L->max_rel_err, rel, sizeof rel);
		snprintf(eps, sizeof eps, "%.2g", L->eps_units);
		if (L->overflow) {
			snprintf(rel, sizeof rel, "-");
			snprintf(eps, sizeof eps, "-");
		}
		/* the columns left before the frame's right side */
		int room = maxx - 1 - (11 + (wide ? 16 : 6) + 26);
		worst_str(rep, (LevelId)i, room, worst, sizeof worst);
		draw_textf(w, y, 2, A_BOLD, "%-9s", level_name((LevelId)i));
		draw_textf(w, y, 11, 0, "%s", wide ? (L->guaranteed ? "guaranteed" : "not guaranteed")
						 : (L->guaranteed ? "yes" : "no"));
		int va = L->holds ? colors_attr(CLR_HOLDS)
				  : (L->guaranteed ? colors_attr(CLR_BREAKS) : colors_attr(CLR_EXPECTED));
		int x = 11 + (wide ? 16 : 6);
		if (L->overflow)  /* a verdict of its own, the column's width */
			draw_text(w, y, x, va, "overflow");
		else
			draw_textf(w, y, x, va, "%s %s",
				   colors_glyph(L->holds ? GLYPH_HOLDS : GLYPH_BREAKS),
				   L->holds ? "holds" : "breaks");
		draw_textf(w, y, x + 9, 0, "%-9s%-8s", rel, eps);
		draw_text(w, y, x + 26, colors_attr(CLR_DIM), worst);
	}
}

void panels_explanation(WINDOW *w, const EvalResult *r)
{
	if (!r)
		return;
	int maxy = getmaxy(w), maxx = getmaxx(w);
	char why[FINDINGS_EXPLAIN_MAX + 1024];
	panels_why_text(r, why, sizeof why);
	draw_text(w, 0, 1, colors_attr(CLR_PANEL), "why");
	draw_wrap(w, 0, 5, maxx - 6, maxy, 0, why);
	/* cut: 'w' shows all of it */
	int lines = 0;
	for (const char *p = why, *next; *p && maxx > 6; p = next, lines++)
		if (draw_wrap_span(p, maxx - 6, &next), next == p)
			break;
	if (lines > maxy && maxy > 1)
		draw_text(w, 1, 1, colors_attr(CLR_KEY), "w");
}

void panels_view_frame(WINDOW *w, ViewId cur, int tab_x[VIEW_COUNT + 1])
{
	frame(w);
	int x = 2;
	/* every tab named when they fit, else only the current one (the
	 * others by their key) */
	int full = 2;
	for (int v = 0; v < VIEW_COUNT; v++)
		full += (int)strlen(keys_name_for(ACT_VIEW, v)) +
			(int)strlen(views_get((ViewId)v)->title) + 4;
	bool fits = full <= getmaxx(w) - 1;
	for (int v = 0; v < VIEW_COUNT; v++) {
		const char *key = keys_name_for(ACT_VIEW, v);
		char lab[32];
		if (fits || v == (int)cur)
			snprintf(lab, sizeof lab, " %s %s ", key, views_get((ViewId)v)->title);
		else
			snprintf(lab, sizeof lab, " %s ", key);
		tab_x[v] = x;
		int a = v == (int)cur ? (int)(colors_attr(CLR_SELECT) | A_BOLD) : colors_attr(CLR_PANEL);
		x += draw_text(w, 0, x, a, lab) + 1;
	}
	tab_x[VIEW_COUNT] = x;
}

void panels_status(WINDOW *w, const char *msg, bool error, const EvalResult *r)
{
	int maxx = getmaxx(w);
	char t[32] = "";
	if (r)
		snprintf(t, sizeof t, "%.1f ms", r->seconds * 1e3);
	if (msg && *msg)
		draw_text(w, 0, 0, error ? colors_attr(CLR_ERROR) : 0, msg);
	if (*t && (!msg || (int)strlen(msg) < maxx - 12))
		draw_text(w, 0, maxx - (int)strlen(t) - 1, colors_attr(CLR_DIM), t);
}

void panels_bar(WINDOW *w, bool prompt, const char *matches)
{
	int la = colors_attr(CLR_BARLABEL), ka = colors_attr(CLR_BARKEY);
	fill_line(w, 0, la);
	if (prompt) {
		if (matches && *matches) {
			draw_text(w, 0, 0, la, matches);
			return;
		}
		int x = 0;
		static const char *const hints[][2] = {
			{"Enter", "Run"}, {"Esc", "Cancel"}, {"Tab", "Complete"},
			{"Up", "History"}, {":help", "Commands"}};
		for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++) {
			x += draw_textf(w, 0, x, ka, "%s ", hints[i][0]);
			x += draw_textf(w, 0, x, la, "%s  ", hints[i][1]);
		}
		return;
	}
	size_t n;
	const KeyDef *t = keys_table(&n);
	int x = 0;
	for (size_t i = 0; i < n; i++) {
		if (!(t[i].flags & KEYF_BAR))
			continue;
		x += draw_textf(w, 0, x, ka, "%s ", t[i].name);
		x += draw_textf(w, 0, x, la, "%s  ", t[i].bar);
	}
}

/* One paragraph of the help: wrapped to the window's width, its
 * continuation lines indented by hang columns (under the description). */
typedef struct {
	const char *text;
	int hang;
} HelpLine;

#define HELP_MAX 256
#define KEY_COL 19   /* "  " + 16 columns of key names + " " */
#define CMD_COL 27   /* "  " + 24 columns of command + " " */

/* The help text as paragraphs (built once). */
static int help_lines(const HelpLine **out)
{
	static HelpLine lines[HELP_MAX];
	static char store[HELP_MAX][256];
	static int n;
	if (n) {
		*out = lines;
		return n;
	}
#define ADD(h, ...)                                                       \
	do {                                                              \
		if (n < HELP_MAX) {                                       \
			snprintf(store[n], sizeof store[n], __VA_ARGS__); \
			lines[n].text = store[n];                         \
			lines[n].hang = (h);                              \
			n++;                                              \
		}                                                         \
	} while (0)
	ADD(0, "ropefold: fold RoPE-commuting rotations into attention and watch the "
	       "three invariance levels (score, single head, residual) live.");
	ADD(0, "%s", "");
	ADD(0, "KEYS");
	size_t nk;
	const KeyDef *t = keys_table(&nk);
	for (size_t i = 0; i < nk; i++) {
		bool seen = false;
		for (size_t j = 0; j < i; j++)
			if (t[j].action == t[i].action && t[j].arg == t[i].arg)
				seen = true;
		if (seen)
			continue;
		char names[48] = "";
		for (size_t j = i; j < nk; j++)
			if (t[j].action == t[i].action && t[j].arg == t[i].arg &&
			    !strstr(names, t[j].name)) {
				if (*names)
					strncat(names, " ", sizeof names - strlen(names) - 1);
				strncat(names, t[j].name, sizeof names - strlen(names) - 1);
			}
		ADD(KEY_COL, "  %-16s %s", names, t[i].help);
	}
	ADD(KEY_COL, "  %-16s %s", "mouse", "click a toggle to flip it, a tab to switch views");
	ADD(0, "%s", "");
	ADD(0, "VIEWS");
	for (int v = 0; v < VIEW_COUNT; v++)
		ADD(KEY_COL, "  %-16s %s", views_get((ViewId)v)->name, views_get((ViewId)v)->help);
	ADD(0, "%s", "");
	ADD(0, "COMMANDS (after ':'; Tab completes, history is kept across runs)");
	const char *const *c = commands_help_lines();
	for (size_t i = 0; c[i]; i += 2)
		ADD(CMD_COL, "  %-24s %s", c[i], c[i + 1]);
	ADD(0, "%s", "");
	ADD(8, "COLORS  green holds; red: a guaranteed level breaks (a bug); "
	       "yellow: breaks where the theorem promises nothing.");
#undef ADD
	*out = lines;
	return n;
}

/* Wrap the help to cols columns and draw the screen lines first..first+rows-1
 * at row 1 of w (w NULL: only count). Returns the number of screen lines. */
static int help_layout(WINDOW *w, int cols, int first, int rows)
{
	const HelpLine *lines;
	int n = help_lines(&lines);
	int total = 0;
	for (int i = 0; i < n; i++) {
		const char *s = lines[i].text;
		int hang = lines[i].hang;
		if (cols - hang < 16)
			hang = 0;
		bool head = s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
		bool cont = false;
		do {
			int x = cont ? hang : 0;
			const char *next;
			size_t len = draw_wrap_span(s, cols - x, &next);
			if (w && total >= first && total < first + rows) {
				char buf[256];
				if (len >= sizeof buf)
					len = sizeof buf - 1;
				memcpy(buf, s, len);
				buf[len] = 0;
				int a = head && !cont ? colors_attr(CLR_PANEL) : 0;
				draw_text(w, 1 + total - first, 2 + x, a, buf);
			}
			total++;
			s = next;
			cont = true;
		} while (*s);
	}
	return total;
}

int panels_help(WINDOW *w, int *scroll)
{
	int maxy = getmaxy(w), maxx = getmaxx(w);
	werase(w);
	box_title(w, "help");
	int rows = maxy - 2, cols = maxx - 4;
	if (rows < 1 || cols < 1)
		return 0;
	int n = help_layout(NULL, cols, 0, 0);
	if (*scroll > n - rows)
		*scroll = n - rows;
	if (*scroll < 0)
		*scroll = 0;
	help_layout(w, cols, *scroll, rows);
	draw_textf(w, maxy - 1, 2, colors_attr(CLR_DIM),
		   " Up/Down PgUp/PgDn Home/End scroll  any other key closes  %d-%d of %d ",
		   *scroll + 1, *scroll + rows < n ? *scroll + rows : n, n);
	return n;
}

void panels_too_small(WINDOW *w)
{
	int maxy = getmaxy(w), maxx = getmaxx(w);
	werase(w);
	char a[64];
	snprintf(a, sizeof a, "terminal too small: %dx%d", maxx, maxy);
	draw_text(w, maxy / 2 - 1, maxx > (int)strlen(a) ? (maxx - (int)strlen(a)) / 2 : 0, A_BOLD, a);
	const char *b = "ropefold needs 80x24; q quits";
	draw_text(w, maxy / 2, maxx > (int)strlen(b) ? (maxx - (int)strlen(b)) / 2 : 0, 0, b);
}
