#ifndef ROPEFOLD_TUI_EXPLORER_VIEWS_PAGER_H
#define ROPEFOLD_TUI_EXPLORER_VIEWS_PAGER_H

#include <curses.h>

#include "tui/explorer/msglog.h"

/* A full-screen page of wrapped paragraphs over the explorer, scrolled by
 * *scroll screen lines (clamped here to what the text needs, so the caller
 * may overshoot): the message log (log != NULL, each entry labelled by its
 * kind, newest last) or one text (the whole explanation). Returns the
 * number of screen lines the page takes. */
int pager_draw(WINDOW *w, const char *title, const MsgLog *log, const char *text, int *scroll);

#endif
