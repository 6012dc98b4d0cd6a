#include "config.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <term.h>
#include <unistd.h>

#include "tui/cli/terminal.h"

int terminal_check(char *err, size_t errlen)
{
	const char *name = getenv("TERM");
	int found = 0;
	if (!name || !*name) {
		snprintf(err, errlen, "TERM is not set: the explorer needs a terminal type "
			 "that can move the cursor");
		return -1;
	}
	/* terminfo only: setupterm sends nothing to the terminal */
	if (setupterm(name, STDOUT_FILENO, &found) != OK) {
		snprintf(err, errlen, "cannot use this terminal (TERM=%s): %s", name,
			 found == 0 ? "terminfo does not know it" : "no terminfo database");
		return -1;
	}
	const char *cup = tigetstr("cup");
	bool can = cup && cup != (char *)-1 && tigetflag("hc") <= 0;
	del_curterm(cur_term);
	if (!can) {
		snprintf(err, errlen, "this terminal (TERM=%s) cannot move the cursor, so it "
			 "cannot show the explorer", name);
		return -1;
	}
	return 0;
}

bool terminal_colors(void)
{
	const char *name = getenv("TERM");
	int found = 0;
	if (!isatty(STDOUT_FILENO) || getenv("NO_COLOR") || !name || !*name ||
	    setupterm(name, STDOUT_FILENO, &found) != OK)
		return false;
	bool colors = tigetnum("colors") > 0;
	del_curterm(cur_term);
	return colors;
}
