#ifndef ROPEFOLD_CORE_ENGINE_REPORT_H
#define ROPEFOLD_CORE_ENGINE_REPORT_H

/* ======================= the report ===================================== */

/* The error fields of rep from the engine's per-head results (those of
 * this run and those kept from earlier runs alike): each level's max
 * error, reference and worst location, the score error by offset, the
 * per-head relative errors and the heatmap. */
static void report_fill(const Engine *e, InvReport *rep)
{
	size_t T = e->T, D = e->D, H = e->H, B = e->B;
	LevelResult *ls = &rep->level[LEVEL_SCORE], *lh = &rep->level[LEVEL_HEAD];
	LevelResult *lr = &rep->level[LEVEL_RESIDUAL];
	ls->max_abs_err = e->s_err[0];
	ls->worst_head = 0;
	ls->worst_m = e->s_m[0];
	ls->worst_n = e->s_n[0];
	ls->ref_max = 0;
	lh->max_abs_err = 0;
	lh->ref_max = 0;
	for (size_t i = 0; i < T; i++) {
		rep->by_offset[i] = 0;
		rep->by_offset_ref[i] = e->byoff_ref[i];
	}
	for (size_t h = 0; h < H; h++) {
		if (e->s_err[h] > ls->max_abs_err) {
			ls->max_abs_err = e->s_err[h];
			ls->worst_head = h;
			ls->worst_m = e->s_m[h];
			ls->worst_n = e->s_n[h];
		}
		if (e->s_ref[h] > ls->ref_max)
			ls->ref_max = e->s_ref[h];
		const double *bo = e->byoff + h * T;
		for (size_t i = 0; i < T; i++)
			if (bo[i] > rep->by_offset[i])
				rep->by_offset[i] = bo[i];
		rep->score_rel_err[h] = e->s_ref[h] > 0 && !isinf(e->s_err[h])
			? e->s_err[h] / e->s_ref[h] : e->s_err[h];
		if (e->h_err[h] > lh->max_abs_err) {
			lh->max_abs_err = e->h_err[h];
			lh->worst_head = h;
			lh->worst_m = e->h_idx[h] / D;
			lh->worst_coord = e->h_idx[h] % D;
		}
		if (e->h_ref[h] > lh->ref_max)
			lh->ref_max = e->h_ref[h];
		rep->head_rel_err[h] = e->h_ref[h] > 0 && !isinf(e->h_err[h])
			? e->h_err[h] / e->h_ref[h] : e->h_err[h];
	}
	if (rep->heat_bins == B)
		memcpy(rep->heat, e->heat, H * B * B * sizeof(double));
	lr->max_abs_err = e->r_err;
	lr->ref_max = e->r_ref;
	lr->worst_m = e->r_idx / D;
	lr->worst_coord = e->r_idx % D;
	/* an infinite error is an overflow; the worst location is its first */
	ls->overflow = isinf(ls->max_abs_err) ? e->s_ovf[ls->worst_head] : 0;
	lh->overflow = isinf(lh->max_abs_err) ? e->h_ovf[lh->worst_head] : 0;
	lr->overflow = isinf(lr->max_abs_err) ? e->r_ovf : 0;
}

#endif
