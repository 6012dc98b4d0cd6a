#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tui/explorer/colors.h"
#include "tui/explorer/views/draw.h"
#include "tui/explorer/views/pager.h"

#define LABEL_W 8   /* "verify  " */

/* Lay out one paragraph from screen line *line, drawing the lines
 * first..first+rows-1 at row 1 of w (w NULL: only count). */
static void paragraph(WINDOW *w, const char *label, int label_attr, const char *s, int cols,
		      int first, int rows, int *line)
{
	int x = label ? LABEL_W : 0;
	bool head = true;
	if (!*s)
		s = " ";
	while (*s) {
		const char *next;
		size_t len = draw_wrap_span(s, cols - x, &next);
		if (w && *line >= first && *line < first + rows) {
			char buf[512];
			if (len >= sizeof buf)
				len = sizeof buf - 1;
			memcpy(buf, s, len);
			buf[len] = 0;
			if (label && head)
				draw_text(w, 1 + *line - first, 2, label_attr, label);
			draw_text(w, 1 + *line - first, 2 + x, 0, buf);
		}
		(*line)++;
		head = false;
		if (next == s)
			break;
		s = next;
	}
}

static int layout(WINDOW *w, const MsgLog *log, const char *text, int cols, int first, int rows)
{
	int line = 0;
	if (log) {
		if (!log->n)
			paragraph(w, NULL, 0, "(nothing yet: explanations, verify results and errors "
				  "of this session are kept here)", cols, first, rows, &line);
		for (size_t i = 0; i < log->n; i++) {
			const MsgEntry *e = msglog_get(log, i);
			int a = e->kind == MSG_ERROR ? colors_attr(CLR_ERROR)
							 : colors_attr(CLR_PANEL);
			paragraph(w, msglog_kind_name(e->kind), a, e->text, cols, first, rows, &line);
		}
	} else {
		paragraph(w, NULL, 0, text ? text : "", cols, first, rows, &line);
	}
	return line;
}

int pager_draw(WINDOW *w, const char *title, const MsgLog *log, const char *text, int *scroll)
{
	int maxy = getmaxy(w), maxx = getmaxx(w);
	werase(w);
	if (colors_utf8())
		box(w, 0, 0);
	else
		wborder(w, '|', '|', '-', '-', '+', '+', '+', '+');
	draw_textf(w, 0, 2, colors_attr(CLR_PANEL), " %s ", title);
	int rows = maxy - 2, cols = maxx - 4;
	if (rows < 1 || cols < LABEL_W + 8)
		return 0;
	int n = layout(NULL, log, text, cols, 0, 0);
	if (*scroll > n - rows)
		*scroll = n - rows;
	if (*scroll < 0)
		*scroll = 0;
	layout(w, log, text, cols, *scroll, rows);
	draw_textf(w, maxy - 1, 2, colors_attr(CLR_DIM),
		   " Up/Down PgUp/PgDn Home/End scroll  any other key closes  %d-%d of %d ",
		   n ? *scroll + 1 : 0, *scroll + rows < n ? *scroll + rows : n, n);
	return n;
}
