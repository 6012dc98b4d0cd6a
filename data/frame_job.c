#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core/levels.h"
#include "core/status.h"
#include "data/frame_job.h"

/* Why a setting does not apply to w, or NULL. */
static const char *refusal(const Workload *w, const FoldConfig *cfg, const char **flag)
{
	*flag = cfg->r1 != FRAME_R1_NONE ? "--r1" : "--r3";
	if (w->is_mla)
		return "shown on a standard attention layer; an MLA layer's q and k are built "
		       "from latents (not yet here)";
	if (cfg->r1 == FRAME_R1_NONE)
		return NULL;
	*flag = "--r1";
	if (w->r1_refusal[0])
		return w->r1_refusal;   /* post-norms, sandwich norms, LayerNorm */
	if (w->layer.attn_norm_kind != NORM_RMS)
		return "the layer's input norm is a LayerNorm: its mean subtraction commutes only "
		       "with rotations that fix the all-ones direction, so R1 does not apply";
	if (w->layer.shape.d_model > FRAME_R1_MAX_DIM)
		return "the model is too wide for the demonstration's dense D x D R1";
	return NULL;
}

int frame_job_run(const Workload *w, const FoldConfig *cfg, double tol, FrameReport *rep,
		  char *err, size_t errlen)
{
	memset(rep, 0, sizeof *rep);
	if (cfg->r1 == FRAME_R1_NONE && cfg->r3 == FRAME_R3_NONE)
		return 0;
	const char *flag, *why = refusal(w, cfg, &flag);
	if (why) {
		snprintf(err, errlen, "%s: %s", flag, why);
		return -1;
	}
	if (tol <= 0)
		tol = levels_default_tol(PREC_F64);
	RfStatus st = frame_evaluate(&w->layer, w->x, w->seq, cfg->r1, cfg->r3, cfg->seed, tol, rep);
	if (st != RF_OK) {
		snprintf(err, errlen, "%s: the demonstration failed: %s",
			 cfg->r1 != FRAME_R1_NONE ? "--r1" : "--r3", rf_status_str(st));
		frame_report_done(rep);
		memset(rep, 0, sizeof *rep);
		return -1;
	}
	return 0;
}
