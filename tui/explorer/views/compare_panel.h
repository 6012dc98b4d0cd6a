#ifndef ROPEFOLD_TUI_EXPLORER_VIEWS_COMPARE_PANEL_H
#define ROPEFOLD_TUI_EXPLORER_VIEWS_COMPARE_PANEL_H

#include <curses.h>
#include <stddef.h>

#include "tui/explorer/worker.h"

/* Compare mode's parts of the screen: the panel that takes the toggles'
 * place, showing what verify recovered (per kv group the rotation's kind
 * and angles or "not a rotation", the head permutation, the layout
 * conversion), and the explanation's text in either mode. */

/* The compare panel into w (the left panel's window). */
void panels_compare(WINDOW *w, const EvalResult *r);
/* The whole explanation of a result: the findings in words, or in compare
 * mode the relation verify found and the levels' verdicts. */
void panels_why_text(const EvalResult *r, char *buf, size_t n);

#endif
