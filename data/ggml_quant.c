#include "config.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "data/ggml_quant_impl.h"

/* ggml's block layouts (ggml-common.h), byte offsets within one block:
 *
 *   Q4_0   18 B / 32:  d f16 @0, qs[16] @2: element j < 16 is qs[j] & 15,
 *                      j >= 16 is qs[j-16] >> 4; value d (q - 8)
 *   Q4_1   20 B / 32:  d @0, m @2, qs[16] @4 as Q4_0; value d q + m
 *   Q5_0   22 B / 32:  d @0, qh u32 @2 (bit j: the 5th bit of element j),
 *                      qs[16] @6 as Q4_0; value d (q - 16)
 *   Q5_1   24 B / 32:  d @0, m @2, qh @4, qs @8; value d q + m
 *   Q8_0   34 B / 32:  d @0, int8 qs[32] @2; value d q
 *   Q2_K   84 B / 256: scales[16] @0 (low nibble: scale, high: min of
 *                      sub-block j of 16), qs[64] @16, d @80, dmin @82;
 *                      value (d sc) q - (dmin mn)
 *   Q3_K  110 B / 256: hmask[32] @0, qs[64] @32, scales[12] @96 (16 6-bit
 *                      scales), d @108; value (d (sc - 32)) (q - 4)
 *   Q4_K  144 B / 256: d @0, dmin @2, scales[12] @4 (8 6-bit scales and 8
 *                      6-bit mins), qs[128] @16; value (d sc) q - (dmin mn)
 *   Q5_K  176 B / 256: d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128]
 *                      @48; value (d sc) q - (dmin mn)
 *   Q6_K  210 B / 256: ql[128] @0, qh[64] @128, int8 scales[16] @192,
 *                      d @208; value (d sc) (q - 32)
 *   Q8_K  292 B / 256: d f32 @0, int8 qs[256] @4, int16 bsums[16] @260
 *                      (sums of 16 quants, for dot products); value d q
 *   IQ4_NL 18 B / 32:  d @0, qs[16] @2 as Q4_0; value d kvalues[q]
 *   IQ4_XS 136 B / 256: d @0, scales_h u16 @2, scales_l[4] @4 (8 6-bit
 *                      scales), qs[128] @8 (16 bytes per sub-block of 32,
 *                      as Q4_0); value (d (sc - 32)) kvalues[q]
 *
 * The 2-bit (Q2_K, Q3_K) and 6-bit (Q6_K) codes of 128 elements share 32
 * bytes: element 128 h + 32 k + l takes bits 2k of byte l of its half
 * (Q6_K: the low nibble from ql, 4 bits at ql[64 h + l + 32 (k & 1)] >>
 * 4 (k >> 1), the top 2 from qh[32 h + l] >> 2k). The 4-bit K-quant codes
 * of 64 elements share 32 bytes: element 64 c + l, l < 32, is the low
 * nibble of byte 32 c + l, element 64 c + 32 + l its high nibble; Q3_K's
 * third bit and Q5_K's fifth bit of element e are bit e / 32 of byte
 * hmask/qh[e % 32]. Sub-block j covers elements [16 j, 16 j + 16) (Q2_K,
 * Q3_K, Q6_K) or [32 j, 32 j + 32) (Q4_K, Q5_K, IQ4_XS). */

/* Per type: the grid shape and what the cells need (names, block size
 * and bytes: core/dtype.c). */
typedef struct {
	unsigned nsub;       /* sub-blocks with a scale of their own (1: one per block) */
	unsigned bits;       /* bits per code */
	int bias;            /* level = code - bias (IQ4: kvalues[code]) */
	bool iq4;            /* levels from the non-linear table */
	char min;            /* second scale: 0 none, 'm' Q4_1/Q5_1's min, 'k' K-quant dmin */
	int nmax;            /* largest |level| the quantizer fits a sub-block with */
	bool f32_scale;      /* the quantizer rounds to the grid of its float scale,
			      * then stores that scale rounded to f16 */
	int d_at, m_at;      /* byte offsets of the f16 d and min (-1: none) */
} TypeDesc;

