#include "config.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "data/ggml_quant_impl.h"

/* The quantizers llama.cpp's quantize tool runs when it has no importance
 * matrix: ggml-quants.c's quantize_row_*_ref (and quantize_iq4_nl's search
 * for IQ4_NL, which the tool calls instead of its _ref). Each search is
 * ggml's, operation for operation in float (the same sums in the same
 * order, the same roundings), so that the stored bytes are ggml's. Every
 * function here quantizes one block of x into f (codes as ggml_quant_pack wants
 * them). */

/* Below this a group counts as all zero (ggml's GROUP_MAX_EPS). */
#define GROUP_EPS 1e-15f

/* ggml's nearest_int: ties to even, meaningful for |v| < 2^22 (what a
 * finite block gives); clamped beyond, so that no float-to-int conversion
 * overflows. */
static int nearest(float v)
{
	if (!(fabsf(v) <= 4194303.f))
		return v < 0 ? -4194303 : 4194303;
	return (int)rintf(v);
}

static int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* The element of largest magnitude (the first of them) and its |.|. */
static float signed_absmax(const float *x, int n, float *amax)
{
	float max = 0;
	*amax = 0;
	for (int i = 0; i < n; i++) {
		float ax = fabsf(x[i]);
		if (ax > *amax) {
			*amax = ax;
			max = x[i];
		}
	}
	return max;
}

/* ---- 32-element blocks with one scale ----------------------------------------- */

/* Q4_0 (half = 8) and Q5_0 (half = 16): d = max / -half, codes
 * trunc(x / d + half + 1/2) capped at 2 half - 1. */
static void quant_sym(const float *x, int half, QFields *f)
{
	float amax, max = signed_absmax(x, 32, &amax);
	float d = max / (float)-half;
	float id = d ? 1.0f / d : 0.0f;
	f->d = ggml_quant_f32_to_f16(d);
	for (int j = 0; j < 32; j++) {
		float x0 = x[j] * id;
		int c = (int)(x0 + ((float)half + 0.5f));
		f->q[j] = (uint8_t)(c < 2 * half - 1 ? c : 2 * half - 1);
	}
}

/* Q4_1 (nmax 15) and Q5_1 (nmax 31): d = (max - min) / nmax, m = min,
 * codes trunc((x - min) / d + 1/2) (Q4_1 capped at 15). */
static void quant_affine(const float *x, int nmax, QFields *f)
{
	float min = FLT_MAX, max = -FLT_MAX;
	for (int j = 0; j < 32; j++) {
		if (x[j] < min)
			min = x[j];
		if (x[j] > max)
			max = x[j];
	}
	float d = (max - min) / (float)nmax;
	float id = d ? 1.0f / d : 0.0f;
	f->d = ggml_quant_f32_to_f16(d);
	f->m = ggml_quant_f32_to_f16(min);
	for (int j = 0; j < 32; j++) {
		float x0 = (x[j] - min) * id;
		int c = (int)(x0 + 0.5f);
		f->q[j] = (uint8_t)(nmax == 15 && c > 15 ? 15 : c);
	}
}

/* Q8_0: d = amax / 127, codes roundf(x / d) (ties away from zero). */
static void quant_q8_0(const float *x, QFields *f)
{
	float amax = 0;
	for (int j = 0; j < 32; j++)
		amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
	float d = amax / 127.0f;
	float id = d ? 1.0f / d : 0.0f;
	f->d = ggml_quant_f32_to_f16(d);
	for (int j = 0; j < 32; j++) {
		float x0 = x[j] * id;
		f->q[j] = (uint8_t)((int)roundf(x0) + 128);
	}
}

/* ---- the K-quants' fits of one sub-block -------------------------------------- */

