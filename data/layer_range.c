#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/layer_range.h"

/* A layer index: digits only (no sign, space or hex), below 2^64. */
static const char *layer_index(const char *s, unsigned long long *v)
{
	const char *p = s;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == s)
		return NULL;
	errno = 0;
	*v = strtoull(s, NULL, 10);
	return errno ? NULL : p;
}

int layer_range_parse(const char *flag, const char *s, size_t n_layers, size_t *lo,
		      size_t *hi, char *err, size_t errlen)
{
	if (!flag)
		flag = "--layers";
	if (!n_layers) {
		snprintf(err, errlen, "%s: the checkpoint has no layers", flag);
		return -1;
	}
	if (!s || !strcmp(s, "all")) {
		*lo = 0;
		*hi = n_layers - 1;
		return 0;
	}
	unsigned long long a, b;
	const char *end = layer_index(s, &a);
	b = a;
	if (end && !strncmp(end, "..", 2))
		end = layer_index(end + 2, &b);
	if (!end || *end) {
		snprintf(err, errlen, "%s: '%s' is not all, N or N..M (layer indices, N <= M)",
			 flag, s);
		return -1;
	}
	if (a > b) {
		snprintf(err, errlen, "%s: '%s' runs backwards: N..M needs N <= M", flag, s);
		return -1;
	}
	if (b >= n_layers) {
		snprintf(err, errlen, "%s: '%s' is outside the layers 0..%zu of the checkpoint",
			 flag, s, n_layers - 1);
		return -1;
	}
	*lo = (size_t)a;
	*hi = (size_t)b;
	return 0;
}
