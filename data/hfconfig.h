#ifndef ROPEFOLD_DATA_HFCONFIG_H
#define ROPEFOLD_DATA_HFCONFIG_H

#include <stddef.h>

#include "data/reader.h"

/* Read an HF config.json (a file path) into hp: shape, RoPE base, partial
 * rotary, rope_scaling, norm epsilon and the family quirks. Missing
 * required keys and unsupported scaling rules are errors naming the key. */
int hfconfig_read(const char *path, Hparams *hp, char *err, size_t errlen);

/* The same from JSON text in memory; name is used in messages. */
int hfconfig_read_string(const char *text, size_t len, const char *name, Hparams *hp,
			 char *err, size_t errlen);

#endif
