#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core/fold.h"
#include "core/layer.h"
#include "core/rope.h"
#include "core/rotation.h"
#include "tui/shared/names.h"

const char *names_assumption(size_t i)
{
	return i < ASSUME_COUNT ? fold_assumption_name((unsigned)i) : NULL;
}

const char *names_kind(size_t i)
{
	size_t k = i + 1;   /* ROT_COMMUTING (0) is not a --kind */
	return k < ROT_KIND_COUNT ? rotation_kind_name((RotKind)k) : NULL;
}

const char *names_layout(size_t i)
{
	static const RopeLayout layouts[] = {ROPE_HALF, ROPE_INTERLEAVED};
	return i < sizeof layouts / sizeof layouts[0] ? rope_layout_name(layouts[i]) : NULL;
}

const char *names_frame_r1(size_t i)
{
	return i < FRAME_R1_COUNT ? frame_r1_name((FrameR1)i) : NULL;
}

const char *names_frame_r3(size_t i)
{
	return i < FRAME_R3_COUNT ? frame_r3_name((FrameR3)i) : NULL;
}

void names_join(NameAt list, const char *sep, const char *last, char *buf, size_t len)
{
	size_t k = 0;
	if (len)
		buf[0] = '\0';
	for (size_t i = 0; list(i) && k < len; i++) {
		const char *s = !i ? "" : last && !list(i + 1) ? last : sep;
		int n = snprintf(buf + k, len - k, "%s%s", s, list(i));
		k += n > 0 ? (size_t)n : 0;
	}
}

const char *names_expand(const char *text, NameAt list, char *buf, size_t len)
{
	const char *open = list && text ? strchr(text, '{') : NULL;
	const char *close = open ? strchr(open, '}') : NULL;
	if (!close) {
		snprintf(buf, len, "%s", text ? text : "");
		return buf;
	}
	char sep[16], last[16], joined[256];
	size_t k = (size_t)(close - open - 1);
	const char *bar = memchr(open + 1, '|', k);
	snprintf(sep, sizeof sep, "%.*s", (int)(bar ? (size_t)(bar - open - 1) : k), open + 1);
	if (bar)
		snprintf(last, sizeof last, "%.*s", (int)(close - bar - 1), bar + 1);
	names_join(list, sep, bar ? last : NULL, joined, sizeof joined);
	snprintf(buf, len, "%.*s%s%s", (int)(open - text), text, joined, close + 1);
	return buf;
}

void names_words(NameAt list, const char *extra, const char **words, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; list(i) && k + 1 < n; i++)
		words[k++] = list(i);
	if (extra && k + 1 < n)
		words[k++] = extra;
	words[k] = NULL;
}
