#ifndef ROPEFOLD_TUI_CLI_TUI_H
#define ROPEFOLD_TUI_CLI_TUI_H

#include <stdbool.h>

/* `ropefold tui [model options] [fold options]` (tour: `ropefold tour`).
 * Returns the exit status. */
int cli_tui(int argc, char **argv, bool tour);

/* `ropefold` with no arguments on a terminal: the TUI on the built-in
 * default layer. */
int cli_tui_default(void);

#endif
