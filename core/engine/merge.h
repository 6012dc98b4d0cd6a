#ifndef ROPEFOLD_CORE_ENGINE_MERGE_H
#define ROPEFOLD_CORE_ENGINE_MERGE_H

/* ======================= merging the workers' partials ================= */

/* Workers compare disjoint pieces (heads in phase S, coordinate blocks in
 * phase O) and keep their own worst; a merge takes the largest error and,
 * at equal errors, its first location (row-major m D + c), so the result
 * does not depend on which worker ran which piece. */

/* Whether a partial (err, idx) beats the best so far (best, at). */
static inline bool merge_beats(double err, size_t idx, double best, size_t at)
{
	return err > best || (err == best && err > 0 && idx < at);
}

/* Before phase O: every worker's head and residual partials at zero. */
static void merge_clear_outputs(Engine *e)
{
	for (size_t i = 0; i < e->nworkers; i++) {
		Worker *w = &e->w[i];
		for (size_t h = 0; h < e->H; h++) {
			w->h_err[h] = 0;
			w->h_idx[h] = 0;
			w->h_ref[h] = 0;
			w->h_ovf[h] = 0;
		}
		w->r_err = w->r_ref = 0;
		w->r_idx = 0;
		w->r_ovf = 0;
	}
}

/* After a first phase S: the original's score magnitude by offset (T),
 * the max over the workers' reversed boref. */
static void merge_score_ref(Engine *e)
{
	size_t T = e->T;
	for (size_t i = 0; i < T; i++) {
		double m = 0;
		for (size_t k = 0; k < e->nworkers; k++)
			if (e->w[k].boref[T - 1 - i] > m)
				m = e->w[k].boref[T - 1 - i];
		e->byoff_ref[i] = m;
	}
}

/* After phase O: each head's worst output error and, on a first run, its
 * reference magnitude; then the residual's. */
static void merge_outputs(Engine *e, bool first)
{
	for (size_t h = 0; h < e->H; h++) {
		double err = 0, ref = 0;
		size_t idx = 0;
		unsigned ovf = 0;
		for (size_t i = 0; i < e->nworkers; i++) {
			const Worker *w = &e->w[i];
			if (merge_beats(w->h_err[h], w->h_idx[h], err, idx)) {
				err = w->h_err[h];
				idx = w->h_idx[h];
				ovf = w->h_ovf[h];
			}
			if (w->h_ref[h] > ref)
				ref = w->h_ref[h];
		}
		e->h_err[h] = err;
		e->h_idx[h] = idx;
		e->h_ovf[h] = ovf;
		if (first)
			e->h_ref[h] = ref;
	}
	double err = 0, ref = 0;
	size_t idx = 0;
	unsigned ovf = 0;
	for (size_t i = 0; i < e->nworkers; i++) {
		const Worker *w = &e->w[i];
		if (merge_beats(w->r_err, w->r_idx, err, idx)) {
			err = w->r_err;
			idx = w->r_idx;
			ovf = w->r_ovf;
		}
		if (w->r_ref > ref)
			ref = w->r_ref;
	}
	e->r_err = err;
	e->r_idx = idx;
	e->r_ref = ref;
	e->r_ovf = ovf;
}

#endif