static const TypeDesc types[STORE_COUNT] = {
	[STORE_Q4_0] = {1, 4, 8, false, 0, 8, true, 0, -1},
	[STORE_Q4_1] = {1, 4, 0, false, 'm', 15, true, 0, 2},
	[STORE_Q5_0] = {1, 5, 16, false, 0, 16, true, 0, -1},
	[STORE_Q5_1] = {1, 5, 0, false, 'm', 31, true, 0, 2},
	[STORE_Q8_0] = {1, 8, 128, false, 0, 127, true, 0, -1},
	[STORE_Q2_K] = {16, 2, 0, false, 'k', 3, false, 80, 82},
	[STORE_Q3_K] = {16, 3, 4, false, 0, 4, false, 108, -1},
	[STORE_Q4_K] = {8, 4, 0, false, 'k', 15, false, 0, 2},
	[STORE_Q5_K] = {8, 5, 0, false, 'k', 31, false, 0, 2},
	[STORE_Q6_K] = {16, 6, 32, false, 0, 32, false, 208, -1},
	[STORE_Q8_K] = {1, 8, 128, false, 0, 127, false, -1, -1},
	[STORE_IQ4_NL] = {1, 4, 0, true, 0, 127, true, 0, -1},
	[STORE_IQ4_XS] = {8, 4, 0, true, 0, 127, true, 0, -1},
};

/* IQ4's non-linear levels (ggml's kvalues_iq4nl), ascending. */
static const int8_t iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
				      1,    13,   25,  38,  53,  69,  89,  113};
enum { IQ4_MAX_GAP = 24 };

/* ---- half precision --------------------------------------------------------- */

float ggml_quant_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 31, m = h & 0x3ff, u;
	if (e == 0) {
		float v = (float)m * 0x1p-24f;   /* zero or subnormal: m 2^-24, exact */
		return sign ? -v : v;
	}
	/* NaN comes out quiet (bit 22 set), as ggml's conversions give it. */
	u = sign | (e == 31 ? 0x7f800000u | (m ? 0x400000u : 0) : (e + 112) << 23) | m << 13;
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

uint16_t ggml_quant_f32_to_f16(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
	uint32_t a = u & 0x7fffffff;
	if (a > 0x7f800000)
		return sign | 0x7e00;                /* NaN: quiet */
	if (a >= 0x477ff000)
		return sign | 0x7c00;                /* 65520 and up round to infinity */
	if (a < 0x38800000) {                        /* below 2^-14: the quantum is 2^-24 */
		float v;
		memcpy(&v, &a, sizeof v);
		return sign | (uint16_t)rintf(v * 0x1p24f);  /* exact scaling, one rounding */
	}
	/* Normal: keep 10 of the 23 fraction bits, ties to even; a carry out
	 * of the fraction steps the exponent, as it should. */
	uint32_t h = ((a >> 23) - 112) << 10 | (a >> 13 & 0x3ff), rest = a & 0x1fff;
	if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
		h++;
	return sign | (uint16_t)h;
}

/* Half an ulp of the half nearest |v| (2^-25 at zero and in the
 * subnormal range): how far the f32 scale a quantizer computed can lie
 * from the f16 v it stored. */
static double f16_half_ulp(float v)
{
	double a = fabs((double)v);
	if (a < 0x1p-14)
		return 0x1p-25;
	return ldexp(1.0, ilogb(a) - 11);
}

/* ---- layouts ---------------------------------------------------------------- */

static uint16_t ld16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t ld32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void st16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void st32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> 8 * i);
}

/* 32 nibbles in 16 bytes: element j the low nibble of byte j, element
 * j + 16 its high nibble. */
static void nibbles_get(const unsigned char *qs, uint8_t *q)
{
	for (int j = 0; j < 16; j++) {
		q[j] = qs[j] & 15;
		q[j + 16] = qs[j] >> 4;
	}
}

static void nibbles_put(const uint8_t *q, unsigned char *qs)
{
	for (int j = 0; j < 16; j++)
		qs[j] = (unsigned char)((q[j] & 15) | (q[j + 16] & 15) << 4);
}

/* The fifth bits of 32 elements, bit j of a u32. */
static void fifth_get(uint32_t qh, uint8_t *q)
{
	for (int j = 0; j < 32; j++)
		q[j] |= (uint8_t)((qh >> j & 1) << 4);
}

static uint32_t fifth_put(const uint8_t *q)
{
	uint32_t qh = 0;
	for (int j = 0; j < 32; j++)
		qh |= (uint32_t)(q[j] >> 4 & 1) << j;
	return qh;
}

