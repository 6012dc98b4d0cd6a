#ifndef ROPEFOLD_DATA_MLA_WORKLOAD_H
#define ROPEFOLD_DATA_MLA_WORKLOAD_H

#include <stddef.h>

#include "data/workload.h"

/* The MLA side of workload_build (data/workload.c): a seeded random MLA
 * layer of spec->mla_shape with spec->rope on its rope part. Fills w->mla,
 * w->is_mla and w->layer (the header); 0, or -1 with one line in err. */
int workload_random_mla(const WorkloadSpec *spec, Workload *w, char *err, size_t errlen);

#endif
