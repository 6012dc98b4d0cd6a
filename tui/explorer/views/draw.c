#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tui/explorer/colors.h"
#include "tui/explorer/views/draw.h"

size_t draw_width(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

size_t draw_wrap_span(const char *s, int cols, const char **next)
{
	const char *p = s, *brk = NULL;
	int used = 0;
	while (*p) {
		/* a space after a word: the line may end here */
		if (*p == ' ' && p > s && p[-1] != ' ')
			brk = p;
		if (used == cols)
			break;
		p++;
		while (((unsigned char)*p & 0xc0) == 0x80)
			p++;
		used++;
	}
	const char *end = !*p || !brk ? p : brk;
	*next = end;
	while (**next == ' ')
		(*next)++;
	return (size_t)(end - s);
}

int draw_text(WINDOW *w, int y, int x, int attr, const char *s)
{
	int maxy, maxx;
	getmaxyx(w, maxy, maxx);
	if (y < 0 || y >= maxy || x < 0 || x >= maxx)
		return 0;
	int room = maxx - x;
	/* Bytes of the first `room` characters. */
	int cols = 0;
	const char *p = s;
	while (*p && cols < room) {
		p++;
		while (((unsigned char)*p & 0xc0) == 0x80)
			p++;
		cols++;
	}
	/* Text that does not fit is not cut silently: its last column shows
	 * the ellipsis, so a clipped label or number never reads as a
	 * shorter one ("theta 100" for 10000). Trailing blanks may go. */
	bool cut = false;
	for (const char *q = p; *q; q++)
		if (*q != ' ')
			cut = true;
	wattron(w, attr);
	if (cut && cols > 1) {
		const char *last = p - 1;  /* the start of the last character */
		while (last > s && ((unsigned char)*last & 0xc0) == 0x80)
			last--;
		mvwaddnstr(w, y, x, s, (int)(last - s));
		waddstr(w, colors_glyph(GLYPH_ELLIPSIS));
	} else {
		mvwaddnstr(w, y, x, s, (int)(p - s));
	}
	wattroff(w, attr);
	return cols;
}

int draw_textf(WINDOW *w, int y, int x, int attr, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return draw_text(w, y, x, attr, buf);
}

int draw_wrap(WINDOW *w, int y, int x, int cols, int maxlines, int attr,
	      const char *s)
{
	char line[1024];
	int lines = 0;
	if (cols < 4 || maxlines < 1)
		return 0;
	while (*s == ' ')
		s++;
	while (*s && lines < maxlines) {
		/* Take words while they fit. */
		size_t used = 0, bytes = 0;
		const char *p = s;
		while (*p) {
			const char *e = p;
			while (*e && *e != ' ')
				e++;
			char word[1024];
			size_t wb = (size_t)(e - p) < sizeof word - 1 ? (size_t)(e - p) : sizeof word - 1;
			memcpy(word, p, wb);
			word[wb] = 0;
			size_t ww = draw_width(word);
			size_t need = used ? used + 1 + ww : ww;
			if (need > (size_t)cols) {
				if (used == 0) {
					/* a word longer than the line: cut it */
					bytes = wb;
					used = ww;
					p = e;
				}
				break;
			}
			used = need;
			bytes = (size_t)(e - s);
			p = e;
			while (*p == ' ')
				p++;
		}
		if (bytes >= sizeof line)
			bytes = sizeof line - 1;
		memcpy(line, s, bytes);
		line[bytes] = 0;
		s = p;
		while (*s == ' ')
			s++;
		lines++;
		if (*s && lines == maxlines) {
			/* make room for the ellipsis, at a word's end when the
			 * line has one, so a number is not cut in two */
			size_t len = strlen(line), whole = len;
			while (len && draw_width(line) + 1 > (size_t)cols) {
				line[--len] = 0;
				while (len && ((unsigned char)line[len] & 0xc0) == 0x80)
					line[--len] = 0;
			}
			char *sp = strrchr(line, ' ');
			if (len < whole && sp && sp > line)
				*sp = 0;
			/* nor a tuple or an equation left open: "(466," */
			for (len = strlen(line); len && strchr(",(=:", line[len - 1]);
			     len = strlen(line)) {
				sp = strrchr(line, ' ');
				if (!sp || sp == line)
					break;
				*sp = 0;
			}
			strncat(line, colors_glyph(GLYPH_ELLIPSIS), sizeof line - strlen(line) - 1);
		}
		draw_text(w, y + lines - 1, x, attr, line);
	}
	return lines;
}

CellStyle draw_cells(CellStyle asked)
{
	if ((asked == CELLS_HALF || asked == CELLS_BRAILLE) && !colors_utf8())
		return CELLS_ASCII;
	return asked;
}

unsigned draw_braille_dot(int row, int col)
{
	/* Unicode's dot numbering: 1 2 3 7 down the left, 4 5 6 8 down the
	 * right; dot k is bit k - 1 */
	static const unsigned bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
	return row >= 0 && row < 4 && col >= 0 && col < 2 ? bit[row][col] : 0;
}

const char *draw_braille(unsigned bits, char *buf, size_t n)
{
	unsigned cp = 0x2800 + (bits & 0xff);  /* U+2800..U+28FF: three bytes */
	if (n < 4)
		return "";
	buf[0] = (char)(0xe0 | (cp >> 12));
	buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	buf[2] = (char)(0x80 | (cp & 0x3f));
	buf[3] = 0;
	return buf;
}

void draw_fmt_err(double v, char *buf, size_t n)
{
	if (v == 0)
		snprintf(buf, n, "0");
	else if (!isfinite(v))
		snprintf(buf, n, "overflow");  /* the engine's only non-finite */
	else if (fabs(v) >= 0.01 && fabs(v) < 1000)
		snprintf(buf, n, "%.3g", v);
	else
		snprintf(buf, n, "%.2e", v);
}

static void scale(double eps, double *lo, double *step)
{
	*lo = floor(log10(eps > 0 ? eps : 1e-16));
	*step = -*lo / HEAT_LEVELS;
}

int draw_heat_bucket(double rel, double eps)
{
	if (rel < 0 || isnan(rel))
		return -1;
	if (isinf(rel))  /* an overflow: the worst color */
		return HEAT_LEVELS - 1;
	double lo, step;
	scale(eps, &lo, &step);
	if (rel == 0)
		return 0;
	int k = (int)floor((log10(rel) - lo) / step);
	if (k < 0)
		k = 0;
	if (k >= HEAT_LEVELS)
		k = HEAT_LEVELS - 1;
	return k;
}

double draw_heat_edge(int k, double eps)
{
	double lo, step;
	scale(eps, &lo, &step);
	return pow(10.0, lo + (k + 1) * step);
}

void draw_heat_cell(WINDOW *w, int y, int x, int bucket, int width)
{
	int maxy, maxx;
	getmaxyx(w, maxy, maxx);
	if (y < 0 || y >= maxy)
		return;
	for (int i = 0; i < width && x + i < maxx; i++) {
		if (bucket < 0) {
			mvwaddch(w, y, x + i, ' ');
		} else if (colors_enabled()) {
			wattron(w, colors_attr((ColorId)(CLR_HEAT0 + bucket)));
			mvwaddch(w, y, x + i, ' ');
			wattroff(w, colors_attr((ColorId)(CLR_HEAT0 + bucket)));
		} else {
			mvwaddch(w, y, x + i, (chtype)(unsigned char)colors_heat_char(bucket));
		}
	}
}

int draw_heat_legend(WINDOW *w, int y, int x, int rows, double eps,
		     double tol, const char *unit)
{
	if (rows < 2)
		return 0;
	draw_text(w, y, x, A_BOLD, unit);
	int tolb = tol > 0 ? draw_heat_bucket(tol, eps) : -1;
	/* High buckets first, so the legend reads like the plot's y axis. */
	int stride = rows - 1 >= HEAT_LEVELS ? 1 : 2;
	int r = 1;
	for (int k = HEAT_LEVELS - 1; k >= 0 && r < rows; k -= stride, r++) {
		char lab[32];
		char e[16];
		snprintf(e, sizeof e, "%.0e", draw_heat_edge(k == HEAT_LEVELS - 1 ? k - 1 : k, eps));
		snprintf(lab, sizeof lab, "%s%s", k == HEAT_LEVELS - 1 ? ">=" : "< ", e);
		draw_heat_cell(w, y + r, x, k, 2);
		draw_text(w, y + r, x + 3, 0, lab);
		if (k == tolb || (stride == 2 && k - 1 == tolb))
			draw_text(w, y + r, x + 3 + (int)strlen(lab) + 1,
				  colors_attr(CLR_TOL), "tol");
	}
	return r;
}
