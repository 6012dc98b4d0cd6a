#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "tui/explorer/tour.h"
#include "tui/shared/tour_script.h"

struct Tour {
	TourScript script;
	TourStep *steps;       /* script.n_cards */
	char name[1024];       /* the file, for messages */
};

void tour_free(Tour *t)
{
	if (!t)
		return;
	tour_script_free(&t->script);
	free(t->steps);
	free(t);
}

size_t tour_count(const Tour *t)
{
	return t ? t->script.n_cards : 0;
}

const TourStep *tour_step(const Tour *t, size_t i)
{
	return t && i < t->script.n_cards ? &t->steps[i] : NULL;
}

const char *const *tour_setup(const Tour *t)
{
	return (const char *const *)t->script.setup.commands;
}

/* Run a card's commands on s; -1 with "FILE:LINE: message" on the first
 * that fails. */
static int dry_run(const Tour *t, const TourCard *c, TuiSettings *s, char *err, size_t errlen)
{
	for (size_t k = 0; k < c->n_commands; k++) {
		char msg[512];
		unsigned b = commands_run(s, c->commands[k], msg, sizeof msg);
		if (b & CMD_ERROR) {
			snprintf(err, errlen, "%s:%zu: %s", t->name, c->lines[k], msg);
			return -1;
		}
		if (b & CMD_SOURCE) {
			snprintf(err, errlen, "%s:%zu: a tour script cannot source another",
				 t->name, c->lines[k]);
			return -1;
		}
	}
	return 0;
}

int tour_open(const char *path, const TuiSettings *start, Tour **out, char *err,
	      size_t errlen)
{
	*out = NULL;
	Tour *t = calloc(1, sizeof *t);
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (path)
		snprintf(t->name, sizeof t->name, "%s", path);
	else if (tour_script_builtin(getenv("ROPEFOLD_DATADIR"), t->name, sizeof t->name, err,
				     errlen))
		goto fail;
	if (tour_script_load(t->name, &t->script, err, errlen))
		goto fail;
	if (t->script.n_cards == 0 && t->script.setup.n_commands == 0) {
		snprintf(err, errlen, "%s: no '# ...' card and no ':' command in it", t->name);
		goto fail;
	}
	t->steps = calloc(t->script.n_cards + 1, sizeof *t->steps);
	if (!t->steps) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < t->script.n_cards; i++) {
		const TourCard *c = &t->script.cards[i];
		t->steps[i].title = c->title;
		t->steps[i].text = c->text;
		t->steps[i].commands = (const char *const *)c->commands;
	}
	TuiSettings s = *start;
	if (dry_run(t, &t->script.setup, &s, err, errlen))
		goto fail;
	for (size_t i = 0; i < t->script.n_cards; i++)
		if (dry_run(t, &t->script.cards[i], &s, err, errlen))
			goto fail;
	*out = t;
	return 0;
fail:
	tour_free(t);
	return -1;
}