/* ggml's make_qkx2_quants: levels L in [0, nmax] and a scale and min
 * (min <= 0) for x ~ scale L + min, the best weighted error (absolute
 * with mad, squared without) over nstep + 1 trial scales
 * (rmin + rdelta is + nmax) / (max - min), each refitted by least squares.
 * Returns the scale; *neg_min gets -min. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
			   float *neg_min, float rmin, float rdelta, int nstep, bool mad)
{
	float min = x[0], max = x[0];
	float sum_w = w[0];
	float sum_x = sum_w * x[0];
	for (int i = 1; i < n; i++) {
		if (x[i] < min)
			min = x[i];
		if (x[i] > max)
			max = x[i];
		float wx = w[i] * x[i];
		sum_w += w[i];
		sum_x += wx;
	}
	if (min > 0)
		min = 0;
	if (max == min) {
		memset(L, 0, (size_t)n);
		*neg_min = -min;
		return 0.f;
	}
	float iscale = (float)nmax / (max - min);
	float scale = 1 / iscale;
	float best = 0;
	for (int i = 0; i < n; i++) {
		int l = nearest(iscale * (x[i] - min));
		L[i] = (uint8_t)clampi(l, 0, nmax);
		float sl = scale * (float)L[i];
		float sm = sl + min;
		float diff = sm - x[i];
		diff = mad ? fabsf(diff) : diff * diff;
		float wd = w[i] * diff;
		best += wd;
	}
	if (nstep < 1) {
		*neg_min = -min;
		return scale;
	}
	uint8_t Laux[32];
	for (int is = 0; is <= nstep; is++) {
		float r = rdelta * (float)is;
		float rr = rmin + r;
		iscale = (rr + (float)nmax) / (max - min);
		float sum_l = 0, sum_l2 = 0, sum_xl = 0;
		for (int i = 0; i < n; i++) {
			int l = clampi(nearest(iscale * (x[i] - min)), 0, nmax);
			Laux[i] = (uint8_t)l;
			float wl = w[i] * (float)l;
			float wll = wl * (float)l;
			float wlx = wl * x[i];
			sum_l += wl;
			sum_l2 += wll;
			sum_xl += wlx;
		}
		float a = sum_w * sum_l2, b = sum_l * sum_l;
		float D = a - b;
		if (!(D > 0))
			continue;
		float p1 = sum_w * sum_xl, p2 = sum_x * sum_l;
		float this_scale = (p1 - p2) / D;
		float p3 = sum_l2 * sum_x, p4 = sum_l * sum_xl;
		float this_min = (p3 - p4) / D;
		if (this_min > 0) {
			this_min = 0;
			this_scale = sum_xl / sum_l2;
		}
		float err = 0;
		for (int i = 0; i < n; i++) {
			float sl = this_scale * (float)Laux[i];
			float sm = sl + this_min;
			float diff = sm - x[i];
			diff = mad ? fabsf(diff) : diff * diff;
			float wd = w[i] * diff;
			err += wd;
		}
		if (err < best) {
			memcpy(L, Laux, (size_t)n);
			best = err;
			scale = this_scale;
			min = this_min;
		}
	}
	*neg_min = -min;
	return scale;
}

/* Sum over i of w_i x_i l_i and w_i l_i^2 with w = x^2 (ggml's rmse_type 1):
 * the weighted fit of levels l to x, with l = clamp(nearest(iscale x)). */
static void fit_sums(int n, int nmax, const float *x, float iscale, float *sumlx,
		     float *suml2, int8_t *L)
{
	*sumlx = *suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = clampi(nearest(iscale * x[i]), -nmax, nmax - 1);
		if (L)
			L[i] = (int8_t)(l + nmax);
		float w = x[i] * x[i];
		float wx = w * x[i];
		float wxl = wx * (float)l;
		float wl = w * (float)l;
		float wll = wl * (float)l;
		*sumlx += wxl;
		*suml2 += wll;
	}
}

/* ggml's make_qx_quants with rmse_type 1 (Q6_K): symmetric levels in
 * [-nmax, nmax - 1] (stored + nmax) for x ~ scale l, the best of 19 trial
 * scales -(nmax + is/10) / max by weighted least squares. */
static float fit_scale_sym(int n, int nmax, const float *x, int8_t *L)
{
	float amax, max = signed_absmax(x, n, &amax);
	if (amax < GROUP_EPS) {
		memset(L, 0, (size_t)n);
		return 0.f;
	}
	float iscale = (float)-nmax / max;
	float sumlx, suml2;
	fit_sums(n, nmax, x, iscale, &sumlx, &suml2, L);
	float scale = suml2 ? sumlx / suml2 : 0.0f;
	float best = scale * sumlx;
	for (int is = -9; is <= 9; is++) {
		if (is == 0)
			continue;
		float t = 0.1f * (float)is;
		float num = (float)nmax + t;
		iscale = -num / max;
		fit_sums(n, nmax, x, iscale, &sumlx, &suml2, NULL);
		float lhs = sumlx * sumlx, rhs = best * suml2;
		if (suml2 > 0 && lhs > rhs) {
			fit_sums(n, nmax, x, iscale, &sumlx, &suml2, L);
			scale = sumlx / suml2;
			best = scale * sumlx;
		}
	}
	return scale;
}

