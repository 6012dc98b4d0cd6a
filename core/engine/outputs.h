#ifndef ROPEFOLD_CORE_ENGINE_OUTPUTS_H
#define ROPEFOLD_CORE_ENGINE_OUTPUTS_H

/* ======================= phase O: outputs ================================ */


/* max_j |a_j - b_j| over n entries, and u_j += b_j. */
HOT_CLONES
static double diff_max_add(const REAL *a, const REAL *b, REAL *u, size_t n)
{
	double m = 0;
	size_t j = 0;
#ifdef VEC4
	V4d vm = {0};
	for (; j + VLANES <= n; j += VLANES) {
		V4d x, y;
		V4_LOAD(x, a + j);
		V4_LOAD(y, b + j);
		V4d e = V4_ABS(x - y);
		v4_nan_inf(&e);
		V4_MAX(vm, e);
		V4_ADD_TO(u + j, b + j);
	}
	for (int i = 0; i < VLANES; i++)
		if (vm[i] > m)
			m = vm[i];
#endif
	for (; j < n; j++) {
		double ev = err_of((double)a[j], (double)b[j]);
		if (ev > m)
			m = ev;
		u[j] += b[j];
	}
	return m;
}

/* c_j = a_j over n entries, with streaming stores where c is aligned:
 * c is the output cache, read only by later runs, so writing it around
 * the caches saves the read for ownership and keeps the tiles in L2.
 * (The caller fences before the run ends.) */
static void stream_copy(REAL *c, const REAL *a, size_t n)
{
	size_t j = 0;
#if defined(__SSE2__)
	const size_t step = 16 / sizeof(REAL);
	if ((uintptr_t)c % 16 == 0)
		for (; j + step <= n; j += step)
#if REAL_IS_DOUBLE
			_mm_stream_pd(c + j, _mm_loadu_pd(a + j));
#else
			_mm_stream_ps(c + j, _mm_loadu_ps(a + j));
#endif
#endif
	if (j < n)
		memcpy(c + j, a + j, (n - j) * sizeof(REAL));
}

/* A first run's compare in one pass: max_j |a_j - b_j| (returned) and
 * max_j |a_j| (*ref) over n entries, ub_j += b_j and ua_j += a_j. */
HOT_CLONES
static double diff_ref_add(const REAL *a, const REAL *b, REAL *ua,
			   REAL *ub, size_t n, double *ref)
{
	double m = 0, r = 0;
	size_t j = 0;
#ifdef VEC4
	V4d vm = {0}, vr = {0};
	for (; j + VLANES <= n; j += VLANES) {
		V4d x, y;
		V4_LOAD(x, a + j);
		V4_LOAD(y, b + j);
		V4d e = V4_ABS(x - y);
		v4_nan_inf(&e);
		V4_MAX(vm, e);
		V4d f = V4_ABS(x);
		V4_MAX(vr, f);
		V4_ADD_TO(ub + j, b + j);
		V4_ADD_TO(ua + j, a + j);
	}
	for (int i = 0; i < VLANES; i++) {
		if (vm[i] > m)
			m = vm[i];
		if (vr[i] > r)
			r = vr[i];
	}
#endif
	for (; j < n; j++) {
		double ev = err_of((double)a[j], (double)b[j]);
		double rv = fabs((double)a[j]);
		if (ev > m)
			m = ev;
		if (rv > r)
			r = rv;
		ub[j] += b[j];
		ua[j] += a[j];
	}
	*ref = r;
	return m;
}

/* The first j with err_of(a_j, b_j) == target. */
static size_t diff_find(const REAL *a, const REAL *b, size_t n, double target)
{
	for (size_t j = 0; j < n; j++)
		if (err_of((double)a[j], (double)b[j]) == target)
			return j;
	return 0;
}

/* Compare one head's outputs on rows r0 .. r0+nr-1 of a coordinate block
 * (oa with leading dimension lda, ob with nc), add them into the update
 * blocks ua, ub (T x nc), and keep the worker's worst; on a first run,
 * copy oa to store (nr x nc) when not NULL, while it is in cache. */
