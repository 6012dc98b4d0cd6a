#ifndef ROPEFOLD_TUI_EXPLORER_COLORS_H
#define ROPEFOLD_TUI_EXPLORER_COLORS_H

#include <stdbool.h>

/* Semantic color names; the scheme table maps each to a color pair, or to
 * a monochrome attribute when the terminal has no colors (or NO_COLOR is
 * set). */
typedef enum {
	CLR_NORMAL = 0,
	CLR_TITLE,        /* the top line */
	CLR_PANEL,        /* panel titles */
	CLR_SELECT,       /* the selected toggle */
	CLR_KEY,          /* a shortcut key */
	CLR_ON,           /* a held assumption, a rotated part */
	CLR_OFF,          /* a dropped assumption */
	CLR_HOLDS,        /* a level that holds */
	CLR_BREAKS,       /* a guaranteed level that breaks: a bug */
	CLR_EXPECTED,     /* a level that breaks where nothing was promised */
	CLR_DIM,
	CLR_ERROR,        /* status line error */
	CLR_BARKEY,       /* function bar: key */
	CLR_BARLABEL,     /* function bar: label */
	CLR_TOL,          /* the tolerance marker */
	CLR_HEAT0,        /* heat buckets 0..HEAT_LEVELS-1, low to high */
	CLR_COUNT = CLR_HEAT0 + 8
} ColorId;

#define HEAT_LEVELS 8

/* Decide colors and glyphs for this terminal; call after initscr(). */
void colors_init(void);
/* The attribute of a semantic color. */
int colors_attr(ColorId c);
/* True when colors are in use. */
bool colors_enabled(void);
/* True when the locale is UTF-8 (glyphs beyond ASCII may be drawn). */
bool colors_utf8(void);

typedef enum {
	GLYPH_ON = 0,     /* [x] */
	GLYPH_OFF,
	GLYPH_HOLDS,      /* check mark */
	GLYPH_BREAKS,     /* cross */
	GLYPH_BAR,        /* a full bar cell */
	GLYPH_DOT,        /* a masked cell */
	GLYPH_ELLIPSIS,
	GLYPH_TOLMARK,    /* tolerance marker on a bar */
	GLYPH_COUNT
} GlyphId;

/* A glyph as a string: UTF-8 in a UTF-8 locale, ASCII otherwise. */
const char *colors_glyph(GlyphId g);
/* The monochrome shading character of heat bucket i (0..HEAT_LEVELS-1). */
char colors_heat_char(int i);
/* The attribute that draws an upper half block (U+2580) in heat bucket
 * top over heat bucket bottom (-1: the default background), for heat
 * cells half a row tall; 0 when colors are off or the terminal has too
 * few color pairs (then draw whole cells). */
int colors_heat_halves(int top, int bottom);

#endif
