#ifndef ROPEFOLD_DATA_DEFAULT_MODEL_H
#define ROPEFOLD_DATA_DEFAULT_MODEL_H

#include <stddef.h>

#include "core/layer.h"

/* Load the built-in default layer. Returns 0, or -1 with err filled. */
int default_model_load(Layer *l, char *err, size_t errlen);

#endif
