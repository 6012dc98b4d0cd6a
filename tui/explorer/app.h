#ifndef ROPEFOLD_TUI_EXPLORER_APP_H
#define ROPEFOLD_TUI_EXPLORER_APP_H

#include <stdbool.h>

#include "tui/shared/options.h"

/* Run the explorer on the layer the options describe (the built-in
 * default when use_default), starting the tour when tour is set: the
 * script tour_file, or the built-in tour when it is NULL. Takes
 * over the terminal and restores it on every way out. Returns the exit
 * status: 0, or 2 with one line on stderr when the layer cannot be
 * built or the terminal cannot be used. */
int app_run(const RunOptions *o, bool use_default, bool tour, const char *tour_file);

#endif
