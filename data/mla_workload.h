#ifndef ROPEFOLD_DATA_MLA_WORKLOAD_H
#define ROPEFOLD_DATA_MLA_WORKLOAD_H

#include <stddef.h>

#include "data/model.h"
#include "data/workload.h"

/* The MLA side of workload_build (data/workload.c): a seeded random MLA
 * layer of spec->mla_shape with spec->rope on its rope part. Fills w->mla,
 * w->is_mla and w->layer (the header); 0, or -1 with one line in err. */
int workload_random_mla(const WorkloadSpec *spec, Workload *w, char *err, size_t errlen);

/* Layer spec->layer of an open MLA checkpoint (model_mla(m) not NULL)
 * into w->mla, with w->layer its header; --rotary-dim is refused (the rope
 * part is qk_rope_head_dim wide). 0, or -1 with one line in err. */
int workload_load_mla(const WorkloadSpec *spec, Model *m, Workload *w, char *err,
		      size_t errlen);

#endif
