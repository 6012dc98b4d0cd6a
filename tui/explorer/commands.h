#ifndef ROPEFOLD_TUI_EXPLORER_COMMANDS_H
#define ROPEFOLD_TUI_EXPLORER_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "tui/shared/options.h"

/* The explorer's state as the user sets it: what to evaluate, and what to
 * look at. Everything here is plain data, so the `:` commands and the
 * toggles are pure functions of it (and unit-tested without a terminal). */

typedef enum {
	VIEW_HEATMAP = 0,   /* score error over (m, n) for the selected head */
	VIEW_OFFSET,        /* score error by relative offset m - n */
	VIEW_HEADS,         /* per-head bars */
	VIEW_PAIRS,         /* commutator map per frequency pair */
	VIEW_INFO,          /* model and layer info */
	VIEW_LAYERS,        /* compare mode: every layer and kv group's status */
	VIEW_ROTATION,      /* the selected head's R_q, R_k, R_v as matrices */
	VIEW_COUNT
} ViewId;

/* How the heatmap and the offset plot draw their cells: whole character
 * cells (shading characters, or colored blanks), upper/lower half blocks
 * (two rows a character), or braille dots (U+2800 block: 2 x 4 dots a
 * character). Half and braille need a UTF-8 locale; CELLS_AUTO picks
 * half blocks there when colors are on, ASCII otherwise. */
typedef enum {
	CELLS_AUTO = 0,
	CELLS_ASCII,
	CELLS_HALF,
	CELLS_BRAILLE,
	CELLS_COUNT
} CellStyle;

typedef enum {
	SOURCE_DEFAULT = 0, /* the built-in default layer */
	SOURCE_RANDOM,      /* a seeded random layer of opts.shape */
	SOURCE_FILE         /* a checkpoint's layer */
} LayerSource;

typedef struct {
	RunOptions opts;          /* shape, seq, seed, RoPE, eval and fold;
				   * opts.model_path is not used: see below */
	LayerSource source;
	char model_path[1024];    /* SOURCE_FILE: the checkpoint */
	char action_path[1024];   /* CMD_EXPORT / CMD_VERIFY: the other file */
	bool action_force;        /* CMD_EXPORT: replace it (:export!) */
	ViewId view;
	size_t head;              /* selected query head (clamped on draw) */
	char against_path[1024];  /* compare mode: the checkpoint B whose stored
				   * layer takes the fold's place ("": off) */
	char rot_part;            /* rotation view: 'q', 'k', 'v' or 'a' (all) */
	bool rot_full;            /* rotation view: one coordinate a cell from
				   * rot_off on (scrolled), not the whole
				   * matrix pooled to fit */
	size_t rot_off;           /* its first coordinate in pair order (even;
				   * the view clamps it to the head dim) */
	int view_scroll;          /* info view: its first line shown */
	bool heat_linear;         /* heatmap: a linear color scale, not log */
	CellStyle cells;          /* heatmap and offset plot: the cell glyphs */
} TuiSettings;

/* What running a command asks of the caller (bits). */
enum {
	CMD_CHANGED = 1u << 0,  /* evaluation settings changed: re-evaluate */
	CMD_REDRAW = 1u << 1,   /* only the display changed */
	CMD_QUIT = 1u << 2,
	CMD_HELP = 1u << 3,     /* open the help screen */
	CMD_TOUR = 1u << 4,     /* start the tour */
	CMD_ERROR = 1u << 5,    /* msg holds the reason; settings unchanged */
	CMD_EXPORT = 1u << 6,   /* write action_path (tui/fold_actions.h) */
	CMD_VERIFY = 1u << 7,   /* verify action_path against the checkpoint */
	CMD_LOG = 1u << 8,      /* open the message log */
	CMD_FIGURE = 1u << 12,  /* write the current view to action_path as a
				 * figure (tui/shared/figure.h) */
	CMD_CSV = 1u << 13,     /* write the current view's numbers there */
	CMD_SOURCE = 1u << 14   /* run the tour script action_path */
};

/* Fresh settings: the built-in default layer (use_default) or a random
 * or loaded one as the parsed options say. */
void commands_settings_init(TuiSettings *s, const RunOptions *o,
			    bool use_default);
/* The RunOptions to build the workload from (model_path filled in). */
void commands_settings_options(const TuiSettings *s, RunOptions *out);

/* Parse and run one command line (without the leading ':'). Returns CMD_*
 * bits and writes one line for the status bar into msg. On CMD_ERROR the
 * settings are unchanged. */
unsigned commands_run(TuiSettings *s, const char *line, char *msg,
		      size_t msglen);

/* ---- toggles: the items of the toggle panel ---------------------------- */

typedef enum {
	TOGGLE_Q = 0, TOGGLE_K, TOGGLE_V, TOGGLE_O,
	TOGGLE_ASSUME0,                      /* the seven assumptions follow */
	TOGGLE_PERMUTE = TOGGLE_ASSUME0 + 7,
	TOGGLE_KIND,
	TOGGLE_ROPE,        /* the layer's own RoPE layout (a random layer's) */
	TOGGLE_PRECISION,
	TOGGLE_FOLD_LAYOUT, /* the layout the fold is built for: own or other */
	TOGGLE_R1,          /* R1 beside the fold: none, fused, unfused */
	TOGGLE_R3,          /* R3 beside the fold: none, online, folded */
	TOGGLE_COUNT
} ToggleId;

/* The command-line name of a toggle ("q", "commutes", "kind", ...). */
const char *commands_toggle_name(ToggleId t);
/* The label shown in the panel ("rotate Q", "commutes", ...). */
const char *commands_toggle_label(ToggleId t);
/* A toggle by name, or -1. */
int commands_toggle_parse(const char *name);
/* Flip a toggle (or cycle it to its next value); returns CMD_* bits. */
unsigned commands_toggle_flip(TuiSettings *s, ToggleId t, char *msg,
			      size_t msglen);
/* True when a two-state toggle is on (held, rotated, permuted). */
bool commands_toggle_on(const TuiSettings *s, ToggleId t);
/* The current value of a multi-valued toggle ("haar", "half", "f64"), or
 * NULL for the two-state ones. */
const char *commands_toggle_value(const TuiSettings *s, ToggleId t);

/* ---- names ------------------------------------------------------------ */

/* Keep the rotation view's first coordinate inside a head of head_dim
 * coordinates (a scroll past the end stops at the last step). */
void commands_rotation_clamp(TuiSettings *s, size_t head_dim);

/* The name of a cell style ("auto", "ascii", "half", "braille"). */
const char *commands_cells_name(CellStyle c);

/* The name of a view ("heatmap", ...), and its parser (-1 when unknown). */
const char *commands_view_name(ViewId v);
int commands_view_parse(const char *name);

/* ---- completion ---------------------------------------------------------- */

/* The words that may complete the word starting at byte `start` of line
 * (the text before the cursor), as a NULL-terminated list; NULL when the
 * word is a file path (after :load). The list is static. */
const char *const *commands_completions(const char *line, size_t start);

/* The command names with one-line help, NULL-terminated pairs, for the
 * help screen. */
const char *const *commands_help_lines(void);

#endif
