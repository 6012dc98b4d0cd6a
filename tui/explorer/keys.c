#include "config.h"

#include <curses.h>

#include "tui/explorer/commands.h"
#include "tui/explorer/keys.h"

#define CTRL(c) ((c) & 0x1f)

/* Aliases share an action and argument; the help screen folds them into
 * one line ("Up/k"). */
static const KeyDef table[] = {
	{'?', "?", "this help screen", ACT_HELP, 0, KEYF_BAR, "Help", NULL},
	{':', ":", "command line (Tab completes, Up recalls history)", ACT_PROMPT, 0, KEYF_BAR, "Cmd", NULL},
	{KEY_UP, "Up", "move up in the toggle panel", ACT_UP, 0, 0, NULL, NULL},
	{'k', "k", "move up in the toggle panel", ACT_UP, 0, 0, NULL, NULL},
	{KEY_DOWN, "Down", "move down in the toggle panel", ACT_DOWN, 0, 0, NULL, NULL},
	{'j', "j", "move down in the toggle panel", ACT_DOWN, 0, 0, NULL, NULL},
	{' ', "Space", "flip the selected toggle", ACT_FLIP, 0, KEYF_BAR, "Flip", NULL},
	{'\n', "Enter", "flip the selected toggle", ACT_FLIP, 0, 0, NULL, NULL},
	{KEY_ENTER, "Enter", "flip the selected toggle", ACT_FLIP, 0, 0, NULL, NULL},
	{KEY_LEFT, "Left", "previous query head", ACT_HEAD_PREV, 0, 0, NULL, NULL},
	{'h', "h", "previous query head", ACT_HEAD_PREV, 0, 0, NULL, NULL},
	{'[', "[", "previous query head", ACT_HEAD_PREV, 0, KEYF_BAR, "Head", NULL},
	{KEY_RIGHT, "Right", "next query head", ACT_HEAD_NEXT, 0, 0, NULL, NULL},
	{'l', "l", "next query head", ACT_HEAD_NEXT, 0, 0, NULL, NULL},
	{']', "]", "next query head", ACT_HEAD_NEXT, 0, 0, NULL, NULL},
	{'1', "1", "rotate Q on/off", ACT_TOGGLE, TOGGLE_Q, 0, NULL, NULL},
	{'2', "2", "rotate K on/off", ACT_TOGGLE, TOGGLE_K, 0, NULL, NULL},
	{'3', "3", "rotate V on/off", ACT_TOGGLE, TOGGLE_V, 0, NULL, NULL},
	{'4', "4", "rotate O on/off", ACT_TOGGLE, TOGGLE_O, 0, NULL, NULL},
	{'o', "o", "hold/drop orthogonal", ACT_TOGGLE, TOGGLE_ASSUME0 + 0, 0, NULL, NULL},
	{'c', "c", "hold/drop commutes", ACT_TOGGLE, TOGGLE_ASSUME0 + 1, 0, NULL, NULL},
	{'s', "s", "hold/drop shared-qk", ACT_TOGGLE, TOGGLE_ASSUME0 + 2, 0, NULL, NULL},
	{'p', "p", "hold/drop per-head", ACT_TOGGLE, TOGGLE_ASSUME0 + 3, 0, NULL, NULL},
	{'g', "g", "hold/drop gqa-consistent", ACT_TOGGLE, TOGGLE_ASSUME0 + 4, 0, NULL, NULL},
	{'v', "v", "hold/drop v-same", ACT_TOGGLE, TOGGLE_ASSUME0 + 5, 0, NULL, NULL},
	{'b', "b", "hold/drop bias", ACT_TOGGLE, TOGGLE_ASSUME0 + 6, 0, NULL, NULL},
	{'x', "x", "permute heads on/off", ACT_TOGGLE, TOGGLE_PERMUTE, 0, NULL, NULL},
	{'n', "n", "next rotation kind (used when commutes is dropped)", ACT_TOGGLE, TOGGLE_KIND, 0, NULL, NULL},
	{'r', "r", "a random layer's own RoPE layout half/interleaved", ACT_TOGGLE, TOGGLE_ROPE, 0, NULL, NULL},
	{'y', "y", "the layout the fold is built for: the layer's own, or the other (a mismatch)", ACT_TOGGLE, TOGGLE_FOLD_LAYOUT, 0, NULL, NULL},
	{'f', "f", "precision f64/f32", ACT_TOGGLE, TOGGLE_PRECISION, 0, NULL, NULL},
	{'F', "F", "R1 beside the fold: none, fused (holds), unfused (breaks: the norm weight does not commute)", ACT_TOGGLE, TOGGLE_R1, 0, NULL, NULL},
	{'O', "O", "R3 beside the fold: none, online (holds), folded (breaks: a Hadamard does not commute with RoPE)", ACT_TOGGLE, TOGGLE_R3, 0, NULL, NULL},
	{'\t', "Tab", "next view", ACT_VIEW_NEXT, 0, KEYF_BAR, "View", NULL},
	{KEY_BTAB, "S-Tab", "previous view", ACT_VIEW_PREV, 0, 0, NULL, NULL},
	{'5', "5", "view: score-error heatmap over (m, n)", ACT_VIEW, VIEW_HEATMAP, 0, NULL, NULL},
	{'6', "6", "view: score error by offset m - n", ACT_VIEW, VIEW_OFFSET, 0, NULL, NULL},
	{'7', "7", "view: per-head errors", ACT_VIEW, VIEW_HEADS, 0, NULL, NULL},
	{'8', "8", "view: commutator map per frequency pair", ACT_VIEW, VIEW_PAIRS, 0, NULL, NULL},
	{'9', "9", "view: model and layer info", ACT_VIEW, VIEW_INFO, 0, NULL, NULL},
	{'0', "0", "reset the fold: rotate qkvo, every assumption held", ACT_RESET, 0, KEYF_BAR, "Reset", NULL},
	{'t', "t", "classroom tour", ACT_TOUR, 0, KEYF_BAR, "Tour", NULL},
	{'+', "+", "pair-mix: EPS ten times larger (selects pair-mix, drops commutes)", ACT_EPS_UP, 0, 0, NULL, NULL},
	{'=', "=", "pair-mix: EPS ten times larger (selects pair-mix, drops commutes)", ACT_EPS_UP, 0, 0, NULL, NULL},
	{'-', "-", "pair-mix: EPS ten times smaller (selects pair-mix, drops commutes)", ACT_EPS_DOWN, 0, 0, NULL, NULL},
	{'z', "z", "zoom: the main view over the whole screen (for a projector), and back", ACT_ZOOM, 0, 0, NULL, NULL},
	{'L', "L", "heatmap: linear or log color scale", ACT_HEAT_SCALE, 0, 0, NULL, NULL},
	{CTRL('l'), "C-l", "redraw the screen", ACT_REDRAW, 0, 0, NULL, NULL},
	{'w', "w", "the whole explanation (why), scrollable", ACT_EXPLAIN, 0, 0, NULL, NULL},
	{'a', "a", "view: all layers and kv groups (compare mode)", ACT_VIEW, VIEW_LAYERS, 0, NULL, NULL},
	{'R', "R", "view: the rotations R_q, R_k, R_v of the selected head", ACT_VIEW, VIEW_ROTATION, 0, NULL, NULL},
	{'M', "M", "the message log: explanations, verify results, errors", ACT_LOG, 0, 0, NULL, NULL},
	{KEY_NPAGE, "PgDn", "scroll down: the info view; the rotation view one coordinate a cell", ACT_COMMAND, 0, 0, NULL, "scroll down"},
	{KEY_PPAGE, "PgUp", "scroll up (the info and rotation views)", ACT_COMMAND, 0, 0, NULL, "scroll up"},
	{KEY_HOME, "Home", "back to the top; the rotation view's whole matrix, pooled to fit", ACT_COMMAND, 0, 0, NULL, "scroll home"},
	{'C', "C", "heatmap and offset plot: the next cell style (ascii, half blocks, braille)", ACT_COMMAND, 0, 0, NULL, "cells next"},
	{'q', "q", "quit", ACT_QUIT, 0, KEYF_BAR, "Quit", NULL},
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