/* 2-bit fields of 256 elements in 64 bytes (Q2_K's codes, Q3_K's low
 * bits): element 128 h + 32 k + l at bits 2k of byte 32 h + l. */
static void crumbs_get(const unsigned char *qs, uint8_t *q)
{
	for (int h = 0; h < 2; h++)
		for (int k = 0; k < 4; k++)
			for (int l = 0; l < 32; l++)
				q[128 * h + 32 * k + l] = qs[32 * h + l] >> 2 * k & 3;
}

static void crumbs_put(const uint8_t *q, unsigned char *qs)
{
	memset(qs, 0, 64);
	for (int e = 0; e < 256; e++)
		qs[32 * (e / 128) + e % 32] |= (unsigned char)((q[e] & 3) << 2 * (e % 128 / 32));
}

/* 4-bit codes of 256 elements in 128 bytes (Q4_K, Q5_K's low bits):
 * element 64 c + l at the low nibble of byte 32 c + l, 64 c + 32 + l at
 * its high nibble. */
static void knibbles_get(const unsigned char *qs, uint8_t *q)
{
	for (int c = 0; c < 4; c++)
		for (int l = 0; l < 32; l++) {
			q[64 * c + l] = qs[32 * c + l] & 15;
			q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
		}
}

static void knibbles_put(const uint8_t *q, unsigned char *qs)
{
	for (int c = 0; c < 4; c++)
		for (int l = 0; l < 32; l++)
			qs[32 * c + l] = (unsigned char)((q[64 * c + l] & 15) |
							 (q[64 * c + 32 + l] & 15) << 4);
}

/* Bit e / 32 of byte e % 32 of 32 bytes: Q3_K's hmask, Q5_K's qh. */
static void highbit_get(const unsigned char *h, int shift, uint8_t *q)
{
	for (int i = 0; i < 8; i++)
		for (int l = 0; l < 32; l++)
			q[32 * i + l] |= (uint8_t)((h[l] >> i & 1) << shift);
}

static void highbit_put(const uint8_t *q, int shift, unsigned char *h)
{
	memset(h, 0, 32);
	for (int e = 0; e < 256; e++)
		h[e % 32] |= (unsigned char)((q[e] >> shift & 1) << (e / 32));
}

/* Q4_K/Q5_K's 8 6-bit scales and 8 6-bit mins in 12 bytes: bytes 0..3
 * hold scales 0..3 in their low 6 bits and the top 2 bits of scales
 * 4..7; bytes 4..7 the same for the mins; bytes 8..11 the low nibbles of
 * scale j + 4 (low) and min j + 4 (high). */
static void kscales_get(const unsigned char *s, uint8_t *sc, uint8_t *mn)
{
	for (int j = 0; j < 4; j++) {
		sc[j] = s[j] & 63;
		mn[j] = s[j + 4] & 63;
		sc[j + 4] = (uint8_t)((s[j + 8] & 15) | (s[j] >> 6) << 4);
		mn[j + 4] = (uint8_t)((s[j + 8] >> 4) | (s[j + 4] >> 6) << 4);
	}
}

static void kscales_put(const uint8_t *sc, const uint8_t *mn, unsigned char *s)
{
	for (int j = 0; j < 4; j++) {
		s[j] = (unsigned char)((sc[j] & 63) | (sc[j + 4] >> 4 & 3) << 6);
		s[j + 4] = (unsigned char)((mn[j] & 63) | (mn[j + 4] >> 4 & 3) << 6);
		s[j + 8] = (unsigned char)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
	}
}

/* Q3_K's 16 6-bit scales in 12 bytes: the low nibble of scale j is the
 * low (j < 8) or high (j >= 8) nibble of byte j % 8, its top 2 bits are
 * bits 2 (j / 4) of byte 8 + j % 4. */
static void q3scales_get(const unsigned char *s, uint8_t *sc)
{
	for (int j = 0; j < 16; j++) {
		int lo = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
		sc[j] = (uint8_t)(lo | (s[8 + j % 4] >> 2 * (j / 4) & 3) << 4);
	}
}

