#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tui/shared/tour_script.h"

#define TOUR_FILE "tour.txt"
#define TOUR_MAX_BYTES (1u << 20)

static void card_free(TourCard *c)
{
	free(c->title);
	free(c->text);
	for (size_t i = 0; i < c->n_commands; i++)
		free(c->commands[i]);
	free(c->commands);
	free(c->lines);
	memset(c, 0, sizeof *c);
}

void tour_script_free(TourScript *s)
{
	card_free(&s->setup);
	for (size_t i = 0; i < s->n_cards; i++)
		card_free(&s->cards[i]);
	free(s->cards);
	memset(s, 0, sizeof *s);
}

/* Append n bytes of s to *dst (a NUL-terminated heap string or NULL),
 * after sep when *dst is not empty. */
static int append(char **dst, const char *sep, const char *s, size_t n)
{
	size_t old = *dst ? strlen(*dst) : 0, sl = old ? strlen(sep) : 0;
	char *p = realloc(*dst, old + sl + n + 1);
	if (!p)
		return -1;
	memcpy(p + old, sep, sl);
	memcpy(p + old + sl, s, n);
	p[old + sl + n] = 0;
	*dst = p;
	return 0;
}

static int add_command(TourCard *c, const char *s, size_t n, size_t line)
{
	char **cmds = realloc(c->commands, (c->n_commands + 2) * sizeof *cmds);
	if (!cmds)
		return -1;
	c->commands = cmds;
	size_t *lines = realloc(c->lines, (c->n_commands + 1) * sizeof *lines);
	if (!lines)
		return -1;
	c->lines = lines;
	char *cmd = malloc(n + 1);
	if (!cmd)
		return -1;
	memcpy(cmd, s, n);
	cmd[n] = 0;
	c->commands[c->n_commands] = cmd;
	c->lines[c->n_commands] = line;
	c->n_commands++;
	c->commands[c->n_commands] = NULL;
	return 0;
}

/* An empty command list still ends in NULL. */
static int terminate(TourCard *c)
{
	if (c->commands)
		return 0;
	c->commands = calloc(1, sizeof *c->commands);
	return c->commands ? 0 : -1;
}

int tour_script_parse(const char *text, const char *name, TourScript *out, char *err,
		      size_t errlen)
{
	memset(out, 0, sizeof *out);
	TourCard *cur = &out->setup;
	bool in_card = false;   /* the previous line was a '#' line */
	size_t line = 0;
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		line++;
		const char *s = p;
		p = e ? e + 1 : p + n;
		while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		while (n && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		if (n == 0) {
			in_card = false;
			continue;
		}
		if (*s == '#') {
			s++;
			n--;
			while (n && *s == ' ') {
				s++;
				n--;
			}
			if (!in_card) {   /* a new card */
				TourCard *cards = realloc(out->cards,
							  (out->n_cards + 1) * sizeof *cards);
				if (!cards)
					goto nomem;
				out->cards = cards;
				cur = &out->cards[out->n_cards++];
				memset(cur, 0, sizeof *cur);
				cur->line = line;
				if (n == 0) {
					snprintf(err, errlen, "%s:%zu: a card starts with its title, "
						 "'# Title'", name, line);
					goto fail;
				}
				if (append(&cur->title, "", s, n))
					goto nomem;
				in_card = true;
				continue;
			}
			if (n == 0)
				continue;
			if (append(&cur->text, " ", s, n))
				goto nomem;
			continue;
		}
		in_card = false;
		if (*s == ':') {
			s++;
			n--;
			while (n && *s == ' ') {
				s++;
				n--;
			}
			if (n == 0) {
				snprintf(err, errlen, "%s:%zu: an empty ':' command", name, line);
				goto fail;
			}
			if (add_command(cur, s, n, line))
				goto nomem;
			continue;
		}
		snprintf(err, errlen, "%s:%zu: expected a text card line '# ...' or a "
			 "command ':...', not '%.*s'", name, line, (int)(n > 40 ? 40 : n), s);
		goto fail;
	}
	if (terminate(&out->setup))
		goto nomem;
	for (size_t i = 0; i < out->n_cards; i++) {
		if (terminate(&out->cards[i]))
			goto nomem;
		if (!out->cards[i].text && append(&out->cards[i].text, "", "", 0))
			goto nomem;
	}
	return 0;
nomem:
	snprintf(err, errlen, "%s: out of memory", name);
fail:
	tour_script_free(out);
	return -1;
}

int tour_script_load(const char *path, TourScript *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	char *buf = malloc(TOUR_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	size_t n = fread(buf, 1, TOUR_MAX_BYTES + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad || n > TOUR_MAX_BYTES) {
		snprintf(err, errlen, "%s: %s", path,
			 bad ? "cannot read it" : "larger than a tour script may be (1 MiB)");
		free(buf);
		return -1;
	}
	buf[n] = 0;
	if (memchr(buf, 0, n)) {
		snprintf(err, errlen, "%s: not a text file (it holds a NUL byte)", path);
		free(buf);
		return -1;
	}
	int rc = tour_script_parse(buf, path, out, err, errlen);
	free(buf);
	return rc;
}

static int try_dir(const char *base, char *buf, size_t len)
{
	struct stat st;
	if (!base || !*base)
		return -1;
	snprintf(buf, len, "%s/%s", base, TOUR_FILE);
	return stat(buf, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -1;
}

int tour_script_builtin(const char *datadir, char *buf, size_t len, char *err,
			size_t errlen)
{
	if (!try_dir(datadir, buf, len) || !try_dir(PKGDATADIR, buf, len) ||
	    !try_dir(ABS_TOP_SRCDIR "/data", buf, len))
		return 0;
	snprintf(err, errlen, "the built-in tour (%s) is missing: looked in $ROPEFOLD_DATADIR%s%s, "
		 "%s and %s/data (reinstall)", TOUR_FILE, datadir ? "=" : "", datadir ? datadir : "",
		 PKGDATADIR, ABS_TOP_SRCDIR);
	return -1;
}
