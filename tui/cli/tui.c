#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <unistd.h>

#include "tui/cli/terminal.h"
#include "tui/cli/tui.h"
#include "tui/explorer/app.h"
#include "tui/shared/options.h"

static void tui_help(bool tour)
{
	if (tour)
		printf("usage: ropefold tour [FILE] [--seq N] [--seed N]\n\n"
		       "The classroom tour: the explorer steps through the canonical cases of\n"
		       "the theorem (everything held; Q, K, V without O; dropping commutes;\n"
		       "breaking it gradually with pair-mix; V and O with any rotation; GQA;\n"
		       "permuted heads; float32), one short explanation each. Space advances,\n"
		       "p goes back, Esc leaves the tour. FILE runs a tour of your own: ':'\n"
		       "commands with '# ...' text cards between them, as the built-in tour's\n"
		       "tour.txt in ropefold's data folder is written.\n"
		       "Each stop sets its own layer (the built-in one, or a random GQA\n"
		       "layer), fold and precision; the tour keeps only these flags:\n\n");
	else
		printf("usage: ropefold tui [model options] [fold options]\n\n"
		       "The interactive explorer: toggle the theorem's assumptions and watch\n"
		       "the score, single-head and residual levels live. Keys: arrows or hjkl\n"
		       "move, Space flips, the digits and letters shown on screen are\n"
		       "shortcuts, Tab switches views, ':' opens the command line, '?' help,\n"
		       "q quits. Needs a terminal of at least 80x24.\n\n"
		       "The command line keeps its history in $XDG_STATE_HOME/ropefold/history\n"
		       "(~/.local/state/ropefold/history when XDG_STATE_HOME is unset).\n"
		       "NO_COLOR set: monochrome.\n\n");
	opts_print_help(stdout, tour ? OPT_TOUR : OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_AGAINST | OPT_FRAME);
}

int cli_tui(int argc, char **argv, bool tour)
{
	const char *mode = tour ? "tour" : "tui";
	RunOptions o;
	char err[512];
	opts_defaults(&o);
	unsigned accept = tour ? OPT_TOUR : OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_AGAINST | OPT_FRAME;
	if (opts_parse(argc, argv, accept, &o, err, sizeof err) ||
	    (!o.help && !tour && opts_check_random(&o, err, sizeof err))) {
		fprintf(stderr, "ropefold %s: %s\n", mode, err);
		return 2;
	}
	if (o.help) {
		tui_help(tour);
		return 0;
	}
	/* ropefold tour FILE: a script of the user's */
	const char *tour_file = tour && o.n_positional == 1 ? o.positional[0] : NULL;
	if (o.n_positional > (tour ? 1u : 0u)) {
		fprintf(stderr, "ropefold %s: %s: unexpected argument\n", mode,
			o.positional[tour ? 1 : 0]);
		return 2;
	}
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "ropefold %s: needs a terminal (use 'ropefold check' in scripts)\n",
			mode);
		return 2;
	}
	if (terminal_check(err, sizeof err)) {
		fprintf(stderr, "ropefold %s: %s (use 'ropefold check' for a report)\n", mode, err);
		return 2;
	}
	setlocale(LC_ALL, "");
	/* `ropefold tour` shows the canonical cases on the built-in layer. */
	return app_run(&o, tour && !o.model_path, tour, tour_file);
}

int cli_tui_default(void)
{
	RunOptions o;
	opts_defaults(&o);
	setlocale(LC_ALL, "");
	return app_run(&o, true, false, NULL);
}
