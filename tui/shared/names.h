#ifndef ROPEFOLD_TUI_SHARED_NAMES_H
#define ROPEFOLD_TUI_SHARED_NAMES_H

#include <stddef.h>

/* The value names the front ends list in help, messages and completion,
 * each read from the table that owns it (core/fold.c's assumptions,
 * core/rotation.c's kinds, core/rope.c's layouts), so that no list is
 * written twice. */

/* The i-th name of a list, or NULL past its end. */
typedef const char *(*NameAt)(size_t i);

/* The assumptions: orthogonal, commutes, ..., bias. */
const char *names_assumption(size_t i);
/* The kinds --kind takes: every rotation kind but the commuting one
 * (which is what holding `commutes` draws). */
const char *names_kind(size_t i);
/* The RoPE layouts: half, interleaved. */
const char *names_layout(size_t i);

/* The settings of --r1 (none, fused, unfused) and --r3 (none, online,
 * folded): core/frame.c's. */
const char *names_frame_r1(size_t i);
const char *names_frame_r3(size_t i);

/* The names of a list joined into buf: sep between them, last (when not
 * NULL) instead of sep before the final one ("a, b or c"). */
void names_join(NameAt list, const char *sep, const char *last, char *buf, size_t len);

/* text with one "{SEP}" or "{SEP|LAST}" replaced by the names of list
 * joined so (names_join), into buf; text as it is without one. */
const char *names_expand(const char *text, NameAt list, char *buf, size_t len);

/* A NULL-terminated copy of a list, with extra (when not NULL) appended,
 * in words (room for n entries with the NULL): for completion. */
void names_words(NameAt list, const char *extra, const char **words, size_t n);

#endif