/* ggml's make_q3_quants with rmse (Q3_K): levels in [-nmax, nmax - 1]
 * (stored + nmax) from -nmax / max, then up to 5 passes moving single
 * levels while the weighted fit (w = x^2) improves. */
static float fit_scale_q3(int n, int nmax, const float *x, int8_t *L)
{
	float amax, max = signed_absmax(x, n, &amax);
	if (amax < GROUP_EPS) {
		memset(L, 0, (size_t)n);
		return 0.f;
	}
	float iscale = (float)-nmax / max;
	float sumlx = 0, suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = clampi(nearest(iscale * x[i]), -nmax, nmax - 1);
		L[i] = (int8_t)l;
		float w = x[i] * x[i];
		float wx = w * x[i];
		float wxl = wx * (float)l;
		float wl = w * (float)l;
		float wll = wl * (float)l;
		sumlx += wxl;
		suml2 += wll;
	}
	for (int pass = 0; pass < 5; pass++) {
		int changed = 0;
		for (int i = 0; i < n; i++) {
			float w = x[i] * x[i];
			float wx = w * x[i];
			float wxl = wx * (float)L[i];
			float slx = sumlx - wxl;
			if (!(slx > 0))
				continue;
			float wl = w * (float)L[i];
			float wll = wl * (float)L[i];
			float sl2 = suml2 - wll;
			float xs = x[i] * sl2;
			int nl = clampi(nearest(xs / slx), -nmax, nmax - 1);
			if (nl == L[i])
				continue;
			float wxn = wx * (float)nl;
			slx += wxn;
			float wn = w * (float)nl;
			float wnn = wn * (float)nl;
			sl2 += wnn;
			float a = slx * slx, a2 = a * suml2;
			float b = sumlx * sumlx, b2 = b * sl2;
			if (sl2 > 0 && a2 > b2) {
				L[i] = (int8_t)nl;
				sumlx = slx;
				suml2 = sl2;
				changed++;
			}
		}
		if (!changed)
			break;
	}
	for (int i = 0; i < n; i++)
		L[i] = (int8_t)(L[i] + nmax);
	return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* ---- K-quants ------------------------------------------------------------------ */

/* Q2_K: 16 sub-blocks of 16 fitted with mad weights |x|, their scales and
 * mins to 4 bits against the largest of each. */
static void quant_q2_k(const float *x, QFields *f)
{
	uint8_t L[256];
	float scales[16], mins[16], w[16];
	float max_scale = 0, max_min = 0;
	for (int j = 0; j < 16; j++) {
		for (int l = 0; l < 16; l++)
			w[l] = fabsf(x[16 * j + l]);
		scales[j] = fit_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.5f, 0.1f,
					  15, true);
		if (scales[j] > max_scale)
			max_scale = scales[j];
		if (mins[j] > max_min)
			max_min = mins[j];
	}
	uint8_t byte[16] = {0};
	if (max_scale > 0) {
		float iscale = 15.f / max_scale;
		for (int j = 0; j < 16; j++)
			byte[j] = (uint8_t)nearest(iscale * scales[j]);
		f->d = ggml_quant_f32_to_f16(max_scale / 15.f);
	} else {
		f->d = ggml_quant_f32_to_f16(0.f);
	}
	if (max_min > 0) {
		float iscale = 15.f / max_min;
		for (int j = 0; j < 16; j++)
			byte[j] = (uint8_t)(byte[j] | nearest(iscale * mins[j]) << 4);
		f->m = ggml_quant_f32_to_f16(max_min / 15.f);
	} else {
		f->m = ggml_quant_f32_to_f16(0.f);
	}
	float D = ggml_quant_f16_to_f32(f->d), M = ggml_quant_f16_to_f32(f->m);
	for (int j = 0; j < 16; j++) {
		f->sc[j] = byte[j] & 15;
		f->mn[j] = byte[j] >> 4;
		float d = D * (float)(byte[j] & 15);
		if (!d)
			continue;
		float dm = M * (float)(byte[j] >> 4);
		for (int i = 0; i < 16; i++) {
			float xm = x[16 * j + i] + dm;
			L[16 * j + i] = (uint8_t)clampi(nearest(xm / d), 0, 3);
		}
	}
	memcpy(f->q, L, 256);
}