static void q3scales_put(const uint8_t *sc, unsigned char *s)
{
	memset(s, 0, 12);
	for (int j = 0; j < 16; j++) {
		s[j % 8] |= (unsigned char)((sc[j] & 15) << (j < 8 ? 0 : 4));
		s[8 + j % 4] |= (unsigned char)((sc[j] >> 4 & 3) << 2 * (j / 4));
	}
}

/* Q6_K's codes: the low nibble of element 128 h + 32 k + l at ql[64 h + l
 * + 32 (k & 1)] >> 4 (k >> 1), its top 2 bits at qh[32 h + l] >> 2 k. */
static void q6codes_get(const unsigned char *ql, const unsigned char *qh, uint8_t *q)
{
	for (int h = 0; h < 2; h++)
		for (int k = 0; k < 4; k++)
			for (int l = 0; l < 32; l++) {
				int lo = ql[64 * h + l + 32 * (k & 1)] >> 4 * (k >> 1) & 15;
				q[128 * h + 32 * k + l] =
					(uint8_t)(lo | (qh[32 * h + l] >> 2 * k & 3) << 4);
			}
}

static void q6codes_put(const uint8_t *q, unsigned char *ql, unsigned char *qh)
{
	memset(ql, 0, 128);
	memset(qh, 0, 64);
	for (int e = 0; e < 256; e++) {
		int h = e / 128, k = e % 128 / 32, l = e % 32;
		ql[64 * h + l + 32 * (k & 1)] |= (unsigned char)((q[e] & 15) << 4 * (k >> 1));
		qh[32 * h + l] |= (unsigned char)((q[e] >> 4 & 3) << 2 * k);
	}
}

void ggml_quant_unpack(StoreDtype t, const unsigned char *b, QFields *f)
{
	const TypeDesc *td = &types[t];
	/* Every case below sets all the block's codes before any |= into
	 * them; the rest starts at zero. */
	memset(f, 0, offsetof(QFields, q));
	if (td->d_at >= 0)
		f->d = ld16(b + td->d_at);
	if (td->m_at >= 0)
		f->m = ld16(b + td->m_at);
	switch (t) {
	case STORE_Q4_0:
	case STORE_IQ4_NL:
		nibbles_get(b + 2, f->q);
		break;
	case STORE_Q4_1:
		nibbles_get(b + 4, f->q);
		break;
	case STORE_Q5_0:
		nibbles_get(b + 6, f->q);
		fifth_get(ld32(b + 2), f->q);
		break;
	case STORE_Q5_1:
		nibbles_get(b + 8, f->q);
		fifth_get(ld32(b + 4), f->q);
		break;
	case STORE_Q8_0:
		for (int j = 0; j < 32; j++)
			f->q[j] = b[2 + j] ^ 0x80;
		break;
	case STORE_Q2_K:
		for (int j = 0; j < 16; j++) {
			f->sc[j] = b[j] & 15;
			f->mn[j] = b[j] >> 4;
		}
		crumbs_get(b + 16, f->q);
		break;
	case STORE_Q3_K:
		crumbs_get(b + 32, f->q);
		highbit_get(b, 2, f->q);
		q3scales_get(b + 96, f->sc);
		break;
	case STORE_Q4_K:
	case STORE_Q5_K:
		kscales_get(b + 4, f->sc, f->mn);
		if (t == STORE_Q4_K) {
			knibbles_get(b + 16, f->q);
		} else {
			knibbles_get(b + 48, f->q);
			highbit_get(b + 16, 4, f->q);
		}
		break;
	case STORE_Q6_K:
		q6codes_get(b, b + 128, f->q);
		memcpy(f->sc, b + 192, 16);
		break;
	case STORE_Q8_K: {
		uint32_t u = ld32(b);
		memcpy(&f->d32, &u, sizeof u);
		for (int j = 0; j < 256; j++)
			f->q[j] = b[4 + j] ^ 0x80;
		break;
	}
	case STORE_IQ4_XS: {
		uint16_t sh = ld16(b + 2);
		for (int j = 0; j < 8; j++)
			f->sc[j] = (uint8_t)((b[4 + j / 2] >> 4 * (j % 2) & 15) | (sh >> 2 * j & 3) << 4);
		for (int j = 0; j < 8; j++)
			nibbles_get(b + 8 + 16 * j, f->q + 32 * j);
		break;
	}
	default:
		break;
	}
}

