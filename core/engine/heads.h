#ifndef ROPEFOLD_CORE_ENGINE_HEADS_H
#define ROPEFOLD_CORE_ENGINE_HEADS_H

/* ======================= phase S: scores and contexts, per head ========= */

/* S[r0:r1, 0:r1] = scale q_h k_g^T for causal row blocks. */
static void scores(const Engine *e, Worker *w,
		   const REAL *q, const REAL *k, size_t h, REAL scale, REAL *S)
{
	size_t T = e->T, d = e->d, g = h / e->hpg;
	for (size_t r0 = 0; r0 < T; r0 += SCORE_BLOCK) {
		size_t r1 = r0 + SCORE_BLOCK < T ? r0 + SCORE_BLOCK : T;
		GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0),
		     (int)r1, (int)d, scale, q + r0 * e->nq + h * d, (int)e->nq,
		     k + g * d, (int)e->nk, 0, S + r0 * T, (int)T);
		w->flops += 2.0 * (double)(r1 - r0) * (double)r1 * (double)d;
	}
}


/* Row softmax over its n first entries in place, max subtracted. */
HOT_CLONES
static void softmax_row(REAL *row, size_t n)
{
	REAL mx = row[0];
	for (size_t j = 1; j < n; j++)
		if (row[j] > mx)
			mx = row[j];
	double sum = 0;
	size_t j = 0;
#ifdef VEC4
	V4d vs = {0};
	for (; j + VLANES <= n; j += VLANES) {
		V4 t;
		memcpy(&t, row + j, sizeof t);
		t -= mx;
		V4d x = __builtin_convertvector(t, V4d);
		vexp(&x);
		vs += x;
		t = __builtin_convertvector(x, V4);
		memcpy(row + j, &t, sizeof t);
	}
	if (j < n) {
		V4d x;
		for (size_t i = 0; i < VLANES; i++)  /* past the end: exp -> 0 */
			x[i] = j + i < n ? (double)(row[j + i] - mx) : -1000.0;
		vexp(&x);
		vs += x;
		for (size_t i = 0; j + i < n; i++)
			row[j + i] = (REAL)x[i];
	}
	for (size_t i = 0; i < VLANES; i++)
		sum += vs[i];
#else
	for (; j < n; j++) {
		row[j] = (REAL)exp((double)(row[j] - mx));
		sum += row[j];
	}
#endif
	REAL inv = (REAL)(1 / sum);
	for (j = 0; j < n; j++)
		row[j] *= inv;
}

/* Causal softmax of S in place, with l's soft-cap and sliding window:
 * row m's visible keys lo..m (lo = layer_first_key(l, m)) capped, then
 * softmaxed with the max subtracted, zeros before lo and after m to the
 * end of its row block; then C_h = P v_g (T x d, leading dimension ldc),
 * causal row blocks. */
static void softmax_context(const Engine *e, Worker *w, const Layer *l,
			    REAL *S, const REAL *v, size_t h, REAL *C,
			    size_t ldc, bool softmax)
{
	size_t T = e->T, d = e->d, g = h / e->hpg;
	double cap = l->attn_softcap;
	for (size_t r0 = 0; r0 < T; r0 += SCORE_BLOCK) {
		size_t r1 = r0 + SCORE_BLOCK < T ? r0 + SCORE_BLOCK : T;
		for (size_t m = r0; softmax && m < r1; m++) {
			REAL *row = S + m * T;
			size_t lo = layer_first_key(l, m);
			for (size_t n = lo; cap > 0 && n <= m; n++)
				row[n] = (REAL)(cap * tanh((double)row[n] / cap));
			softmax_row(row + lo, m + 1 - lo);
			for (size_t n = 0; n < lo; n++)
				row[n] = 0;
			for (size_t n = m + 1; n < r1; n++)
				row[n] = 0;
		}
		GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0),
		     (int)d, (int)r1, 1, S + r0 * T, (int)T, v + g * d, (int)e->nk,
		     0, C + r0 * ldc, (int)ldc);
		w->flops += 2.0 * (double)(r1 - r0) * (double)r1 * (double)d;
	}
}

/* ev_j = |a_j - b_j| and br_j = max(br_j, ev_j) over n entries; returns
 * max_j ev_j. */
HOT_CLONES
static double row_diff(const REAL *a, const REAL *b, size_t n, double *ev,
		       double *br)
{
	double m = 0;
	size_t j = 0;
#ifdef VEC4
	V4d vm = {0};
	for (; j + VLANES <= n; j += VLANES) {
		V4d x, y, o;
		V4_LOAD(x, a + j);
		V4_LOAD(y, b + j);
		V4d e = V4_ABS(x - y);
		v4_nan_inf(&e);
		V4_MAX(vm, e);
		memcpy(ev + j, &e, sizeof e);
		memcpy(&o, br + j, sizeof o);
		V4_MAX(o, e);
		memcpy(br + j, &o, sizeof o);
	}
	for (int i = 0; i < VLANES; i++)
		if (vm[i] > m)
			m = vm[i];
#endif
	for (; j < n; j++) {
		double e = err_of((double)a[j], (double)b[j]);
		ev[j] = e;
		if (e > m)
			m = e;
		if (e > br[j])
			br[j] = e;
	}
	return m;
}