/* Q3_K: 16 sub-blocks of 16, symmetric levels [-4, 3], scales to 6 bits
 * against the one of largest magnitude. */
static void quant_q3_k(const float *x, QFields *f)
{
	int8_t L[256];
	float scales[16];
	float max_scale = 0, amax = 0;
	for (int j = 0; j < 16; j++) {
		scales[j] = fit_scale_q3(16, 4, x + 16 * j, L + 16 * j);
		float a = fabsf(scales[j]);
		if (a > amax) {
			amax = a;
			max_scale = scales[j];
		}
	}
	if (max_scale) {
		float iscale = -32.f / max_scale;
		for (int j = 0; j < 16; j++) {
			int8_t l = (int8_t)nearest(iscale * scales[j]);
			f->sc[j] = (uint8_t)(clampi(l, -32, 31) + 32);
		}
		f->d = ggml_quant_f32_to_f16(1 / iscale);
	} else {
		memset(f->sc, 0, 16);
		f->d = ggml_quant_f32_to_f16(0.f);
	}
	float D = ggml_quant_f16_to_f32(f->d);
	for (int j = 0; j < 16; j++) {
		int8_t sc = (int8_t)(f->sc[j] - 32);
		float d = D * (float)sc;
		if (!d)
			continue;
		for (int i = 0; i < 16; i++) {
			int l = clampi(nearest(x[16 * j + i] / d), -4, 3);
			L[16 * j + i] = (int8_t)(l + 4);
		}
	}
	for (int e = 0; e < 256; e++)
		f->q[e] = (uint8_t)L[e];
}

/* Q4_K (nmax 15) and Q5_K (nmax 31): 8 sub-blocks of 32 fitted with
 * weights rms(x) + |x|, scales and mins to 6 bits against the largest. */
static void quant_q45_k(const float *x, int nmax, QFields *f)
{
	uint8_t L[256];
	float scales[8], mins[8], w[32];
	float max_scale = 0, max_min = 0;
	bool q4 = nmax == 15;
	for (int j = 0; j < 8; j++) {
		float sum_x2 = 0;
		for (int l = 0; l < 32; l++) {
			float sq = x[32 * j + l] * x[32 * j + l];
			sum_x2 += sq;
		}
		float av_x = sqrtf(sum_x2 / 32);
		for (int l = 0; l < 32; l++)
			w[l] = av_x + fabsf(x[32 * j + l]);
		scales[j] = fit_scale_min(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j],
					  q4 ? -1.f : -0.5f, 0.1f, q4 ? 20 : 15, false);
		if (scales[j] > max_scale)
			max_scale = scales[j];
		if (mins[j] > max_min)
			max_min = mins[j];
	}
	float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
	float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
	for (int j = 0; j < 8; j++) {
		uint8_t ls = (uint8_t)nearest(inv_scale * scales[j]);
		uint8_t lm = (uint8_t)nearest(inv_min * mins[j]);
		f->sc[j] = ls < 63 ? ls : 63;
		f->mn[j] = lm < 63 ? lm : 63;
	}
	f->d = ggml_quant_f32_to_f16(max_scale / 63.f);
	f->m = ggml_quant_f32_to_f16(max_min / 63.f);
	float D = ggml_quant_f16_to_f32(f->d), M = ggml_quant_f16_to_f32(f->m);
	for (int j = 0; j < 8; j++) {
		float d = D * (float)f->sc[j];
		if (!d)
			continue;
		float dm = M * (float)f->mn[j];
		for (int i = 0; i < 32; i++) {
			float xm = x[32 * j + i] + dm;
			L[32 * j + i] = (uint8_t)clampi(nearest(xm / d), 0, nmax);
		}
	}
	memcpy(f->q, L, 256);
}

/* Q6_K: 16 sub-blocks of 16, symmetric levels [-32, 31], int8 scales
 * against the one of largest magnitude (-128 there). */
