#ifndef ROPEFOLD_TUI_EXPLORER_KEYS_H
#define ROPEFOLD_TUI_EXPLORER_KEYS_H

#include <stddef.h>

/* What a key does. */
typedef enum {
	ACT_NONE = 0,
	ACT_QUIT,
	ACT_HELP,
	ACT_PROMPT,      /* open the ':' command line */
	ACT_UP,          /* move in the toggle panel */
	ACT_DOWN,
	ACT_FLIP,        /* flip the selected toggle */
	ACT_TOGGLE,      /* flip toggle arg */
	ACT_VIEW,        /* show view arg */
	ACT_VIEW_NEXT,
	ACT_VIEW_PREV,
	ACT_HEAD_PREV,   /* select the previous query head */
	ACT_HEAD_NEXT,
	ACT_TOUR,
	ACT_RESET,       /* fold back to the default */
	ACT_REDRAW,
	ACT_EXPLAIN,     /* the whole explanation, scrollable */
	ACT_LOG,         /* the message log */
	ACT_EPS_UP,      /* pair-mix EPS ten times larger (":eps up") */
	ACT_EPS_DOWN,    /* ten times smaller */
	ACT_ZOOM,        /* the main view over the whole screen, and back */
	ACT_HEAT_SCALE,  /* the heatmap's log or linear color scale */
	ACT_COMMAND      /* run the ':' command named in the key's help
			  * table row (KeyDef.command) */
} KeyAction;

enum {
	KEYF_BAR = 1u << 0   /* shown in the function bar */
};

/* One row of the key table: it drives dispatch, the function bar and the
 * help screen, so the three cannot drift apart. */
typedef struct {
	int key;              /* curses key code */
	const char *name;     /* as shown: "q", "Space", "Up" */
	const char *help;     /* one line */
	KeyAction action;
	int arg;              /* ToggleId or ViewId */
	unsigned flags;       /* KEYF_* */
	const char *bar;      /* label in the function bar */
	const char *command;  /* ACT_COMMAND: the command line it runs */
} KeyDef;

/* The table, and its length. */
const KeyDef *keys_table(size_t *n);
/* The row of a key, or NULL. */
const KeyDef *keys_lookup(int key);
/* The first key name bound to an action and argument ("" if none). */
const char *keys_name_for(KeyAction action, int arg);

#endif
