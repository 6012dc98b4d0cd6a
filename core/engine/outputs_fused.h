#ifndef ROPEFOLD_CORE_ENGINE_OUTPUTS_FUSED_H
#define ROPEFOLD_CORE_ENGINE_OUTPUTS_FUSED_H

/* The output phase's fused kernel, written once for both precisions in
 * terms of REAL (template.h includes it; out_block_fused in outputs.h
 * drives it).
 *
 * O_h = C_h W_o,h^T has an inner dimension of one head (d = 128 in most
 * models), where a library GEMM spends a third of its time packing and
 * writing T x nc products that the comparison then reads back. Here both
 * sides' products of a 4-token by 2-vector tile are accumulated in
 * registers (AVX-512: 16 of them) and compared, summed into the
 * attention updates and stored to the output cache straight from there:
 * no product tile ever goes through memory. Contexts come packed four
 * tokens interleaved by phase S; W_o blocks are packed into column panels
 * here, one column sub-block (both sides' panels fit in L2) at a time.
 *
 * Compiled for AVX-512 with a target attribute. The caller chooses it
 * through AttnKernel (core/attention.h); an engine takes it when
 * attention_kernel_fused() says the CPU has AVX-512, else it keeps the
 * GEMM path (outputs.h). */

#if defined(__x86_64__) && defined(__GNUC__)
#define FUSED_KERNEL 1
#define FUSED_TARGET __attribute__((target("avx512f,avx512dq,fma")))
#define FUSED_VL (64 / (int)sizeof(REAL))   /* entries of one vector */
#define FUSED_PW (2 * FUSED_VL)              /* columns of one panel */
#define FUSED_MR 4                          /* tokens of one A micro-panel */

typedef REAL VZ __attribute__((vector_size(64)));
#if REAL_IS_DOUBLE
typedef long long VZi __attribute__((vector_size(64)));
#define FUSED_ABSMASK INT64_MAX
#else
typedef int VZi __attribute__((vector_size(64)));
#define FUSED_ABSMASK INT32_MAX
#endif

#define VZ_ABS(v) ((VZ)((VZi)(v) & ((VZi){0} + FUSED_ABSMASK)))
#define VZ_MAX(m, e)                                                    \
	do {                                                            \
		VZi gt_ = (e) > (m);                                    \
		m = (VZ)(((VZi)(e) & gt_) | ((VZi)(m) & ~gt_));         \
	} while (0)
#define VZ_LOAD(dst, p) memcpy(&(dst), (p), sizeof(VZ))
/* acc += a x, fused (ISO C mode does not contract a * x + acc) */
#if REAL_IS_DOUBLE
#define VZ_STREAM(p, v) _mm512_stream_pd((p), (__m512d)(v))
#define VZ_FMA(acc, a, x)                                               \
	(acc = (VZ)_mm512_fmadd_pd(_mm512_set1_pd(a), (__m512d)(x), (__m512d)(acc)))
#else
#define VZ_STREAM(p, v) _mm512_stream_ps((p), (__m512)(v))
#define VZ_FMA(acc, a, x)                                               \
	(acc = (VZ)_mm512_fmadd_ps(_mm512_set1_ps(a), (__m512)(x), (__m512)(acc)))
#endif
#define VZ_STORE(p, src) memcpy((p), &(src), sizeof(VZ))

/* NaN lanes of an error vector become +Inf: an overflowed side wins every
 * max (as err_of does in the plain loops). */
FUSED_TARGET
static inline VZ vz_nan_inf(VZ e)
{
	VZi num = e == e;
	VZ inf = (VZ){0} + (REAL)INFINITY;
	return (VZ)(((VZi)e & num) | ((VZi)inf & ~num));
}

/* Rows of a packed context buffer: T rounded up to two micro-panels. */
static size_t fused_rows(size_t T)
{
	return (T + 2 * FUSED_MR - 1) / (2 * FUSED_MR) * (2 * FUSED_MR);
}

