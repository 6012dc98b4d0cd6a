/* The evaluation, written once for both precisions. Included by
 * attention.c with REAL, GEMM, ROPE_ROWS and FN(name) defined. */

/* The weights of one side in the compute precision. */
typedef struct {
	const REAL *wq, *wk, *wv, *wo, *bq, *bk, *bv, *bo, *qn, *kn;
	REAL *own;  /* one block holding converted copies (float only) */
} FN(Weights);

static RfStatus FN(weights_init)(FN(Weights) *w, const Layer *l)
{
	size_t D = l->shape.d_model, H = l->shape.n_heads;
	size_t G = l->shape.n_kv_heads, d = l->shape.head_dim;
	size_t nq = l->qk_norm_per_head ? d : H * d;
	size_t nk = l->qk_norm_per_head ? d : G * d;
	memset(w, 0, sizeof *w);
#if REAL_IS_DOUBLE
	w->wq = l->wq; w->wk = l->wk; w->wv = l->wv; w->wo = l->wo;
	w->bq = l->bq; w->bk = l->bk; w->bv = l->bv; w->bo = l->bo;
	w->qn = l->q_norm; w->kn = l->k_norm;
	(void)D; (void)H; (void)G; (void)d; (void)nq; (void)nk;
	return RF_OK;
#else
	struct { const double *src; size_t n; const REAL **dst; } t[] = {
		{l->wq, H * d * D, &w->wq}, {l->wk, G * d * D, &w->wk},
		{l->wv, G * d * D, &w->wv}, {l->wo, D * H * d, &w->wo},
		{l->bq, H * d, &w->bq},     {l->bk, G * d, &w->bk},
		{l->bv, G * d, &w->bv},     {l->bo, D, &w->bo},
		{l->q_norm, nq, &w->qn},    {l->k_norm, nk, &w->kn},
	};
	size_t total = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (t[i].src)
			total += t[i].n;
	w->own = malloc(total * sizeof(REAL));
	if (!w->own)
		return RF_ERR_NOMEM;
	REAL *p = w->own;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (!t[i].src)
			continue;
		for (size_t j = 0; j < t[i].n; j++)
			p[j] = (REAL)t[i].src[j];
		*t[i].dst = p;
		p += t[i].n;
	}
	return RF_OK;
#endif
}

static void FN(weights_done)(FN(Weights) *w)
{
	free(w->own);
	memset(w, 0, sizeof *w);
}

/* RMS-normalise groups of n entries of each row, times weight w (per
 * group when per_group, else over the whole row). */
static void FN(qk_norm)(REAL *x, size_t T, size_t nheads, size_t d,
			size_t ld, const REAL *w, bool per_head, double eps)
{
	size_t n = per_head ? d : nheads * d;
	size_t groups = per_head ? nheads : 1;
	for (size_t t = 0; t < T; t++) {
		for (size_t g = 0; g < groups; g++) {
			REAL *v = x + t * ld + g * n;
			double ss = 0.0;
			for (size_t i = 0; i < n; i++)
				ss += (double)v[i] * (double)v[i];
			REAL inv = (REAL)(1.0 / sqrt(ss / (double)n + eps));
			for (size_t i = 0; i < n; i++)
				v[i] = v[i] * inv * w[i];
		}
	}
}