void ggml_quant_pack(StoreDtype t, const QFields *f, unsigned char *b)
{
	const TypeDesc *td = &types[t];
	memset(b, 0, dtype_block_bytes(t));
	if (td->d_at >= 0)
		st16(b + td->d_at, f->d);
	if (td->m_at >= 0)
		st16(b + td->m_at, f->m);
	switch (t) {
	case STORE_Q4_0:
	case STORE_IQ4_NL:
		nibbles_put(f->q, b + 2);
		break;
	case STORE_Q4_1:
		nibbles_put(f->q, b + 4);
		break;
	case STORE_Q5_0:
		st32(b + 2, fifth_put(f->q));
		nibbles_put(f->q, b + 6);
		break;
	case STORE_Q5_1:
		st32(b + 4, fifth_put(f->q));
		nibbles_put(f->q, b + 8);
		break;
	case STORE_Q8_0:
		for (int j = 0; j < 32; j++)
			b[2 + j] = f->q[j] ^ 0x80;
		break;
	case STORE_Q2_K:
		for (int j = 0; j < 16; j++)
			b[j] = (unsigned char)((f->sc[j] & 15) | (f->mn[j] & 15) << 4);
		crumbs_put(f->q, b + 16);
		break;
	case STORE_Q3_K:
		highbit_put(f->q, 2, b);
		crumbs_put(f->q, b + 32);
		q3scales_put(f->sc, b + 96);
		break;
	case STORE_Q4_K:
	case STORE_Q5_K:
		kscales_put(f->sc, f->mn, b + 4);
		if (t == STORE_Q4_K) {
			knibbles_put(f->q, b + 16);
		} else {
			highbit_put(f->q, 4, b + 16);
			knibbles_put(f->q, b + 48);
		}
		break;
	case STORE_Q6_K:
		q6codes_put(f->q, b, b + 128);
		memcpy(b + 192, f->sc, 16);
		break;
	case STORE_Q8_K: {
		uint32_t u;
		memcpy(&u, &f->d32, sizeof u);
		st32(b, u);
		for (int j = 0; j < 256; j++)
			b[4 + j] = f->q[j] ^ 0x80;
		for (int j = 0; j < 16; j++) {
			int s = 0;
			for (int i = 0; i < 16; i++)
				s += (int)f->q[16 * j + i] - 128;
			st16(b + 260 + 2 * j, (uint16_t)(int16_t)s);
		}
		break;
	}
	case STORE_IQ4_XS: {
		uint16_t sh = 0;
		for (int j = 0; j < 8; j++) {
			b[4 + j / 2] |= (unsigned char)((f->sc[j] & 15) << 4 * (j % 2));
			sh |= (uint16_t)((f->sc[j] >> 4 & 3) << 2 * j);
		}
		st16(b + 2, sh);
		for (int j = 0; j < 8; j++)
			nibbles_put(f->q + 32 * j, b + 8 + 16 * j);
		break;
	}
	default:
		break;
	}
}

/* ---- values ------------------------------------------------------------------ */

/* Level of every code as a float (exact: small integers). */
static void level_table(const TypeDesc *td, float *lev)
{
	for (int c = 0; c < 1 << td->bits; c++)
		lev[c] = td->iq4 ? (float)iq4_levels[c] : (float)(c - td->bias);
}

/* The scale of each sub-block and, for types with a min, the offset added
 * to scale * level, in float as ggml forms them: d sc one product, the
 * min's product negated (ggml subtracts it; adding the negation is the
 * same IEEE operation). */
static void block_grid(StoreDtype t, const QFields *f, float *scale, float *offset)
{
	float d = ggml_quant_f16_to_f32(f->d), m = ggml_quant_f16_to_f32(f->m);
	const TypeDesc *td = &types[t];
	for (unsigned j = 0; j < td->nsub; j++) {
		offset[j] = 0;
		switch (t) {
		case STORE_Q2_K:
		case STORE_Q4_K:
		case STORE_Q5_K:
			scale[j] = d * (float)f->sc[j];
			offset[j] = -(m * (float)f->mn[j]);
			break;
		case STORE_Q3_K:
		case STORE_IQ4_XS:
			scale[j] = d * (float)((int)f->sc[j] - 32);
			break;
		case STORE_Q6_K:
			scale[j] = d * (float)(int8_t)f->sc[j];
			break;
		case STORE_Q8_K:
			scale[j] = f->d32;
			break;
		default:
			scale[j] = d;
			offset[j] = m;
			break;
		}
	}
}

