#ifndef ROPEFOLD_TUI_EXPLORER_FOLD_ACTIONS_H
#define ROPEFOLD_TUI_EXPLORER_FOLD_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "tui/explorer/commands.h"

/* The explorer's :export and :verify, as functions of its settings (run
 * by the event loop when commands_run asks for them; unit-tested without
 * a terminal). Nothing is printed. */

/* :export PATH: the explorer's checkpoint (loaded, or the built-in
 * default) with the current fold configuration baked into the current
 * layer, exactly the rotations the explorer shows, written to path with
 * its sidecar; an existing path is replaced only when s->action_force
 * (:export!). 0, or -1; msg holds one line either way. */
int fold_action_export(const TuiSettings *s, const char *path, char *msg, size_t msglen);

/* Where :verify found the first break. */
typedef struct {
	bool equivalent;   /* path is a fold of the checkpoint in every layer */
	size_t layer;      /* the first layer that breaks */
	size_t head;       /* its query head (0 when layer-wide) */
} FoldBreak;

/* :verify PATH: decide layer by layer whether path is an exact fold of the
 * explorer's checkpoint; fill out with the first break. 0 (out filled),
 * or -1 on bad input; msg holds one line either way. */
int fold_action_verify(const TuiSettings *s, const char *path, FoldBreak *out, char *msg,
		       size_t msglen);

#endif