/* Project x into q (T x H*d), k and v (T x G*d): bias, QK-norm, RoPE. */
static void FN(project)(const Layer *l, const FN(Weights) *w, const REAL *x,
			size_t T, const RopeTable *rope, REAL *q, REAL *k,
			REAL *v)
{
	size_t D = l->shape.d_model, H = l->shape.n_heads;
	size_t G = l->shape.n_kv_heads, d = l->shape.head_dim;
	size_t nq = H * d, nk = G * d;
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)nq, (int)D,
	     1, x, (int)D, w->wq, (int)D, 0, q, (int)nq);
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)nk, (int)D,
	     1, x, (int)D, w->wk, (int)D, 0, k, (int)nk);
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)nk, (int)D,
	     1, x, (int)D, w->wv, (int)D, 0, v, (int)nk);
	for (size_t t = 0; t < T; t++) {
		if (w->bq)
			for (size_t i = 0; i < nq; i++)
				q[t * nq + i] += w->bq[i];
		if (w->bk)
			for (size_t i = 0; i < nk; i++)
				k[t * nk + i] += w->bk[i];
		if (w->bv)
			for (size_t i = 0; i < nk; i++)
				v[t * nk + i] += w->bv[i];
	}
	if (w->qn)
		FN(qk_norm)(q, T, H, d, nq, w->qn, l->qk_norm_per_head,
			    l->qk_norm_eps);
	if (w->kn)
		FN(qk_norm)(k, T, G, d, nk, w->kn, l->qk_norm_per_head,
			    l->qk_norm_eps);
	ROPE_ROWS(rope, T, H, d, q, nq);
	ROPE_ROWS(rope, T, G, d, k, nk);
}

/* S = scale q_h k_g^T (T x T), only n <= m meaningful. */
static void FN(scores)(const Layer *l, const REAL *q, const REAL *k,
		       size_t T, size_t h, REAL *S)
{
	size_t H = l->shape.n_heads, G = l->shape.n_kv_heads;
	size_t d = l->shape.head_dim, g = h / (H / G);
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)d,
	     (REAL)layer_score_scale(l), q + h * d, (int)(H * d), k + g * d,
	     (int)(G * d), 0, S, (int)T);
}

/* Causal softmax of S into P in place, with max subtraction; then
 * C = P v_g (T x d) and O_h = C W_o,h^T (T x D). */
static void FN(head_output)(const Layer *l, const FN(Weights) *w,
			    const REAL *v, size_t T, size_t h, REAL *S,
			    REAL *C, REAL *O)
{
	size_t D = l->shape.d_model, H = l->shape.n_heads;
	size_t G = l->shape.n_kv_heads, d = l->shape.head_dim;
	size_t g = h / (H / G);
	for (size_t m = 0; m < T; m++) {
		REAL *row = S + m * T;
		REAL mx = row[0];
		for (size_t n = 1; n <= m; n++)
			if (row[n] > mx)
				mx = row[n];
		REAL sum = 0;
		for (size_t n = 0; n <= m; n++) {
			row[n] = (REAL)exp((double)(row[n] - mx));
			sum += row[n];
		}
		REAL inv = 1 / sum;
		for (size_t n = 0; n <= m; n++)
			row[n] *= inv;
		for (size_t n = m + 1; n < T; n++)
			row[n] = 0;
	}
	GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)d, (int)T,
	     1, S, (int)T, v + g * d, (int)(G * d), 0, C, (int)d);
	GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)D, (int)d,
	     1, C, (int)d, w->wo + h * d, (int)(H * d), 0, O, (int)D);
}

