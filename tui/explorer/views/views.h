#ifndef ROPEFOLD_TUI_EXPLORER_VIEWS_VIEWS_H
#define ROPEFOLD_TUI_EXPLORER_VIEWS_VIEWS_H

#include <curses.h>
#include <stdbool.h>
#include <stddef.h>

#include "tui/explorer/commands.h"
#include "tui/explorer/worker.h"

/* What a view draws from: the last evaluation and the user's settings.
 * Views only draw: the numbers come from core/ through the worker. */
typedef struct {
	WINDOW *win;              /* the view's area; draw inside (0,0)-(h,w) */
	int h, w;
	const EvalResult *res;    /* never NULL when a view is drawn */
	const TuiSettings *set;
	size_t head;              /* selected query head, < H */
	int *scroll_max;          /* out (may be NULL): the largest
				   * set->view_scroll a view that scrolls can
				   * use, so the loop clamps it */
} ViewContext;

/* What a key handler asks of the event loop (bits). */
enum {
	KR_HANDLED = 1u << 0,
	KR_REDRAW = 1u << 1,
	KR_RESIZE = 1u << 2,
	KR_QUIT = 1u << 3,
	KR_PROMPT = 1u << 4,
	KR_EVAL = 1u << 5
};

/* A main view: the small vtable of the event loop. */
typedef struct {
	const char *name;                 /* as in ':view NAME' */
	const char *title;                /* the tab label */
	void (*draw)(const ViewContext *c);
	unsigned (*key)(const ViewContext *c, int key);   /* may be NULL */
	void (*resize)(const ViewContext *c);             /* may be NULL */
	const char *help;                 /* one line for the help screen */
} View;

/* The view with an id. */
const View *views_get(ViewId id);

extern const View view_heatmap;
extern const View view_offset;
extern const View view_heads;
extern const View view_pairs;
extern const View view_info;
extern const View view_layers;
extern const View view_rotation;

#endif