static void out_compare(Engine *e, Worker *w, size_t h,
			size_t r0, size_t nr, size_t c0, size_t nc,
			const REAL *oa, size_t lda, const REAL *ob,
			REAL *ua, REAL *ub, bool first, REAL *store)
{
	size_t D = e->D;
	double err = w->h_err[h], ref = w->h_ref[h];
	size_t idx = w->h_idx[h];
	unsigned ovf = w->h_ovf[h];
	for (size_t i = 0; i < nr; i++) {
		const REAL *ra = oa + i * lda, *rb = ob + i * nc;
		double row_err, rv = 0;
		if (first) {
			/* one pass over the row; the cache copy while it is in L1 */
			row_err = diff_ref_add(ra, rb, ua + (r0 + i) * nc,
					       ub + (r0 + i) * nc, nc, &rv);
			if (store)
				stream_copy(store + i * nc, ra, nc);
			if (rv > ref)
				ref = rv;
		} else {
			row_err = diff_max_add(ra, rb, ub + (r0 + i) * nc, nc);
		}
		if (row_err > 0 && row_err >= err) {
			size_t j = diff_find(ra, rb, nc, row_err);
			size_t at = (r0 + i) * D + c0 + j;
			if (row_err > err || at < idx) {
				err = row_err;
				idx = at;
				ovf = isinf(err) ? ovf_side(ra[j], rb[j]) : 0;
			}
		}
	}
	w->h_err[h] = err;
	w->h_ref[h] = ref;
	w->h_idx[h] = idx;
	w->h_ovf[h] = ovf;
}

/* Coordinates c0 .. c0+nc-1 of every token: each head's outputs of both
 * sides, compared and summed in head order, then the residual. */
static void out_residual(Engine *e, Worker *w, size_t c0,
			 size_t nc, const REAL *ua, const REAL *ub, bool first);

static void out_block_gemm(Engine *e, Worker *w, size_t blk)
{
	size_t T = e->T, D = e->D, H = e->H, d = e->d, nq = e->nq, tb = e->tb;
	size_t c0 = blk * e->nc, nc = D - c0 < e->nc ? D - c0 : e->nc;
	bool first = !e->orig_ready;
	/* arena: the W'_o,h^T block (d x nc), O tiles (tb x nc) of both
	 * sides, the update blocks (T x nc) of both sides, a float rotation
	 * (d x d) */
	REAL *wt = w->arena, *oa_t = wt + d * nc;
	REAL *ob_t = oa_t + tb * nc;
	REAL *ua = ob_t + tb * nc, *ub = ua + T * nc, *rf = ub + T * nc;
	const REAL *woa = e->wa[3], *wob = e->ws[3];
	if (first)
		memset(ua, 0, T * nc * sizeof(REAL));
	memset(ub, 0, T * nc * sizeof(REAL));
	for (size_t h = 0; h < H; h++) {
		size_t oh = src_head(e, h);
		if (e->plan) {
			/* W'_o,h^T for these coordinates: R_o W_o,oh[c0.., :]^T */
			double t0 = timer_now();
			const REAL *R = rot(e->plan->ro + oh * d * d, d, rf);
			GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)nc,
			     (int)d, 1, R, (int)d, wob + c0 * nq + oh * d, (int)nq, 0,
			     wt, (int)nc);
			w->flops += 2.0 * (double)d * (double)d * (double)nc;
			w->fold_sec += timer_now() - t0;
		}
		bool fresh = first || h >= e->n_ocache;
		for (size_t r0 = 0; r0 < T; r0 += tb) {
			size_t nr = T - r0 < tb ? T - r0 : tb;
			/* cached O_h: the block of coordinates c0.. is T x nc,
			 * contiguous, at h T D + c0 T */
			REAL *slot = h < e->n_ocache
				? e->ocache + h * T * D + c0 * T + r0 * nc : NULL;
			/* a first run multiplies into the scratch tile, in cache,
			 * and the compare copies it to the slot */
			REAL *oa = fresh || !slot ? oa_t : slot;
			if (fresh) {
				/* O_h = C_h W_o,h^T straight from W_o's rows: no
				 * transposed copy of the block */
				GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr,
				     (int)nc, (int)d, 1, e->ca + r0 * nq + h * d, (int)nq,
				     woa + c0 * nq + h * d, (int)nq, 0, oa, (int)nc);
				w->flops += 2.0 * (double)nr * (double)nc * (double)d;
			}
			if (e->plan)
				GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr,
				     (int)nc, (int)d, 1, e->cb + r0 * nq + h * d, (int)nq,
				     wt, (int)nc, 0, ob_t, (int)nc);
			else
				GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr,
				     (int)nc, (int)d, 1, e->cb + r0 * nq + h * d, (int)nq,
				     wob + c0 * nq + h * d, (int)nq, 0, ob_t, (int)nc);
			w->flops += 2.0 * (double)nr * (double)nc * (double)d;
			out_compare(e, w, h, r0, nr, c0, nc, oa, nc, ob_t, ua, ub,
				    first, fresh ? slot : NULL);
		}
	}
	out_residual(e, w, c0, nc, ua, ub, first);
}

/* The residual y = x + U + b_o of both sides on coordinates c0 .. c0+nc-1
 * (update blocks ua, ub: T x nc; on a first run ua becomes the cached
 * U); the reference is U alone. */