/* Value of code c in a sub-block of scale s and offset o (o used when the
 * type has a min): ggml's product, then its sum. */
static float grid_value(const TypeDesc *td, const float *lev, float s, float o, int c)
{
	float p = s * lev[c];
	if (!td->min)
		return p;
	return p + o;
}

void ggml_quant_dequantize(StoreDtype t, const unsigned char *blocks, size_t nblocks,
			   float *out)
{
	const TypeDesc *td = &types[t];
	size_t B = dtype_block(t), per = B / td->nsub;
	float lev[256];
	if (td->iq4)
		level_table(td, lev);
	for (size_t k = 0; k < nblocks; k++) {
		QFields f;
		float scale[16], offset[16];
		ggml_quant_unpack(t, blocks + k * dtype_block_bytes(t), &f);
		block_grid(t, &f, scale, offset);
		float *y = out + k * B;
		const uint8_t *c = f.q;
		/* grid_value's operations, the branches taken out of the loops. */
		for (unsigned j = 0; j < td->nsub; j++, y += per, c += per) {
			float s = scale[j], o = offset[j];
			if (td->iq4) {
				for (size_t e = 0; e < per; e++)
					y[e] = s * lev[c[e]];
			} else if (td->min) {
				for (size_t e = 0; e < per; e++) {
					float p = s * (float)(c[e] - td->bias);
					y[e] = p + o;
				}
			} else {
				for (size_t e = 0; e < per; e++)
					y[e] = s * (float)(c[e] - td->bias);
			}
		}
	}
}

const char *ggml_quant_bad_scale(StoreDtype t, const unsigned char *block)
{
	const TypeDesc *td = &types[t];
	if (t == STORE_Q8_K) {
		uint32_t u = ld32(block);
		return (u & 0x7f800000) == 0x7f800000 ? "d" : NULL;
	}
	if ((ld16(block + td->d_at) & 0x7c00) == 0x7c00)
		return "d";
	if (td->m_at >= 0 && (ld16(block + td->m_at) & 0x7c00) == 0x7c00)
		return td->min == 'm' ? "m" : "dmin";
	return NULL;
}

/* ---- rounding cells ---------------------------------------------------------- */

/* |level| of sub-block j's stored scale in units of the block's scale d
 * (1 when the block has only d). */
static double sub_level(StoreDtype t, const QFields *f, unsigned j)
{
	switch (t) {
	case STORE_Q2_K:
	case STORE_Q4_K:
	case STORE_Q5_K:
		return f->sc[j];
	case STORE_Q3_K:
	case STORE_IQ4_XS:
		return fabs((double)f->sc[j] - 32);
	case STORE_Q6_K:
		return fabs((double)(int8_t)f->sc[j]);
	default:
		return 1;
	}
}

/* How the cells are derived, per type. A stored value v = s l + o (s the
 * sub-block's scale, l its level, o its offset) has neighbours on its
 * sub-block's grid at the levels next to l; an input rounds to v when it
 * lies within half the distance to each neighbour, and beyond the end of
 * the grid it is clipped to the end (llama.cpp's quantizers clamp: Q4_0's
 * top code takes inputs up to 8 d, one step past 7 d; the K-quants' fitted
 * scales may leave a sub-block's extremes outside its grid), so the
 * outward side of an end code is open. What each quantizer adds:
 *
 * - Q4_0, Q5_0, Q8_0 (d = max / -8, -16, amax / 127), Q4_1, Q5_1 (d =
 *   (max - min) / 15, 31) and IQ4_NL, IQ4_XS round to the grid of the f32
 *   scale d and store D = f16(d), which lies within h = half an f16 ulp of
 *   d: the value D l is off the input's nearest grid point d l by |l| h at
 *   most, and the cell's edges move by half a step's h; Q4_1/Q5_1 also
 *   store their min in f16 (within h(m)). IQ4_XS's sub-block scale is d
 *   times its level ls - 32, so there |l| is |ls - 32| |kvalue|.
 * - Q2_K, Q3_K, Q4_K, Q5_K, Q6_K requantize every element with the stored
 *   f16 super-block scales (nearest_int((x + dmin mn) / (d sc)), clamped),
 *   so their cells are exact up to the float arithmetic.
 * - A K-quant sub-block whose scale rounded to level 0 against the
 *   super-block's largest (or whose super-block scale d underflowed f16)
 *   has step 0: all its values are -dmin mn (0 for Q3_K, Q6_K, IQ4_XS).
 *   Its inputs were fitted with a scale below (|sc| + 1/2) U, U = |d| + h
 *   the unit of the stored scale, and lie within nmax such scales of the
 *   fitted min (nmax: the largest level, 3, 4, 15, 31, 32, 127 for Q2_K,
 *   Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS), which is off -dmin mn by
 *   (|mn| + 1) Umin. The fit's least-squares refinement and trial scales
 *   can take the extremes a few levels past nmax, so the cell is taken
 *   twice as wide as that suggests, (nmax + 1) (|sc| + 1) U + (|mn| + 1)
 *   Umin on each side (an estimate from how the fits behave, held to by
 *   the tests on random, heavy-tailed, sparse and tiny inputs).
 * - Float roundoff of the quantizer's and the dequantizer's few operations
 *   (relative 2^-24 each): 2^-22 (|v| + |o| + step) on either side. */