/* Pack C_h (T x d, leading dimension ld) four tokens interleaved:
 * dst[(m/4) d 4 + k 4 + m%4] = C_h[m][k], zero past T. Plain C: phase S
 * calls it on every machine, while the rows are in cache. */
static void fused_pack_ctx(REAL *dst, const REAL *c, size_t ld, size_t T,
			   size_t d)
{
	size_t rows = fused_rows(T);
	for (size_t m0 = 0; m0 < rows; m0 += FUSED_MR) {
		REAL *o = dst + m0 * d;
		for (size_t i = 0; i < FUSED_MR; i++) {
			size_t m = m0 + i;
			const REAL *src = c + m * ld;
			if (m < T)
				for (size_t k = 0; k < d; k++)
					o[k * FUSED_MR + i] = src[k];
			else
				for (size_t k = 0; k < d; k++)
					o[k * FUSED_MR + i] = 0;
		}
	}
}

#if REAL_IS_DOUBLE
/* Eight rows of 8 doubles in, their eight columns out: row j of the
 * block is src + j ld, column k goes to dst + k ldd. */
FUSED_TARGET
static inline void fused_t8x8(double *dst, size_t ldd, const double *src,
			      size_t ld)
{
	__m512d r0 = _mm512_loadu_pd(src), r1 = _mm512_loadu_pd(src + ld);
	__m512d r2 = _mm512_loadu_pd(src + 2 * ld), r3 = _mm512_loadu_pd(src + 3 * ld);
	__m512d r4 = _mm512_loadu_pd(src + 4 * ld), r5 = _mm512_loadu_pd(src + 5 * ld);
	__m512d r6 = _mm512_loadu_pd(src + 6 * ld), r7 = _mm512_loadu_pd(src + 7 * ld);
	__m512d t0 = _mm512_unpacklo_pd(r0, r1), t1 = _mm512_unpackhi_pd(r0, r1);
	__m512d t2 = _mm512_unpacklo_pd(r2, r3), t3 = _mm512_unpackhi_pd(r2, r3);
	__m512d t4 = _mm512_unpacklo_pd(r4, r5), t5 = _mm512_unpackhi_pd(r4, r5);
	__m512d t6 = _mm512_unpacklo_pd(r6, r7), t7 = _mm512_unpackhi_pd(r6, r7);
	const __m512i lo2 = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
	const __m512i hi2 = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
	__m512d u0 = _mm512_permutex2var_pd(t0, lo2, t2);
	__m512d u1 = _mm512_permutex2var_pd(t0, hi2, t2);
	__m512d u2 = _mm512_permutex2var_pd(t1, lo2, t3);
	__m512d u3 = _mm512_permutex2var_pd(t1, hi2, t3);
	__m512d u4 = _mm512_permutex2var_pd(t4, lo2, t6);
	__m512d u5 = _mm512_permutex2var_pd(t4, hi2, t6);
	__m512d u6 = _mm512_permutex2var_pd(t5, lo2, t7);
	__m512d u7 = _mm512_permutex2var_pd(t5, hi2, t7);
	const __m512i lo4 = _mm512_set_epi64(11, 10, 9, 8, 3, 2, 1, 0);
	const __m512i hi4 = _mm512_set_epi64(15, 14, 13, 12, 7, 6, 5, 4);
	_mm512_storeu_pd(dst, _mm512_permutex2var_pd(u0, lo4, u4));
	_mm512_storeu_pd(dst + ldd, _mm512_permutex2var_pd(u2, lo4, u6));
	_mm512_storeu_pd(dst + 2 * ldd, _mm512_permutex2var_pd(u1, lo4, u5));
	_mm512_storeu_pd(dst + 3 * ldd, _mm512_permutex2var_pd(u3, lo4, u7));
	_mm512_storeu_pd(dst + 4 * ldd, _mm512_permutex2var_pd(u0, hi4, u4));
	_mm512_storeu_pd(dst + 5 * ldd, _mm512_permutex2var_pd(u2, hi4, u6));
	_mm512_storeu_pd(dst + 6 * ldd, _mm512_permutex2var_pd(u1, hi4, u5));
	_mm512_storeu_pd(dst + 7 * ldd, _mm512_permutex2var_pd(u3, hi4, u7));
}
#endif

