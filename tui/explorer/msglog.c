#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tui/explorer/msglog.h"

void msglog_add(MsgLog *l, MsgKind kind, const char *text)
{
	if (!text || !*text)
		return;
	if (l->n) {
		const MsgEntry *last = msglog_get(l, l->n - 1);
		if (last->kind == kind && !strcmp(last->text, text))
			return;
	}
	char *copy = strdup(text);
	if (!copy)
		return;
	size_t at;
	if (l->n == MSGLOG_MAX) {
		at = l->first;
		free(l->e[at].text);
		l->first = (l->first + 1) % MSGLOG_MAX;
	} else {
		at = (l->first + l->n++) % MSGLOG_MAX;
	}
	l->e[at].kind = kind;
	l->e[at].text = copy;
}

const MsgEntry *msglog_get(const MsgLog *l, size_t i)
{
	return &l->e[(l->first + i) % MSGLOG_MAX];
}

void msglog_clear(MsgLog *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[(l->first + i) % MSGLOG_MAX].text);
	l->first = l->n = 0;
}

const char *msglog_kind_name(MsgKind k)
{
	static const char *const names[] = {"info", "why", "verify", "error"};
	return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}