static void out_residual(Engine *e, Worker *w, size_t c0,
			 size_t nc, const REAL *ua, const REAL *ub, bool first)
{
	size_t T = e->T, D = e->D;
	const REAL *boa = e->a->bo ? e->sm_a.bo : NULL;
	const REAL *bob = e->b->bo ? e->sm_b.bo : NULL;
	for (size_t t = 0; t < T; t++) {
		REAL *uc = e->ua + t * D + c0;
		const REAL *uat = ua + t * nc;
		if (first)
			memcpy(uc, uat, nc * sizeof(REAL));
		const REAL *xr = e->x + t * D + c0, *ubt = ub + t * nc;
		for (size_t j = 0; j < nc; j++) {
			size_t c = c0 + j;
			REAL ya = xr[j] + uc[j] + (boa ? boa[c] : 0);
			REAL yb = xr[j] + ubt[j] + (bob ? bob[c] : 0);
			double ev = err_of((double)ya, (double)yb);
			double rv = fabs((double)uc[j]);
			size_t at = t * D + c;
			if (rv > w->r_ref)
				w->r_ref = rv;
			if (ev > w->r_err || (ev == w->r_err && ev > 0 && at < w->r_idx)) {
				w->r_err = ev;
				w->r_idx = at;
				w->r_ovf = isinf(ev) ? ovf_side(ya, yb) : 0;
			}
		}
	}
#if defined(__SSE2__)
	if (first)
		_mm_sfence();  /* the cache's streaming stores are done */
#endif
}

#ifdef FUSED_KERNEL
/* out_block_gemm by the fused kernel: per head, per column sub-block, both
 * sides' W_o panels (the folded side's folded into panel form straight
 * from the source head's: R_o W_o,src^T), then every token's tiles
 * compared and summed in registers. */
static void out_block_fused(Engine *e, Worker *w, size_t blk)
{
	size_t T = e->T, D = e->D, H = e->H, d = e->d, nq = e->nq;
	size_t c0 = blk * e->nc, nc = D - c0 < e->nc ? D - c0 : e->nc;
	size_t cp = e->cp_rows * d;
	bool first = !e->orig_ready;
	/* arena: panels of a sub-block (d x FUSED_SUB each) of the original,
	 * the folded side and the folded side's source, the update blocks
	 * (T x nc), a float rotation (d x d) and R packed (rows(d) x d) */
	REAL *pa = w->arena, *pb = pa + d * FUSED_SUB, *ps = pb + d * FUSED_SUB;
	REAL *ua = ps + d * FUSED_SUB, *ub = ua + T * nc, *rf = ub + T * nc;
	REAL *rp = rf + d * d;
	const REAL *woa = e->wa[3], *wob = e->ws[3];
	if (first)
		memset(ua, 0, T * nc * sizeof(REAL));
	memset(ub, 0, T * nc * sizeof(REAL));
	for (size_t h = 0; h < H; h++) {
		size_t oh = src_head(e, h);
		bool fresh = first || h >= e->n_ocache;
		if (e->plan) {
			const REAL *R = rot(e->plan->ro + oh * d * d, d, rf);
			fused_pack_ctx(rp, R, d, d, d);
		}
		REAL *slot = h < e->n_ocache ? e->ocache + h * T * D + c0 * T : NULL;
		FusedHead s = {
			.T = T, .D = D, .nc = nc, .c0 = c0, .first = first,
			.ua = ua, .ub = ub, .store = fresh ? slot : NULL,
			.cached = fresh ? NULL : slot,
			.err = w->h_err[h], .ref = w->h_ref[h], .idx = w->h_idx[h],
			.ovf = w->h_ovf[h],
		};
		for (size_t j0 = 0; j0 < nc; j0 += FUSED_SUB) {
			size_t n = nc - j0 < FUSED_SUB ? nc - j0 : FUSED_SUB;
			if (fresh)
				fused_pack_rows(pa, woa + (c0 + j0) * nq + h * d, nq,
						n, d);
			/* the folded side's source panels: the original's when
			 * they are the same weights */
			const REAL *src = pa;
			if (!fresh || wob != woa || oh != h) {
				fused_pack_rows(ps, wob + (c0 + j0) * nq + oh * d, nq,
						n, d);
				src = ps;
			}
			if (e->plan) {
				double t0 = timer_now();
				fused_fold_panels(pb, rp, src, n, d);
				w->flops += 2.0 * (double)d * (double)d * (double)n;
				w->fold_sec += timer_now() - t0;
			}
			fused_head_cols(&s, e->cpa + h * cp, e->cpb + h * cp, pa,
					e->plan ? pb : src, j0, n, d);
		}
		w->flops += 2.0 * (double)T * (double)nc * (double)d * (fresh ? 2 : 1);
		w->h_err[h] = s.err;
		w->h_ref[h] = s.ref;
		w->h_idx[h] = s.idx;
		w->h_ovf[h] = s.ovf;
	}
	out_residual(e, w, c0, nc, ua, ub, first);
}
#endif

#endif
