#ifndef ROPEFOLD_TUI_SHARED_TOUR_SCRIPT_H
#define ROPEFOLD_TUI_SHARED_TOUR_SCRIPT_H

#include <stddef.h>

/* A tour script: `:` commands with text cards between them, the built-in
 * tour (data/tour.txt) and any a lecturer writes.
 *
 *     # Title of the card
 *     # Its text, over as many '#' lines as it takes.
 *     :drop commutes
 *     :view offset
 *
 * A run of '#' lines is one card: the first line its title, the others
 * its text (joined by spaces; a lone '#' line is skipped). The ':'
 * lines after a card, up to the next card, set the explorer up for it;
 * those before the first card run once, when the script starts. Blank
 * lines are ignored; any other line is an error naming its line. */

typedef struct {
	char *title;            /* NULL for the commands before the first card */
	char *text;
	char **commands;        /* n_commands, then NULL; without the ':' */
	size_t *lines;          /* n_commands: the script line of each */
	size_t n_commands;
	size_t line;            /* the card's first line */
} TourCard;

typedef struct {
	TourCard setup;         /* the commands before the first card */
	TourCard *cards;        /* n_cards */
	size_t n_cards;
} TourScript;

/* Parse a script's text (name: the file, for messages). 0, or -1 with
 * one line in err ("FILE:LINE: ..."); out is then empty. */
int tour_script_parse(const char *text, const char *name, TourScript *out, char *err,
		      size_t errlen);
/* Read and parse the file at path. */
int tour_script_load(const char *path, TourScript *out, char *err, size_t errlen);
/* The built-in tour's file: tour.txt in datadir (when not NULL), the
 * installed data folder, or the source tree's data/. 0, or -1 with err. */
int tour_script_builtin(const char *datadir, char *buf, size_t len, char *err,
			size_t errlen);
/* Release a script. */
void tour_script_free(TourScript *s);

#endif