/* Panels of columns [j0, j0+n) of B^T where B is row-major with rows
 * j (ld ldb), d entries from column k0: dst[p][k][PW]; zero past n. */
FUSED_TARGET
static void fused_pack_rows(REAL *dst, const REAL *b, size_t ldb, size_t n,
			    size_t d)
{
	for (size_t p0 = 0; p0 < n; p0 += FUSED_PW) {
		REAL *o = dst + p0 * d;
		size_t pn = n - p0 < (size_t)FUSED_PW ? n - p0 : FUSED_PW;
#if REAL_IS_DOUBLE
		if (pn == (size_t)FUSED_PW && d % 8 == 0) {
			/* whole panel: 8 x 8 blocks through registers */
			for (size_t j0 = 0; j0 < (size_t)FUSED_PW; j0 += 8)
				for (size_t k0 = 0; k0 < d; k0 += 8)
					fused_t8x8(o + k0 * FUSED_PW + j0, FUSED_PW,
						   b + (p0 + j0) * ldb + k0, ldb);
			continue;
		}
#endif
		for (size_t j = 0; j < (size_t)FUSED_PW; j++) {
			if (j < pn) {
				const REAL *src = b + (p0 + j) * ldb;
				for (size_t k = 0; k < d; k++)
					o[k * FUSED_PW + j] = src[k];
			} else {
				for (size_t k = 0; k < d; k++)
					o[k * FUSED_PW + j] = 0;
			}
		}
	}
}

/* Both sides' 4 x PW tile: oa = A_a B_a, ob = A_b B_b over d. */
FUSED_TARGET
static void fused_tile2(const REAL *aa, const REAL *ab, const REAL *ba,
			const REAL *bb, size_t d, VZ oa[8], VZ ob[8])
{
	VZ a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
	VZ a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
	VZ b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
	VZ b4 = {0}, b5 = {0}, b6 = {0}, b7 = {0};
	for (size_t k = 0; k < d; k++) {
		VZ x0, x1, y0, y1;
		VZ_LOAD(x0, ba + k * FUSED_PW);
		VZ_LOAD(x1, ba + k * FUSED_PW + FUSED_VL);
		VZ_LOAD(y0, bb + k * FUSED_PW);
		VZ_LOAD(y1, bb + k * FUSED_PW + FUSED_VL);
		const REAL *p = aa + k * FUSED_MR, *q = ab + k * FUSED_MR;
		VZ_FMA(a0, p[0], x0); VZ_FMA(a1, p[0], x1);
		VZ_FMA(a2, p[1], x0); VZ_FMA(a3, p[1], x1);
		VZ_FMA(a4, p[2], x0); VZ_FMA(a5, p[2], x1);
		VZ_FMA(a6, p[3], x0); VZ_FMA(a7, p[3], x1);
		VZ_FMA(b0, q[0], y0); VZ_FMA(b1, q[0], y1);
		VZ_FMA(b2, q[1], y0); VZ_FMA(b3, q[1], y1);
		VZ_FMA(b4, q[2], y0); VZ_FMA(b5, q[2], y1);
		VZ_FMA(b6, q[3], y0); VZ_FMA(b7, q[3], y1);
	}
	oa[0] = a0; oa[1] = a1; oa[2] = a2; oa[3] = a3;
	oa[4] = a4; oa[5] = a5; oa[6] = a6; oa[7] = a7;
	ob[0] = b0; ob[1] = b1; ob[2] = b2; ob[3] = b3;
	ob[4] = b4; ob[5] = b5; ob[6] = b6; ob[7] = b7;
}

