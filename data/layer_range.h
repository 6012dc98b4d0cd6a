#ifndef ROPEFOLD_DATA_LAYER_RANGE_H
#define ROPEFOLD_DATA_LAYER_RANGE_H

#include <stddef.h>

/* The layers a fold rewrites or a verify compares, as the user writes
 * them: "all", "N" or "N..M" (inclusive, N <= M). */

/* Parse s (NULL: all) against a checkpoint of n_layers layers into
 * [*lo, *hi]. -1 with one line in err naming flag (the flag the value
 * came from; NULL: --layers) when s is not of that form or out of
 * range. */
int layer_range_parse(const char *flag, const char *s, size_t n_layers, size_t *lo,
		      size_t *hi, char *err, size_t errlen);

#endif