static void quant_q6_k(const float *x, QFields *f)
{
	int8_t L[256];
	float scales[16];
	float max_scale = 0, max_abs = 0;
	for (int j = 0; j < 16; j++) {
		scales[j] = fit_scale_sym(16, 32, x + 16 * j, L + 16 * j);
		float a = fabsf(scales[j]);
		if (a > max_abs) {
			max_abs = a;
			max_scale = scales[j];
		}
	}
	if (max_abs < GROUP_EPS) {
		memset(f, 0, sizeof *f);   /* all bytes zero, d = +0 */
		return;
	}
	float iscale = -128.f / max_scale;
	f->d = ggml_quant_f32_to_f16(1 / iscale);
	for (int j = 0; j < 16; j++) {
		int s = nearest(iscale * scales[j]);
		f->sc[j] = (uint8_t)(int8_t)(s < 127 ? s : 127);
	}
	float D = ggml_quant_f16_to_f32(f->d);
	for (int j = 0; j < 16; j++) {
		float d = D * (float)(int8_t)f->sc[j];
		if (!d)
			continue;
		for (int i = 0; i < 16; i++) {
			int l = clampi(nearest(x[16 * j + i] / d), -32, 31);
			L[16 * j + i] = (int8_t)(l + 32);
		}
	}
	for (int e = 0; e < 256; e++)
		f->q[e] = (uint8_t)L[e];
}

/* Q8_K: one f32 scale max / -127, codes nearest(x * -127 / max) capped
 * at 127. */
static void quant_q8_k(const float *x, QFields *f)
{
	float amax, max = signed_absmax(x, 256, &amax);
	if (!amax) {
		f->d32 = 0;
		for (int j = 0; j < 256; j++)
			f->q[j] = 128;
		return;
	}
	float iscale = -127.f / max;
	for (int j = 0; j < 256; j++) {
		int v = nearest(iscale * x[j]);
		f->q[j] = (uint8_t)((v < 127 ? v : 127) + 128);
	}
	f->d32 = 1 / iscale;
}

/* ---- IQ4 ------------------------------------------------------------------------ */

static const int8_t kvalues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
				   1,    13,   25,  38,  53,  69,  89,  113};

/* ggml's best_index_int8: the table entry nearest x (the lower one of a
 * tie... as ggml breaks it: the upper unless the lower is strictly
 * nearer). */
static int nearest_level(float x)
{
	if (x <= (float)kvalues[0])
		return 0;
	if (x >= (float)kvalues[15])
		return 15;
	int lo = 0, hi = 15;
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (x < (float)kvalues[mid])
			hi = mid;
		else
			lo = mid;
	}
	float dl = x - (float)kvalues[hi - 1], dh = (float)kvalues[hi] - x;
	return dl < dh ? hi - 1 : hi;
}

/* The weighted fit sums for levels nearest id x (w = x^2). */
static void iq4_sums(const float *x, int n, float id, float *sumqx, float *sumq2, uint8_t *L)
{
	*sumqx = *sumq2 = 0;
	for (int j = 0; j < n; j++) {
		float al = id * x[j];
		int l = nearest_level(al);
		if (L)
			L[j] = (uint8_t)l;
		float q = (float)kvalues[l];
		float w = x[j] * x[j];
		float wq = w * q;
		float wqx = wq * x[j];
		float wqq = wq * q;
		*sumqx += wqx;
		*sumq2 += wqq;
	}
}

/* ggml's quantize_row_iq4_nl_impl without importance weights, ntry 7:
 * a scale per sub-block of 32 by a search over 15 trial scales; IQ4_XS
 * (nsub 8) then stores them as 6-bit levels of -max / 32 and requantizes. */