void ggml_quant_cells(StoreDtype t, const unsigned char *blocks, size_t nblocks, double *below,
		      double *above)
{
	const TypeDesc *td = &types[t];
	size_t B = dtype_block(t), per = B / td->nsub;
	int ncode = 1 << td->bits;
	double gap = td->iq4 ? IQ4_MAX_GAP : 1;
	float lev[256];
	level_table(td, lev);
	for (size_t k = 0; k < nblocks; k++) {
		QFields f;
		float scale[16], offset[16];
		ggml_quant_unpack(t, blocks + k * dtype_block_bytes(t), &f);
		block_grid(t, &f, scale, offset);
		float dsup = t == STORE_Q8_K ? f.d32 : ggml_quant_f16_to_f32(f.d);
		float dmin = ggml_quant_f16_to_f32(f.m);
		double hd = f16_half_ulp(dsup), hm = td->min ? f16_half_ulp(dmin) : 0;
		double unit = fabs((double)dsup) + hd, unit_min = fabs((double)dmin) + hm;
		for (size_t e = 0; e < B; e++) {
			size_t i = k * B + e, j = e / per;
			int c = f.q[e];
			float s = scale[j], o = offset[j];
			double v = grid_value(td, lev, s, o, c), lo = INFINITY, hi = INFINITY;
			double sub = sub_level(t, &f, j);
			if (s == 0) {
				if (td->nsub > 1)
					lo = hi = (td->nmax + 1) * (sub + 1) * unit +
						  (td->min == 'k' ? ((double)f.mn[j] + 1) * unit_min : 0);
				else
					lo = hi = 0;
			} else {
				for (int n = c - 1; n <= c + 1; n += 2) {
					if (n < 0 || n >= ncode)
						continue;
					double w = grid_value(td, lev, s, o, n), half = fabs(w - v) / 2;
					if (w < v)
						lo = fmin(lo, half);
					else
						hi = fmin(hi, half);
				}
			}
			double slack = 0x1p-22 * (fabs(v) + fabs((double)o) + fabs((double)s) * gap);
			if (td->f32_scale)
				slack += (fabs((double)lev[c]) + gap) * sub * hd + hm;
			below[i] = lo + slack;
			above[i] = hi + slack;
		}
	}
}

double ggml_quant_max_step(StoreDtype t, const unsigned char *blocks, size_t nblocks)
{
	const TypeDesc *td = &types[t];
	double step = 0, gap = td->iq4 ? IQ4_MAX_GAP : 1;
	for (size_t k = 0; k < nblocks; k++) {
		QFields f;
		float scale[16], offset[16];
		ggml_quant_unpack(t, blocks + k * dtype_block_bytes(t), &f);
		block_grid(t, &f, scale, offset);
		for (unsigned j = 0; j < td->nsub; j++)
			step = fmax(step, fabs((double)scale[j]) * gap);
	}
	return step;
}

/* ---- the quantization error bound --------------------------------------------- */

