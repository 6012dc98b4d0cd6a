#ifndef ROPEFOLD_DATA_FRAME_JOB_H
#define ROPEFOLD_DATA_FRAME_JOB_H

#include <stddef.h>

#include "core/fold.h"
#include "core/frame.h"
#include "data/workload.h"

/* R1 and R3 as cfg sets them (core/frame.h) on w's layer and input, with
 * cfg's seed, judged at tol (<= 0: float64's default; the demonstration
 * always runs in float64). rep is initialised in every case (release it
 * with frame_report_done). 0, or -1 with one line in err naming the flag
 * whose setting does not apply here: an MLA layer, R1 on a LayerNorm or
 * on a model too wide for a dense R1. */
int frame_job_run(const Workload *w, const FoldConfig *cfg, double tol, FrameReport *rep,
		  char *err, size_t errlen);

#endif
