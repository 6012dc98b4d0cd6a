#include "config.h"

#include <curses.h>

#include "tui/explorer/commands.h"
#include "tui/explorer/keys.h"

#define CTRL(c) ((c) & 0x1f)

/* Aliases share an action and argument; the help screen folds them into
 * one line ("Up/k"). */
static const KeyDef table[] = {
	{'?', "?", "this help screen", ACT_HELP, 0, KEYF_BAR, "Help"},
	{':', ":", "command line (Tab completes, Up recalls history)", ACT_PROMPT, 0, KEYF_BAR, "Cmd"},
	{KEY_UP, "Up", "move up in the toggle panel", ACT_UP, 0, 0, NULL},
	{'k', "k", "move up in the toggle panel", ACT_UP, 0, 0, NULL},
	{KEY_DOWN, "Down", "move down in the toggle panel", ACT_DOWN, 0, 0, NULL},
	{'j', "j", "move down in the toggle panel", ACT_DOWN, 0, 0, NULL},
	{' ', "Space", "flip the selected toggle", ACT_FLIP, 0, KEYF_BAR, "Flip"},
	{'\n', "Enter", "flip the selected toggle", ACT_FLIP, 0, 0, NULL},
	{KEY_ENTER, "Enter", "flip the selected toggle", ACT_FLIP, 0, 0, NULL},
	{KEY_LEFT, "Left", "previous query head", ACT_HEAD_PREV, 0, 0, NULL},
	{'h', "h", "previous query head", ACT_HEAD_PREV, 0, 0, NULL},
	{'[', "[", "previous query head", ACT_HEAD_PREV, 0, KEYF_BAR, "Head"},
	{KEY_RIGHT, "Right", "next query head", ACT_HEAD_NEXT, 0, 0, NULL},
	{'l', "l", "next query head", ACT_HEAD_NEXT, 0, 0, NULL},
	{']', "]", "next query head", ACT_HEAD_NEXT, 0, 0, NULL},
	{'1', "1", "rotate Q on/off", ACT_TOGGLE, TOGGLE_Q, 0, NULL},
	{'2', "2", "rotate K on/off", ACT_TOGGLE, TOGGLE_K, 0, NULL},
	{'3', "3", "rotate V on/off", ACT_TOGGLE, TOGGLE_V, 0, NULL},
	{'4', "4", "rotate O on/off", ACT_TOGGLE, TOGGLE_O, 0, NULL},
	{'o', "o", "hold/drop orthogonal", ACT_TOGGLE, TOGGLE_ASSUME0 + 0, 0, NULL},
	{'c', "c", "hold/drop commutes", ACT_TOGGLE, TOGGLE_ASSUME0 + 1, 0, NULL},
	{'s', "s", "hold/drop shared-qk", ACT_TOGGLE, TOGGLE_ASSUME0 + 2, 0, NULL},
	{'p', "p", "hold/drop per-head", ACT_TOGGLE, TOGGLE_ASSUME0 + 3, 0, NULL},
	{'g', "g", "hold/drop gqa-consistent", ACT_TOGGLE, TOGGLE_ASSUME0 + 4, 0, NULL},
	{'v', "v", "hold/drop v-same", ACT_TOGGLE, TOGGLE_ASSUME0 + 5, 0, NULL},
	{'b', "b", "hold/drop bias", ACT_TOGGLE, TOGGLE_ASSUME0 + 6, 0, NULL},
	{'x', "x", "permute heads on/off", ACT_TOGGLE, TOGGLE_PERMUTE, 0, NULL},
	{'n', "n", "next rotation kind (used when commutes is dropped)", ACT_TOGGLE, TOGGLE_KIND, 0, NULL},
	{'r', "r", "a random layer's own RoPE layout half/interleaved", ACT_TOGGLE, TOGGLE_ROPE, 0, NULL},
	{'y', "y", "the layout the fold is built for: the layer's own, or the other (a mismatch)", ACT_TOGGLE, TOGGLE_FOLD_LAYOUT, 0, NULL},
	{'f', "f", "precision f64/f32", ACT_TOGGLE, TOGGLE_PRECISION, 0, NULL},
	{'F', "F", "R1 beside the fold: none, fused (holds), unfused (breaks: the norm weight does not commute)", ACT_TOGGLE, TOGGLE_R1, 0, NULL},
	{'O', "O", "R3 beside the fold: none, online (holds), folded (breaks: a Hadamard does not commute with RoPE)", ACT_TOGGLE, TOGGLE_R3, 0, NULL},
	{'\t', "Tab", "next view", ACT_VIEW_NEXT, 0, KEYF_BAR, "View"},
	{KEY_BTAB, "S-Tab", "previous view", ACT_VIEW_PREV, 0, 0, NULL},
	{'5', "5", "view: score-error heatmap over (m, n)", ACT_VIEW, VIEW_HEATMAP, 0, NULL},
	{'6', "6", "view: score error by offset m - n", ACT_VIEW, VIEW_OFFSET, 0, NULL},
	{'7', "7", "view: per-head errors", ACT_VIEW, VIEW_HEADS, 0, NULL},
	{'8', "8", "view: commutator map per frequency pair", ACT_VIEW, VIEW_PAIRS, 0, NULL},
	{'9', "9", "view: model and layer info", ACT_VIEW, VIEW_INFO, 0, NULL},
	{'0', "0", "reset the fold: rotate qkvo, every assumption held", ACT_RESET, 0, KEYF_BAR, "Reset"},
	{'t', "t", "classroom tour", ACT_TOUR, 0, KEYF_BAR, "Tour"},
	{'+', "+", "pair-mix: EPS ten times larger (selects pair-mix, drops commutes)", ACT_EPS_UP, 0, 0, NULL},
	{'=', "=", "pair-mix: EPS ten times larger (selects pair-mix, drops commutes)", ACT_EPS_UP, 0, 0, NULL},
	{'-', "-", "pair-mix: EPS ten times smaller (selects pair-mix, drops commutes)", ACT_EPS_DOWN, 0, 0, NULL},
	{'z', "z", "zoom: the main view over the whole screen (for a projector), and back", ACT_ZOOM, 0, 0, NULL},
	{'L', "L", "heatmap: linear or log color scale", ACT_HEAT_SCALE, 0, 0, NULL},
	{CTRL('l'), "C-l", "redraw the screen", ACT_REDRAW, 0, 0, NULL},
	{'w', "w", "the whole explanation (why), scrollable", ACT_EXPLAIN, 0, 0, NULL},
	{'a', "a", "view: all layers and kv groups (compare mode)", ACT_VIEW, VIEW_LAYERS, 0, NULL},
	{'R', "R", "view: the rotations R_q, R_k, R_v of the selected head", ACT_VIEW, VIEW_ROTATION, 0, NULL},
	{'M', "M", "the message log: explanations, verify results, errors", ACT_LOG, 0, 0, NULL},
	{'q', "q", "quit", ACT_QUIT, 0, KEYF_BAR, "Quit"},
};

const KeyDef *keys_table(size_t *n)
{
	*n = sizeof table / sizeof table[0];
	return table;
}

const KeyDef *keys_lookup(int key)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (table[i].key == key)
			return &table[i];
	return NULL;
}

const char *keys_name_for(KeyAction action, int arg)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (table[i].action == action && table[i].arg == arg)
			return table[i].name;
	return "";
}