/* One side's 8 x PW tile (two micro-panels a0, a1): o = A B over d. */
FUSED_TARGET
static void fused_tile1(const REAL *a0p, const REAL *a1p, const REAL *b,
			size_t d, VZ o[16])
{
	VZ c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
	VZ c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0};
	VZ c8 = {0}, c9 = {0}, c10 = {0}, c11 = {0};
	VZ c12 = {0}, c13 = {0}, c14 = {0}, c15 = {0};
	for (size_t k = 0; k < d; k++) {
		VZ x0, x1;
		VZ_LOAD(x0, b + k * FUSED_PW);
		VZ_LOAD(x1, b + k * FUSED_PW + FUSED_VL);
		const REAL *p = a0p + k * FUSED_MR, *q = a1p + k * FUSED_MR;
		VZ_FMA(c0, p[0], x0); VZ_FMA(c1, p[0], x1);
		VZ_FMA(c2, p[1], x0); VZ_FMA(c3, p[1], x1);
		VZ_FMA(c4, p[2], x0); VZ_FMA(c5, p[2], x1);
		VZ_FMA(c6, p[3], x0); VZ_FMA(c7, p[3], x1);
		VZ_FMA(c8, q[0], x0); VZ_FMA(c9, q[0], x1);
		VZ_FMA(c10, q[1], x0); VZ_FMA(c11, q[1], x1);
		VZ_FMA(c12, q[2], x0); VZ_FMA(c13, q[2], x1);
		VZ_FMA(c14, q[3], x0); VZ_FMA(c15, q[3], x1);
	}
	o[0] = c0; o[1] = c1; o[2] = c2; o[3] = c3;
	o[4] = c4; o[5] = c5; o[6] = c6; o[7] = c7;
	o[8] = c8; o[9] = c9; o[10] = c10; o[11] = c11;
	o[12] = c12; o[13] = c13; o[14] = c14; o[15] = c15;
}

/* The folded side's panels of a sub-block: pb = R src, where src holds
 * the source head's W_o panels (columns of W_o,src^T) and rp is R packed
 * like a context (four rows interleaved, rows padded to eight). */
FUSED_TARGET
static void fused_fold_panels(REAL *pb, const REAL *rp, const REAL *src,
			      size_t n, size_t d)
{
	VZ o[16];
	for (size_t p0 = 0; p0 < n; p0 += FUSED_PW)
		for (size_t k0 = 0; k0 < d; k0 += 2 * FUSED_MR) {
			fused_tile1(rp + k0 * d, rp + (k0 + FUSED_MR) * d,
				    src + p0 * d, d, o);
			size_t rows = d - k0 < 2 * FUSED_MR ? d - k0 : 2 * FUSED_MR;
			for (size_t i = 0; i < rows; i++) {
				REAL *row = pb + p0 * d + (k0 + i) * FUSED_PW;
				VZ_STORE(row, o[2 * i]);
				VZ_STORE(row + FUSED_VL, o[2 * i + 1]);
			}
		}
}

/* Where the tile's largest |oa - ob| (== *mx) first occurs, as m D + c;
 * *ovf: its OVERFLOW_* bits when *mx is +Inf, else 0. An infinite *mx is
 * taken again in double, as the plain loops take every difference (two
 * large finite floats may differ by more than FLT_MAX): *mx may come back
 * smaller. */
static size_t fused_find(const REAL *oa, const REAL *ob, size_t rows,
			 size_t cols, size_t m0, size_t c0, size_t D,
			 double *mx, unsigned *ovf)
{
	bool exact = isinf(*mx);
	*ovf = 0;
	if (exact) {
		double m = 0;
		for (size_t i = 0; i < rows; i++)
			for (size_t j = 0; j < cols; j++) {
				size_t at = i * FUSED_PW + j;
				double v = err_of((double)oa[at], (double)ob[at]);
				m = v > m ? v : m;
			}
		*mx = m;
	}
	for (size_t i = 0; i < rows; i++)
		for (size_t j = 0; j < cols; j++) {
			size_t at = i * FUSED_PW + j;
			double v;
			if (exact) {
				v = err_of((double)oa[at], (double)ob[at]);
			} else {
				REAL e = oa[at] - ob[at];  /* as the vectors did */
				v = fabs((double)e);
			}
			if (v == *mx) {
				if (isinf(v))
					*ovf = ovf_side((double)oa[at], (double)ob[at]);
				return (m0 + i) * D + c0 + j;
			}
		}
	return m0 * D + c0;
}

