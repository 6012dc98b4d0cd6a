#ifndef ROPEFOLD_TUI_CLI_TERMINAL_H
#define ROPEFOLD_TUI_CLI_TERMINAL_H

#include <stdbool.h>
#include <stddef.h>

/* Whether the terminal on stdout (TERM) can run the explorer: it must be
 * known to terminfo and address the cursor (a "dumb" terminal or a
 * hard-copy one cannot draw a screen, only a line at a time). 0 when it
 * can; else -1 and one line in err saying why. Touches no terminal
 * state. */
int terminal_check(char *err, size_t errlen);

/* Whether the terminal on stdout shows ANSI colors: a terminal, TERM
 * known to terminfo with colors, and NO_COLOR unset. */
bool terminal_colors(void);

#endif