static void quant_iq4(const float *x, int nsub, QFields *f)
{
	enum { NTRY = 7 };
	float scales[8];
	uint8_t *L = f->q;
	float max_scale = 0, amax_scale = 0;
	memset(L, 0, (size_t)(32 * nsub));
	for (int ib = 0; ib < nsub; ib++) {
		const float *xb = x + 32 * ib;
		float amax, max = signed_absmax(xb, 32, &amax);
		if (amax < GROUP_EPS) {
			scales[ib] = 0;
			continue;
		}
		float d = -max / (float)kvalues[0];
		float id = 1 / d;
		float sumqx, sumq2;
		iq4_sums(xb, 32, id, &sumqx, &sumq2, L + 32 * ib);
		d = sumqx / sumq2;
		float best = d * sumqx;
		for (int itry = -NTRY; itry <= NTRY; itry++) {
			id = (float)(itry + kvalues[0]) / max;
			iq4_sums(xb, 32, id, &sumqx, &sumq2, NULL);
			float lhs = sumqx * sumqx, rhs = best * sumq2;
			if (sumq2 > 0 && lhs > rhs) {
				d = sumqx / sumq2;
				best = d * sumqx;
			}
		}
		scales[ib] = d;
		if (fabsf(d) > amax_scale) {
			amax_scale = fabsf(d);
			max_scale = d;
		}
	}
	if (nsub > 1) {
		float d = -max_scale / 32;
		f->d = ggml_quant_f32_to_f16(d);
		float id = d ? 1 / d : 0.f;
		for (int ib = 0; ib < nsub; ib++) {
			int l = clampi(nearest(id * scales[ib]), -32, 31);
			float dl = d * (float)l;
			float idl = dl ? 1 / dl : 0.f;
			for (int j = 0; j < 32; j++)
				L[32 * ib + j] = (uint8_t)nearest_level(idl * x[32 * ib + j]);
			f->sc[ib] = (uint8_t)(l + 32);
		}
	} else {
		f->d = ggml_quant_f32_to_f16(scales[0]);
		float id = scales[0] ? 1 / scales[0] : 0;
		for (int j = 0; j < 32; j++)
			L[j] = (uint8_t)nearest_level(id * x[j]);
	}
}

/* The largest magnitude type t stores: f16's largest d (65504) times the
 * largest sub-block scale level and the largest level, plus the largest
 * min. Inputs beyond it have no block (and their squares, which the fits
 * sum in float, could overflow). */
static float input_limit(StoreDtype t)
{
	const float h = 65504.f;
	switch (t) {
	case STORE_Q4_0: return h * 8;
	case STORE_Q5_0: return h * 16;
	case STORE_Q8_0: return h * 128;
	case STORE_Q4_1: return h * 16;
	case STORE_Q5_1: return h * 32;
	case STORE_Q2_K: return h * 15 * 4;
	case STORE_Q3_K: return h * 32 * 4;
	case STORE_Q4_K: return h * 63 * 16;
	case STORE_Q5_K: return h * 63 * 32;
	case STORE_Q6_K: return h * 128 * 32;
	case STORE_Q8_K: return 1e30f;
	case STORE_IQ4_NL: return h * 127;
	case STORE_IQ4_XS: return h * 32 * 127;
	default: break;
	}
	return 0;
}

int ggml_quant_quantize(StoreDtype t, const float *x, size_t nblocks, unsigned char *out)
{
	size_t B = dtype_block(t), bytes = dtype_block_bytes(t);
	float limit = input_limit(t);
	for (size_t i = 0; i < nblocks * B; i++)
		if (!(fabsf(x[i]) <= limit))
			return -1;
	for (size_t k = 0; k < nblocks; k++) {
		const float *xb = x + k * B;
		QFields f;
		memset(&f, 0, sizeof f);
		switch (t) {
		case STORE_Q4_0: quant_sym(xb, 8, &f); break;
		case STORE_Q5_0: quant_sym(xb, 16, &f); break;
		case STORE_Q4_1: quant_affine(xb, 15, &f); break;
		case STORE_Q5_1: quant_affine(xb, 31, &f); break;
		case STORE_Q8_0: quant_q8_0(xb, &f); break;
		case STORE_Q2_K: quant_q2_k(xb, &f); break;
		case STORE_Q3_K: quant_q3_k(xb, &f); break;
		case STORE_Q4_K: quant_q45_k(xb, 15, &f); break;
		case STORE_Q5_K: quant_q45_k(xb, 31, &f); break;
		case STORE_Q6_K: quant_q6_k(xb, &f); break;
		case STORE_Q8_K: quant_q8_k(xb, &f); break;
		case STORE_IQ4_NL: quant_iq4(xb, 1, &f); break;
		case STORE_IQ4_XS: quant_iq4(xb, 8, &f); break;
		default: return -1;
		}
		ggml_quant_pack(t, &f, out + k * bytes);
		if (ggml_quant_bad_scale(t, out + k * bytes))
			return -1;
	}
	return 0;
}