/* How far from its stored value v = s l + o each input may have been, by
 * the format alone (what verify tolerates, data/quant_bound.c):
 *
 * - half the sub-block's step |s| times the wider of the gaps from l to
 *   its neighbouring levels (1 on the linear grids; IQ4's non-linear
 *   levels have gaps from 11 to 24), for round-to-nearest on the grid;
 * - at an end of the grid (the lowest or highest code, or |l| >= nmax),
 *   where the quantizers clamp (Q4_0's code 7 d takes inputs up to 8 d, a
 *   fitted K-quant scale may leave a sub-block's extremes outside), the
 *   whole step to the inner neighbour;
 * - for the types that round on the grid of their f32 scale and then
 *   store it in f16 (Q4_0 .. Q8_0, IQ4_NL, IQ4_XS), (|l| + gap) u more,
 *   u = half an f16 ulp of d (2^-25 where d is subnormal or 0: a scale
 *   that underflowed), since the stored d is within u of the f32 one (and
 *   the input within half a step of the f32 grid), and half an ulp of
 *   the min for Q4_1, Q5_1;
 * - a K-quant sub-block whose scale rounded to level 0 (or whose d
 *   underflowed f16) has step 0: its bound is the width the cells above
 *   estimate, (nmax + 1) (|sc| + 1) U + (|mn| + 1) Umin, U = |d| and Umin
 *   = |dmin| each plus half its f16 ulp.
 * The sum of the squares and the largest go out (the caller adds blocks
 * up, tensor by tensor). */
static void value_bounds(StoreDtype t, const unsigned char *blocks, size_t nblocks,
			 double *hv, double *sum_sq, double *max);

void ggml_quant_bound(StoreDtype t, const unsigned char *blocks, size_t nblocks,
		      double *sum_sq, double *max)
{
	value_bounds(t, blocks, nblocks, NULL, sum_sq, max);
}

void ggml_quant_value_bounds(StoreDtype t, const unsigned char *blocks, size_t nblocks,
			     double *h)
{
	double ss = 0, mx = 0;
	value_bounds(t, blocks, nblocks, h, &ss, &mx);
}

/* ggml_quant_bound's loop, each value's bound also into hv (nblocks x B)
 * when it is not NULL. */
static void value_bounds(StoreDtype t, const unsigned char *blocks, size_t nblocks,
			 double *hv, double *sum_sq, double *max)
{
	const TypeDesc *td = &types[t];
	size_t B = dtype_block(t), per = B / td->nsub;
	int ncode = 1 << td->bits;
	double gap = td->iq4 ? IQ4_MAX_GAP : 1;
	float lev[256];
	level_table(td, lev);
	double ss = 0, mx = 0;
	for (size_t k = 0; k < nblocks; k++) {
		QFields f;
		float scale[16], offset[16];
		ggml_quant_unpack(t, blocks + k * dtype_block_bytes(t), &f);
		block_grid(t, &f, scale, offset);
		double d = t == STORE_Q8_K ? fabs((double)f.d32)
					   : fabs((double)ggml_quant_f16_to_f32(f.d));
		double m = td->min ? fabs((double)ggml_quant_f16_to_f32(f.m)) : 0;
		for (size_t e = 0; e < B; e++) {
			size_t j = e / per;
			int c = f.q[e];
			double as = fabs((double)scale[j]), l = fabs((double)lev[c]), h;
			double glo = c > 0 ? (double)lev[c] - lev[c - 1] : 0;
			double ghi = c < ncode - 1 ? (double)lev[c + 1] - lev[c] : 0;
			bool low = c == 0 || (lev[c] < 0 && l >= td->nmax);
			if (scale[j] == 0 && td->nsub > 1)
				h = (td->nmax + 1) * (sub_level(t, &f, j) + 1) *
					    (d + f16_half_ulp((float)d)) +
				    (td->min == 'k' ? ((double)f.mn[j] + 1) *
							      (m + f16_half_ulp((float)m))
						    : 0);
			else if (c == 0 || c == ncode - 1 || l >= td->nmax)
				h = as * (low ? ghi : glo);
			else
				h = as * fmax(glo, ghi) / 2;
			if (td->f32_scale)
				h += (l + gap) * sub_level(t, &f, j) * f16_half_ulp((float)d) +
				     (td->min ? f16_half_ulp((float)m) : 0);
			ss += h * h;
			if (h > mx)
				mx = h;
			if (hv)
				hv[k * B + e] = h;
		}
	}
	*sum_sq += ss;
	if (mx > *max)
		*max = mx;
}
