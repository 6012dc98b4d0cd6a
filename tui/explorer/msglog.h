#ifndef ROPEFOLD_TUI_EXPLORER_MSGLOG_H
#define ROPEFOLD_TUI_EXPLORER_MSGLOG_H

#include <stdbool.h>
#include <stddef.h>

/* The session's message log: every explanation shown, verify result and
 * error, oldest first, so that what scrolled off the status line or was
 * cut from the "why" line can be read again. It keeps the last
 * MSGLOG_MAX entries; nothing here draws. */

#define MSGLOG_MAX 500

typedef enum { MSG_INFO = 0, MSG_EXPLAIN, MSG_VERIFY, MSG_ERROR } MsgKind;

typedef struct {
	MsgKind kind;
	char *text;       /* owned */
} MsgEntry;

typedef struct {
	MsgEntry e[MSGLOG_MAX];  /* a ring: entry i of n is e[(first + i) % MAX] */
	size_t first, n;
} MsgLog;

/* Add a copy of text (empty text and a repeat of the last entry are
 * skipped). */
void msglog_add(MsgLog *l, MsgKind kind, const char *text);
/* Entry i, oldest first (i < l->n). */
const MsgEntry *msglog_get(const MsgLog *l, size_t i);
/* Release every entry. */
void msglog_clear(MsgLog *l);
/* The label of a kind: "info", "why", "verify", "error". */
const char *msglog_kind_name(MsgKind k);

#endif