/* What one head of one coordinate block does with a finished tile. */
typedef struct {
	size_t T, D, nc;           /* the block: columns c0 .. c0+nc-1 */
	size_t c0;
	bool first;                /* sum the original too, keep its max */
	REAL *ua, *ub;             /* T x nc update blocks */
	REAL *store;               /* T x nc cache slot to fill, or NULL */
	const REAL *cached;        /* T x nc cached O_a to read, or NULL */
	double err, ref;           /* this head's worst so far */
	size_t idx;
	unsigned ovf;              /* OVERFLOW_* bits at idx (err +Inf) */
} FusedHead;

/* Tile rows m0 .. m0+rows-1, block columns j0 .. j0+cols-1 (cols <= PW):
 * compare, sum, store. ob holds rows x PW entries, row-major, and so
 * does oa unless the original comes from the cache (s->cached). */
FUSED_TARGET
static void fused_finish(FusedHead *s, VZ *oa, const VZ *ob,
			 size_t m0, size_t rows, size_t j0, size_t cols)
{
	size_t nc = s->nc;
	VZ em = {0}, rm = {0};
	if (s->cached && cols < (size_t)FUSED_PW)
		for (size_t i = 0; i < rows; i++)
			memcpy((REAL *)oa + i * FUSED_PW,
			       s->cached + (m0 + i) * nc + j0, cols * sizeof(REAL));
	if (cols == (size_t)FUSED_PW) {
		for (size_t i = 0; i < rows; i++) {
			size_t off = (m0 + i) * nc + j0;
			for (int v = 0; v < 2; v++) {
				VZ a, b = ob[2 * i + v], u;
				if (s->cached)
					VZ_LOAD(a, s->cached + off + v * FUSED_VL);
				else
					a = oa[2 * i + v];
				VZ e = vz_nan_inf(VZ_ABS(a - b));
				VZ_MAX(em, e);
				VZ_LOAD(u, s->ub + off + v * FUSED_VL);
				u += b;
				VZ_STORE(s->ub + off + v * FUSED_VL, u);
				if (s->first) {
					VZ r = VZ_ABS(a);
					VZ_MAX(rm, r);
					VZ_LOAD(u, s->ua + off + v * FUSED_VL);
					u += a;
					VZ_STORE(s->ua + off + v * FUSED_VL, u);
				}
				if (s->store) {
					/* around the caches: read by later runs only */
					REAL *at = s->store + off + v * FUSED_VL;
					if ((uintptr_t)at % 64 == 0)
						VZ_STREAM(at, a);
					else
						VZ_STORE(at, a);
				}
			}
		}
	} else {
		const REAL *pa = (const REAL *)oa, *pb = (const REAL *)ob;
		for (size_t i = 0; i < rows; i++) {
			size_t off = (m0 + i) * nc + j0;
			for (size_t j = 0; j < cols; j++) {
				REAL a = pa[i * FUSED_PW + j], b = pb[i * FUSED_PW + j];
				REAL e = a - b;
				e = e < 0 ? -e : e;
				if (e != e)
					e = (REAL)INFINITY;
				if (e > em[0])
					em[0] = e;
				s->ub[off + j] += b;
				if (s->first) {
					REAL r = a < 0 ? -a : a;
					if (r > rm[0])
						rm[0] = r;
					s->ua[off + j] += a;
				}
				if (s->store)
					s->store[off + j] = a;
			}
		}
	}
	double mx = 0, rx = 0;
	for (int l = 0; l < FUSED_VL; l++) {
		if ((double)em[l] > mx)
			mx = (double)em[l];
		if ((double)rm[l] > rx)
			rx = (double)rm[l];
	}
	if (rx > s->ref)
		s->ref = rx;
	if (mx > 0 && mx >= s->err) {
		if (s->cached && cols == (size_t)FUSED_PW)
			for (size_t i = 0; i < rows; i++)
				memcpy((REAL *)oa + i * FUSED_PW,
				       s->cached + (m0 + i) * nc + j0,
				       cols * sizeof(REAL));
		unsigned ovf;
		size_t at = fused_find((const REAL *)oa, (const REAL *)ob, rows,
				       cols, m0, s->c0 + j0, s->D, &mx, &ovf);
		if (mx > s->err || (mx == s->err && mx > 0 && at < s->idx)) {
			s->err = mx;
			s->idx = at;
			s->ovf = ovf;
		}
	}
}

