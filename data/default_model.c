#include "config.h"

#include <stdio.h>

#include "data/default_model.h"

/* Until the checkpoint readers land, the default is the seeded random
 * layer of the default flags: D 64, 4 heads, head dim 16, seed 1. */
int default_model_load(Layer *l, char *err, size_t errlen)
{
	LayerShape s = {64, 4, 4, 16};
	RopeSpec r = rope_spec_default(16);
	if (layer_random(l, &s, &r, false, 1) != RF_OK) {
		snprintf(err, errlen, "default model: out of memory");
		return -1;
	}
	return 0;
}