/* br_j = max(br_j, |a_j|) over n entries; returns max_j |a_j|. */
HOT_CLONES
static double row_ref(const REAL *a, size_t n, double *br)
{
	double m = 0;
	size_t j = 0;
#ifdef VEC4
	V4d vm = {0};
	for (; j + VLANES <= n; j += VLANES) {
		V4d x, o;
		V4_LOAD(x, a + j);
		V4d e = V4_ABS(x);
		V4_MAX(vm, e);
		memcpy(&o, br + j, sizeof o);
		V4_MAX(o, e);
		memcpy(br + j, &o, sizeof o);
	}
	for (int i = 0; i < VLANES; i++)
		if (vm[i] > m)
			m = vm[i];
#endif
	for (; j < n; j++) {
		double e = fabs((double)a[j]);
		if (e > m)
			m = e;
		if (e > br[j])
			br[j] = e;
	}
	return m;
}

/* Compare head h's scores: per-head max error and its first location, the
 * error by offset, the heat bins; and, the first time, the original's
 * magnitudes, by offset into the worker's boref. Row m's offsets m - n
 * run backwards, so both by-offset arrays are kept reversed (index
 * T-1-offset) while rows are swept: each row is then one forward run. */
static void score_compare(Engine *e, Worker *w, size_t h,
			  const REAL *Sa, const REAL *Sb, bool with_ref)
{
	size_t T = e->T, B = e->B;
	double *byoff = e->byoff + h * T, *ev = w->evrow;
	double *heat = e->heat + h * B * B;
	double err = 0, ref = 0;
	size_t wm = 0, wn = 0;
	unsigned ovf = 0;
	for (size_t i = 0; i < T; i++)
		byoff[i] = 0;
	for (size_t i = 0; i < B * B; i++)
		heat[i] = -1.0;
	double *heatd = e->heatd + h * B;
	for (size_t i = 0; i < B; i++)
		heatd[i] = -1.0;
	for (size_t m = 0; m < T; m++) {
		const REAL *ra = Sa + m * T, *rb = Sb + m * T;
		double *hrow = heat + (m * B / T) * B;
		size_t n = m + 1;
		double rmax = row_diff(ra, rb, n, ev, byoff + (T - 1 - m));
		if (ev[m] > heatd[m * B / T])   /* the exact diagonal, apart */
			heatd[m * B / T] = ev[m];
		if (rmax > err) {
			size_t j = 0;
			while (j < n && ev[j] != rmax)
				j++;
			err = rmax;
			wm = m;
			wn = j;
			/* the first non-finite score of the head, row-major */
			if (isinf(err) && j < n)
				ovf = ovf_side((double)ra[j], (double)rb[j]);
		}
		/* key n falls in bin n B / T: bin b holds keys
		 * ceil(b T / B) .. ceil((b+1) T / B) - 1 */
		for (size_t b = 0; b < B; b++) {
			size_t lo = (b * T + B - 1) / B, hi = ((b + 1) * T + B - 1) / B;
			if (lo >= n)
				break;
			if (hi > n)
				hi = n;
			double bm = hrow[b];
			for (size_t j = lo; j < hi; j++)
				bm = ev[j] > bm ? ev[j] : bm;
			hrow[b] = bm;
		}
		if (with_ref) {
			double rv = row_ref(ra, n, w->boref + (T - 1 - m));
			if (rv > ref)
				ref = rv;
		}
	}
	for (size_t i = 0, j = T - 1; i < j; i++, j--) {
		double t = byoff[i];
		byoff[i] = byoff[j];
		byoff[j] = t;
	}
	e->s_err[h] = err;
	e->s_m[h] = wm;
	e->s_n[h] = wn;
	e->s_ovf[h] = ovf;
	if (with_ref)
		e->s_ref[h] = ref;
}

static void head_task(Engine *e, Worker *w, size_t h)
{
	REAL scale = (REAL)layer_score_scale(e->a);
	bool first = !e->orig_ready;
	bool cmp = e->s_chg[h];
	size_t TT = e->T * e->T;
	/* T x T each; the folded side's in its cache slot when there is one */
	REAL *sa = w->arena, *sb = e->pcache ? e->pcache + h * TT : sa + TT;
	/* the cached P_h is current when the scores did not change */
	bool reuse = e->pcache && !first && !cmp;
	if (first || cmp)
		scores(e, w, e->qa, e->ka, h, scale, sa);
	if (!reuse)
		scores(e, w, e->qb, e->kb, h, (REAL)layer_score_scale(e->b), sb);
	if (cmp)
		score_compare(e, w, h, sa, sb, first);
#ifdef FUSED_KERNEL
	if (e->fused) {
		/* C_h into scratch after the scores, then packed for the
		 * output kernel: no T x nq context buffers */
		size_t d = e->d, cp = e->cp_rows * d;
		REAL *ch = w->arena + 2 * TT;
		if (first) {
			softmax_context(e, w, e->a, sa, e->va, h, ch, d, true);
			fused_pack_ctx(e->cpa + h * cp, ch, d, e->T, d);
		}
		softmax_context(e, w, e->b, sb, e->vb, h, ch, d, !reuse);
		fused_pack_ctx(e->cpb + h * cp, ch, d, e->T, d);
		return;
	}
#endif
	if (first)
		softmax_context(e, w, e->a, sa, e->va, h, e->ca + h * e->d, e->nq,
				true);
	softmax_context(e, w, e->b, sb, e->vb, h, e->cb + h * e->d, e->nq, !reuse);
}

/* Phase S's tasks: the heads whose contexts change (and on a first run
 * the workers' score references cleared). Whether there are any. */
static bool plan_heads(Engine *e, bool first)
{
	bool any = false;
	e->n_heads_run = 0;
	for (size_t h = 0; h < e->H; h++)
		if (e->c_chg[h]) {
			e->heads[e->n_heads_run++] = h;
			any = true;
		}
	if (first)
		for (size_t i = 0; i < e->nworkers; i++)
			memset(e->w[i].boref, 0, e->T * sizeof(double));
	return any;
}

#endif