static RfStatus FN(compare)(const Layer *a, const Layer *b, const double *x64,
			    size_t T, const RopeTable *rope, InvReport *rep)
{
	size_t D = a->shape.d_model, H = a->shape.n_heads;
	size_t G = a->shape.n_kv_heads, d = a->shape.head_dim;
	size_t B = rep->heat_bins;
	FN(Weights) wa, wb;
	RfStatus st = FN(weights_init)(&wa, a);
	if (st != RF_OK)
		return st;
	st = FN(weights_init)(&wb, b);
	if (st != RF_OK) {
		FN(weights_done)(&wa);
		return st;
	}
	size_t nq = T * H * d, nk = T * G * d, TT = T * T, TD = T * D;
	/* One block: x, q/k/v of both sides, S, C, O of both, U of both. */
	size_t total = TD + 2 * (nq + 2 * nk) + 2 * TT + 2 * T * d + 4 * TD;
	REAL *buf = malloc(total * sizeof(REAL));
	if (!buf) {
		FN(weights_done)(&wa);
		FN(weights_done)(&wb);
		return RF_ERR_NOMEM;
	}
	REAL *x = buf, *qa = x + TD, *ka = qa + nq, *va = ka + nk;
	REAL *qb = va + nk, *kb = qb + nq, *vb = kb + nk;
	REAL *Sa = vb + nk, *Sb = Sa + TT, *Ca = Sb + TT, *Cb = Ca + T * d;
	REAL *Oa = Cb + T * d, *Ob = Oa + TD, *Ua = Ob + TD, *Ub = Ua + TD;
	for (size_t i = 0; i < TD; i++)
		x[i] = (REAL)x64[i];
	FN(project)(a, &wa, x, T, rope, qa, ka, va);
	FN(project)(b, &wb, x, T, rope, qb, kb, vb);
	memset(Ua, 0, TD * sizeof(REAL));
	memset(Ub, 0, TD * sizeof(REAL));

	LevelResult *ls = &rep->level[LEVEL_SCORE], *lh = &rep->level[LEVEL_HEAD];
	LevelResult *lr = &rep->level[LEVEL_RESIDUAL];
	for (size_t i = 0; i < H * B * B; i++)
		rep->heat[i] = -1.0;
	for (size_t h = 0; h < H; h++) {
		double s_err = 0, s_ref = 0, o_err = 0, o_ref = 0;
		double *heat = rep->heat + h * B * B;
		FN(scores)(a, qa, ka, T, h, Sa);
		FN(scores)(b, qb, kb, T, h, Sb);
		for (size_t m = 0; m < T; m++) {
			size_t bm = m * B / T;
			for (size_t n = 0; n <= m; n++) {
				double ref = fabs((double)Sa[m * T + n]);
				double e = fabs((double)Sa[m * T + n] - (double)Sb[m * T + n]);
				size_t off = m - n, bi = bm * B + n * B / T;
				if (ref > s_ref)
					s_ref = ref;
				if (e > s_err)
					s_err = e;
				if (e > ls->max_abs_err || (h == 0 && m == 0 && n == 0)) {
					ls->max_abs_err = e;
					ls->worst_head = h;
					ls->worst_m = m;
					ls->worst_n = n;
				}
				if (e > rep->by_offset[off])
					rep->by_offset[off] = e;
				if (ref > rep->by_offset_ref[off])
					rep->by_offset_ref[off] = ref;
				if (e > heat[bi])
					heat[bi] = e;
			}
		}
		if (s_ref > ls->ref_max)
			ls->ref_max = s_ref;
		rep->score_rel_err[h] = s_ref > 0 ? s_err / s_ref : s_err;

		FN(head_output)(a, &wa, va, T, h, Sa, Ca, Oa);
		FN(head_output)(b, &wb, vb, T, h, Sb, Cb, Ob);
		for (size_t i = 0; i < TD; i++) {
			double ref = fabs((double)Oa[i]);
			double e = fabs((double)Oa[i] - (double)Ob[i]);
			if (ref > o_ref)
				o_ref = ref;
			if (e > o_err)
				o_err = e;
			if (e > lh->max_abs_err) {
				lh->max_abs_err = e;
				lh->worst_head = h;
				lh->worst_m = i / D;
				lh->worst_coord = i % D;
			}
			Ua[i] += Oa[i];
			Ub[i] += Ob[i];
		}
		if (o_ref > lh->ref_max)
			lh->ref_max = o_ref;
		rep->head_rel_err[h] = o_ref > 0 ? o_err / o_ref : o_err;
	}
	/* Residual: y = x + U + b_o on both sides; reference is U alone. */
	for (size_t i = 0; i < TD; i++) {
		size_t c = i % D;
		REAL ya = x[i] + Ua[i] + (wa.bo ? wa.bo[c] : 0);
		REAL yb = x[i] + Ub[i] + (wb.bo ? wb.bo[c] : 0);
		double ref = fabs((double)Ua[i]);
		double e = fabs((double)ya - (double)yb);
		if (ref > lr->ref_max)
			lr->ref_max = ref;
		if (e > lr->max_abs_err) {
			lr->max_abs_err = e;
			lr->worst_m = i / D;
			lr->worst_coord = c;
		}
	}
	free(buf);
	FN(weights_done)(&wa);
	FN(weights_done)(&wb);
	return RF_OK;
}