/* Ask for a tile's rows of the update blocks (and of the cached O_a)
 * while the tile is computed: they come from L3, one head later. */
FUSED_TARGET
static void fused_prefetch(const FusedHead *s, size_t m0, size_t rows,
			   size_t j)
{
	for (size_t i = 0; i < rows; i++) {
		size_t off = (m0 + i) * s->nc + j;
		_mm_prefetch((const char *)(s->ub + off), _MM_HINT_T0);
		_mm_prefetch((const char *)(s->ub + off + FUSED_VL), _MM_HINT_T0);
		if (s->first) {
			_mm_prefetch((const char *)(s->ua + off), _MM_HINT_T0);
			_mm_prefetch((const char *)(s->ua + off + FUSED_VL), _MM_HINT_T0);
		}
		if (s->cached) {
			_mm_prefetch((const char *)(s->cached + off), _MM_HINT_T0);
			_mm_prefetch((const char *)(s->cached + off + FUSED_VL),
				     _MM_HINT_T0);
		}
	}
}

/* One head over columns [j0, j0+n) of the block, rows 0 .. T-1:
 * pa, pb the packed contexts, ba, bb the packed panels (ba unused when
 * the original comes from the cache). */
FUSED_TARGET
static void fused_head_cols(FusedHead *s, const REAL *pa, const REAL *pb,
			    const REAL *ba, const REAL *bb, size_t j0,
			    size_t n, size_t d)
{
	size_t T = s->T;
	VZ oa[16], ob[16];
	if (s->cached) {
		/* the original's tile from the cache, the folded side's
		 * eight tokens at a time */
		for (size_t m0 = 0; m0 < T; m0 += 2 * FUSED_MR) {
			size_t rows = T - m0 < 2 * FUSED_MR ? T - m0 : 2 * FUSED_MR;
			const REAL *a0 = pb + m0 * d, *a1 = a0 + FUSED_MR * d;
			for (size_t p0 = 0; p0 < n; p0 += FUSED_PW) {
				size_t cols = n - p0 < (size_t)FUSED_PW ? n - p0 : FUSED_PW;
				fused_prefetch(s, m0, rows, j0 + p0);
				fused_tile1(a0, a1, bb + p0 * d, d, ob);
				fused_finish(s, oa, ob, m0, rows, j0 + p0, cols);
			}
		}
		return;
	}
	for (size_t m0 = 0; m0 < T; m0 += FUSED_MR) {
		size_t rows = T - m0 < FUSED_MR ? T - m0 : FUSED_MR;
		for (size_t p0 = 0; p0 < n; p0 += FUSED_PW) {
			size_t cols = n - p0 < (size_t)FUSED_PW ? n - p0 : FUSED_PW;
			fused_prefetch(s, m0, rows, j0 + p0);
			fused_tile2(pa + m0 * d, pb + m0 * d, ba + p0 * d,
				    bb + p0 * d, d, oa, ob);
			fused_finish(s, oa, ob, m0, rows, j0 + p0, cols);
		}
	}
}
#endif /* x86-64 */

#endif
