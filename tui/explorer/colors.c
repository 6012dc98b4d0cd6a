#include "config.h"

#include <curses.h>
#include <langinfo.h>
#include <stdlib.h>
#include <string.h>

#include "tui/explorer/colors.h"

typedef struct {
	short fg, bg;     /* basic colors (COLORS >= 8) */
	int attr;         /* added to the pair when colored */
	int mono;         /* the monochrome attribute */
} Scheme;

static const Scheme scheme[CLR_HEAT0] = {
	[CLR_NORMAL] = {-1, -1, 0, 0},
	[CLR_TITLE] = {COLOR_BLACK, COLOR_CYAN, 0, A_REVERSE},
	[CLR_PANEL] = {COLOR_CYAN, -1, A_BOLD, A_BOLD},
	[CLR_SELECT] = {COLOR_BLACK, COLOR_WHITE, 0, A_REVERSE},
	[CLR_KEY] = {COLOR_YELLOW, -1, A_BOLD, A_BOLD},
	[CLR_ON] = {COLOR_GREEN, -1, 0, 0},
	[CLR_OFF] = {COLOR_RED, -1, A_BOLD, A_BOLD},
	[CLR_HOLDS] = {COLOR_GREEN, -1, A_BOLD, A_BOLD},
	[CLR_BREAKS] = {COLOR_WHITE, COLOR_RED, A_BOLD, A_REVERSE | A_BOLD},
	[CLR_EXPECTED] = {COLOR_YELLOW, -1, A_BOLD, A_UNDERLINE},
	[CLR_DIM] = {COLOR_BLUE, -1, A_BOLD, A_DIM},
	[CLR_ERROR] = {COLOR_WHITE, COLOR_RED, A_BOLD, A_REVERSE},
	[CLR_BARKEY] = {COLOR_WHITE, -1, A_BOLD, A_BOLD},
	[CLR_BARLABEL] = {COLOR_BLACK, COLOR_CYAN, 0, A_REVERSE},
	[CLR_TOL] = {COLOR_MAGENTA, -1, A_BOLD, A_BOLD},
};

/* Heat buckets, low to high: 256-color ramp and the 8-color fallback. */
static const short heat256[HEAT_LEVELS] = {17, 24, 30, 36, 106, 178, 202, 196};
static const short heat8[HEAT_LEVELS] = {
	COLOR_BLUE, COLOR_BLUE, COLOR_CYAN, COLOR_GREEN,
	COLOR_GREEN, COLOR_YELLOW, COLOR_MAGENTA, COLOR_RED};
static const char heat_ramp[HEAT_LEVELS + 1] = ".:-=+*#@";

static bool use_colors;
static bool use_utf8;
static int attrs[CLR_COUNT];

static const char *const glyph_utf8[GLYPH_COUNT] = {
	"[x]", "[ ]", "\u2713", "\u2717", "\u2588", "\u00b7", "\u2026", "\u2502"};
static const char *const glyph_ascii[GLYPH_COUNT] = {
	"[x]", "[ ]", "+", "x", "#", ".", "~", "|"};

void colors_init(void)
{
	const char *cs = nl_langinfo(CODESET);
	use_utf8 = cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8"));
	const char *nc = getenv("NO_COLOR");
	use_colors = has_colors() && !(nc && *nc);
	if (use_colors && start_color() == ERR)
		use_colors = false;
	if (use_colors)
		use_default_colors();
	for (int i = 0; i < CLR_COUNT; i++) {
		if (!use_colors) {
			attrs[i] = i >= CLR_HEAT0 ? 0 : scheme[i].mono;
			continue;
		}
		short fg, bg;
		int extra = 0;
		if (i >= CLR_HEAT0) {
			int h = i - CLR_HEAT0;
			fg = COLOR_BLACK;
			bg = COLORS >= 256 ? heat256[h] : heat8[h];
			if (COLORS < 256 && (h == 1 || h == 4))
				extra = A_BOLD;
		} else {
			fg = scheme[i].fg;
			bg = scheme[i].bg;
			extra = scheme[i].attr;
		}
		if (i == CLR_NORMAL) {
			attrs[i] = 0;
			continue;
		}
		init_pair((short)i, fg, bg);
		attrs[i] = (int)COLOR_PAIR(i) | extra;
	}
}

int colors_attr(ColorId c)
{
	return (unsigned)c < CLR_COUNT ? attrs[c] : 0;
}

bool colors_enabled(void)
{
	return use_colors;
}

bool colors_utf8(void)
{
	return use_utf8;
}

const char *colors_glyph(GlyphId g)
{
	if ((unsigned)g >= GLYPH_COUNT)
		return "?";
	return use_utf8 ? glyph_utf8[g] : glyph_ascii[g];
}

char colors_heat_char(int i)
{
	if (i < 0)
		return ' ';
	if (i >= HEAT_LEVELS)
		i = HEAT_LEVELS - 1;
	return heat_ramp[i];
}

int colors_heat_halves(int top, int bottom)
{
	if (!use_colors || top < 0 || top >= HEAT_LEVELS || bottom < -1 || bottom >= HEAT_LEVELS)
		return 0;
	int idx = CLR_COUNT + top * (HEAT_LEVELS + 1) + bottom + 1;
	if (idx >= COLOR_PAIRS)
		return 0;
	const short *ramp = COLORS >= 256 ? heat256 : heat8;
	init_pair((short)idx, ramp[top], bottom < 0 ? -1 : ramp[bottom]);
	return (int)COLOR_PAIR(idx);
}
