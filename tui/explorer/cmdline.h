#ifndef ROPEFOLD_TUI_EXPLORER_CMDLINE_H
#define ROPEFOLD_TUI_EXPLORER_CMDLINE_H

#include <curses.h>
#include <stdbool.h>

/* The ':' command line: GNU readline in callback mode inside ncurses.
 * ncurses stays the only reader of the terminal and hands readline one
 * byte at a time; readline edits, completes and keeps history; this
 * module draws its line.
 * Call sequence: cmdline_init once (after initscr), then cmdline_open,
 * cmdline_key for every key while cmdline_active, cmdline_draw on each
 * repaint; cmdline_done at exit. */

/* Called with the accepted line, or NULL when cancelled. */
typedef void (*CmdlineDone)(const char *line, void *ctx);

/* Set readline up and load the history file. */
void cmdline_init(void);
/* Open the prompt; done runs when the line is accepted or cancelled. */
void cmdline_open(CmdlineDone done, void *ctx);
/* True while the prompt is open. */
bool cmdline_active(void);
/* Feed one curses key (bytes, or KEY_* codes translated for readline). */
void cmdline_key(int ch);
/* Cancel the prompt (a lone ESC). */
void cmdline_cancel(void);
/* Draw the prompt into one line of win at row y; places the cursor. */
void cmdline_draw(WINDOW *win, int y);
/* The matches of the last ambiguous completion, or "" (for the screen). */
const char *cmdline_matches(void);
/* Save and trim the history. */
void cmdline_done(void);
/* The history file path ("" when there is none). */
const char *cmdline_history_path(void);

#endif
