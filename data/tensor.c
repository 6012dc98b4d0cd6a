#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stream_store.h"
#include "data/ggml_quant.h"
#include "data/tensor.h"

/* FNV-1a over the name. */
static size_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

/* Put entry i into the index (which has a free slot). */
static void index_put(TensorTable *tt, size_t i)
{
	size_t mask = tt->nslot - 1, k = name_hash(tt->v[i].name) & mask;
	while (tt->slot[k])
		k = (k + 1) & mask;
	tt->slot[k] = i + 1;
}

/* Keep the index at most half full: false when out of memory. */
static bool index_grow(TensorTable *tt, size_t n)
{
	if (n * 2 <= tt->nslot)
		return true;
	size_t ns = tt->nslot ? tt->nslot : 128;
	while (n * 2 > ns)
		ns *= 2;
	size_t *slot = calloc(ns, sizeof *slot);
	if (!slot)
		return false;
	free(tt->slot);
	tt->slot = slot;
	tt->nslot = ns;
	for (size_t i = 0; i < tt->n; i++)
		index_put(tt, i);
	return true;
}

TensorRef *tensor_table_add(TensorTable *tt, const char *name, size_t namelen)
{
	if (tt->n == tt->cap) {
		size_t cap = tt->cap ? 2 * tt->cap : 64;
		TensorRef *v = realloc(tt->v, cap * sizeof *v);
		if (!v)
			return NULL;
		tt->v = v;
		tt->cap = cap;
	}
	if (!index_grow(tt, tt->n + 1))
		return NULL;
	char *nm = malloc(namelen + 1);
	if (!nm)
		return NULL;
	memcpy(nm, name, namelen);
	nm[namelen] = '\0';
	TensorRef *t = &tt->v[tt->n];
	memset(t, 0, sizeof *t);
	t->name = nm;
	index_put(tt, tt->n++);
	return t;
}

const TensorRef *tensor_table_find(const TensorTable *tt, const char *name)
{
	if (!tt->nslot)
		return NULL;
	size_t mask = tt->nslot - 1;
	for (size_t k = name_hash(name) & mask; tt->slot[k]; k = (k + 1) & mask)
		if (!strcmp(tt->v[tt->slot[k] - 1].name, name))
			return &tt->v[tt->slot[k] - 1];
	return NULL;
}

void tensor_table_free(TensorTable *tt)
{
	for (size_t i = 0; i < tt->n; i++)
		free(tt->v[i].name);
	free(tt->v);
	free(tt->slot);
	memset(tt, 0, sizeof *tt);
}

double tensor_f16_to_double(uint16_t h)
{
	int sign = (h >> 15) & 1;
	int e = (h >> 10) & 0x1f;
	int m = h & 0x3ff;
	double v;
	if (e == 0)
		v = ldexp((double)m, -24);                 /* zero or subnormal */
	else if (e == 31)
		v = m ? NAN : INFINITY;
	else
		v = ldexp((double)(m | 0x400), e - 25);
	return sign ? -v : v;
}

double tensor_bf16_to_double(uint16_t b)
{
	uint32_t u = (uint32_t)b << 16;
	float f;
	memcpy(&f, &u, sizeof f);
	return (double)f;
}

/* Little-endian loads that do not care about alignment. */
static uint16_t ld16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t ld32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t ld64(const unsigned char *p)
{
	return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}


/* k (<= 64) 16-bit values at p, from the file's little-endian order. */
static void ld16_block(const unsigned char *p, size_t k, uint16_t *h)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(h, p, 2 * k);
#else
	for (size_t i = 0; i < k; i++)
		h[i] = ld16(p + 2 * i);
#endif
}

/* n BF16 values at raw into out as doubles, raw inside out as
 * convert_elems allows: 64 at a time through a local copy (a block's
 * doubles end before the stored bytes still to read), so that the loop
 * over a block, of a constant count and free of aliasing, vectorizes.
 * Returns nonzero when one is NaN or Inf. */
static unsigned bf16_to_doubles(const unsigned char *raw, size_t n, double *out)
{
	enum { B = 64 };
	uint32_t any = 0;
	size_t b = 0;
	for (; b + B <= n; b += B) {
		uint16_t h[B];
		ld16_block(raw + 2 * b, B, h);
		double o[B];
		for (size_t i = 0; i < B; i++) {
			uint32_t u = (uint32_t)h[i] << 16;
			float f;
			any |= ((u >> 23) & 0xff) + 1;
			memcpy(&f, &u, sizeof f);
			o[i] = f;
		}
		stream_doubles(out + b, o, B);
	}
	stream_fence();
	for (; b < n; b++) {
		uint16_t h = ld16(raw + 2 * b);
		any |= ((uint32_t)(h >> 7) & 0xff) + 1;
		out[b] = tensor_bf16_to_double(h);
	}
	return any >> 8 & 1;
}

/* n stored elements at raw into out, front to back, each element loaded
 * before its double is stored: raw may lie inside out (see tensor_read).
 * Returns nonzero when one is NaN or Inf, told by its stored exponent
 * bits in the same pass: all ones exactly then, so exponent + 1 reaches
 * the bit above it (branch-free, which the vectorizer takes; the separate
 * scan of the doubles this replaces was 6% of a whole-model verify). */
static unsigned convert_elems(StoreDtype t, const unsigned char *raw, size_t n, double *out)
{
	uint32_t any = 0;
	switch (t) {
	case STORE_F64: {
		uint64_t a = 0;
		for (size_t i = 0; i < n; i++) {
			uint64_t u = ld64(raw + 8 * i);
			a |= ((u >> 52) & 0x7ff) + 1;
			memcpy(&out[i], &u, sizeof u);
		}
		return (unsigned)(a >> 11 & 1);
	}
	case STORE_F32:
		for (size_t i = 0; i < n; i++) {
			uint32_t u = ld32(raw + 4 * i);
			float f;
			any |= ((u >> 23) & 0xff) + 1;
			memcpy(&f, &u, sizeof f);
			out[i] = f;
		}
		return any >> 8 & 1;
	case STORE_F16:
		for (size_t i = 0; i < n; i++) {
			uint16_t h = ld16(raw + 2 * i);
			any |= ((uint32_t)(h >> 10) & 0x1f) + 1;
			out[i] = tensor_f16_to_double(h);
		}
		return any >> 5 & 1;
	case STORE_BF16:
		return bf16_to_doubles(raw, n, out);
	default:
		return 0;
	}
}

/* Elements converted per read call: 1 MiB of doubles, so that a chunk's
 * stored bytes are still in cache when they are converted. */
#define READ_CHUNK ((size_t)1 << 17)

/* n floats into dst as doubles (dbl) or floats. */
static void put_values(const float *v, size_t n, unsigned char *dst, bool dbl)
{
	if (!dbl) {
		memcpy(dst, v, n * sizeof *v);
		return;
	}
	double *d = (double *)(void *)dst;
	for (size_t i = 0; i < n; i++)
		d[i] = v[i];
}

/* Block k of t (at raw) decoded into v, refused when a scale is NaN or
 * infinite (every weight of the block would be). */
static int decode_block(const TensorRef *t, size_t k, const unsigned char *raw, float *v,
			char *err, size_t errlen)
{
	const char *bad = ggml_quant_bad_scale(t->dtype, raw);
	if (bad) {
		snprintf(err, errlen, "%s: tensor %s: %s block %zu (offset %zu) has a NaN or "
			 "infinite scale %s: its weights are not numbers", t->file, t->name,
			 t->dtype_name, k, t->offset + k * dtype_block_bytes(t->dtype), bad);
		return -1;
	}
	ggml_quant_dequantize(t->dtype, raw, 1, v);
	return 0;
}

/* ggml's block quantizations: blocks of B = 32 or 256 elements, bsz bytes
 * each. Runs of whole blocks are read like elements (tensor_read): into
 * the end of their slot in out (osz = 8 or 4 bytes per element: a block's
 * slot of B osz bytes is larger than its bsz), each block decoded whole
 * before its slot is stored; a partial block at either end of the range
 * is read on its own. */
static int read_blocks(const TensorRef *t, size_t first, size_t n, void *out, bool dbl,
		       char *err, size_t errlen)
{
	size_t B = dtype_block(t->dtype), bsz = dtype_block_bytes(t->dtype);
	size_t osz = dbl ? sizeof(double) : sizeof(float);
	unsigned char *o = out;
	size_t e = first, end = first + n;
	float v[GQ_MAX_BLOCK];
	while (e < end) {
		size_t b = e / B;
		if (e % B || end - e < B) {
			unsigned char blk[GQ_MAX_BYTES];
			if (infile_read(t->src, t->offset + b * bsz, blk, bsz, err, errlen) ||
			    decode_block(t, b, blk, v, err, errlen))
				return -1;
			size_t stop = (b + 1) * B < end ? (b + 1) * B : end;
			put_values(v + e % B, stop - e, o, dbl);
			o += (stop - e) * osz;
			e = stop;
			continue;
		}
		size_t nb = (end - e) / B;
		if (nb > READ_CHUNK / B)
			nb = READ_CHUNK / B;
		unsigned char *raw = o + nb * (B * osz - bsz);
		if (infile_read(t->src, t->offset + b * bsz, raw, nb * bsz, err, errlen))
			return -1;
		/* Block k's slot ends where block k + 1's bytes begin at the
		 * earliest: B osz (k + 1) <= nb (B osz - bsz) + (k + 1) bsz. */
		for (size_t k = 0; k < nb; k++) {
			if (decode_block(t, b + k, raw + k * bsz, v, err, errlen))
				return -1;
			put_values(v, B, o + k * B * osz, dbl);
		}
		o += nb * B * osz;
		e += nb * B;
	}
	return 0;
}

/* The range [first, first + n) is inside t and t converts. */
static int check_range(const TensorRef *t, size_t first, size_t n, char *err, size_t errlen)
{
	size_t end;
	if (!size_add(first, n, &end) || end > t->nelem || t->dtype == STORE_UNSUPPORTED) {
		snprintf(err, errlen, "%s: tensor %s: cannot convert elements %zu..%zu (%s)",
			 t->file, t->name, first, first + n, t->dtype_name);
		return -1;
	}
	return 0;
}

int tensor_read_scan(const TensorRef *t, size_t first, size_t n, double *out, bool *finite,
		     char *err, size_t errlen)
{
	if (check_range(t, first, n, err, errlen))
		return -1;
	if (!dtype_is_float(t->dtype)) {
		if (read_blocks(t, first, n, out, true, err, errlen))
			return -1;
		/* finite scales make finite weights, but say so by looking */
		for (size_t i = 0; i < n && *finite; i++)
			*finite = isfinite(out[i]);
		return 0;
	}
	size_t es = dtype_block_bytes(t->dtype);
	unsigned bad = 0;
	for (size_t done = 0; done < n;) {
		size_t m = n - done < READ_CHUNK ? n - done : READ_CHUNK;
		/* The m stored elements are read into the end of their m
		 * doubles' slot and converted front to back: element i is loaded
		 * before out[i] is stored, and out[i] ends where element i + 1
		 * begins at the earliest (es <= 8). */
		unsigned char *raw = (unsigned char *)(out + done) + m * (8 - es);
		if (infile_read(t->src, t->offset + (first + done) * es, raw, m * es, err, errlen))
			return -1;
		bad |= convert_elems(t->dtype, raw, m, out + done);
		done += m;
	}
	if (bad)
		*finite = false;
	return 0;
}

int tensor_read(const TensorRef *t, size_t first, size_t n, double *out, char *err,
		size_t errlen)
{
	bool finite = true;
	return tensor_read_scan(t, first, n, out, &finite, err, errlen);
}

/* Whether float bits u are NaN or Inf: the exponent all ones. */
static unsigned float_bits_bad(uint32_t u)
{
	return (u & 0x7f800000u) == 0x7f800000u;
}

/* 64 BF16 values as floats: a BF16 is a float's top 16 bits, so this is
 * exact, NaN and Inf included. The constant count lets -O2 vectorise it.
 * Returns nonzero when one of them is NaN or Inf. */
static unsigned bf16_block_to_float(const uint16_t *h, float *o)
{
	unsigned bad = 0;
	for (size_t i = 0; i < 64; i++) {
		uint32_t u = (uint32_t)h[i] << 16;
		bad |= float_bits_bad(u);
		memcpy(o + i, &u, sizeof u);
	}
	return bad;
}

/* Nonzero when one of the n floats is NaN or Inf. */
static unsigned floats_bad(const float *f, size_t n)
{
	unsigned bad = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, f + i, sizeof u);
		bad |= float_bits_bad(u);
	}
	return bad;
}

/* m stored values at raw (es bytes each: F32, F16 or BF16) as floats into
 * out, where raw sits in the last m * es bytes of out's m floats. A block
 * of 64 is copied out of raw before its floats are written: a block's
 * floats end before the bytes of the next block still to read, and the
 * loop over the local copy has no alias to fear. Returns nonzero when a
 * value is NaN or Inf, told while the block is in L1. */
static unsigned float_from_raw(StoreDtype dt, size_t es, const unsigned char *raw, size_t m,
			       float *out)
{
	enum { B = 64 };
	unsigned bad = 0;
	for (size_t b = 0; b < m; b += B) {
		size_t k = m - b < B ? m - b : B;
		float *o = out + b;
		if (es == 4) {
			unsigned char tmp[B * 4];
			memcpy(tmp, raw + b * 4, k * 4);
			for (size_t i = 0; i < k; i++) {
				uint32_t u = ld32(tmp + 4 * i);
				memcpy(o + i, &u, sizeof u);
			}
			bad |= floats_bad(o, k);
			continue;
		}
		uint16_t h[B];
		ld16_block(raw + b * 2, k, h);
		if (dt == STORE_F16) {
			for (size_t i = 0; i < k; i++)
				o[i] = ggml_quant_f16_to_f32(h[i]);
			bad |= floats_bad(o, k);
		} else if (k == B) {
			bad |= bf16_block_to_float(h, o);
		} else {
			for (size_t i = 0; i < k; i++) {
				uint32_t u = (uint32_t)h[i] << 16;
				memcpy(o + i, &u, sizeof u);
			}
			bad |= floats_bad(o, k);
		}
	}
	return bad;
}

int tensor_read_float_scan(const TensorRef *t, size_t first, size_t n, float *out,
			   bool *finite, char *err, size_t errlen)
{
	if (check_range(t, first, n, err, errlen))
		return -1;
	unsigned bad = 0;
	size_t es = dtype_block_bytes(t->dtype);
	if (!dtype_is_float(t->dtype)) {
		if (read_blocks(t, first, n, out, false, err, errlen))
			return -1;
		bad = floats_bad(out, n);
	} else if (es > sizeof(float)) {
		/* F64: through a small buffer, rounded once (a finite double
		 * past float's range becomes Inf, and is told as one) */
		double buf[512];
		for (size_t done = 0; done < n;) {
			size_t m = n - done < 512 ? n - done : 512;
			if (tensor_read(t, first + done, m, buf, err, errlen))
				return -1;
			for (size_t i = 0; i < m; i++)
				out[done + i] = (float)buf[i];
			bad |= floats_bad(out + done, m);
			done += m;
		}
	} else {
		for (size_t done = 0; done < n;) {
			size_t m = n - done < READ_CHUNK ? n - done : READ_CHUNK;
			/* As in tensor_read, into the end of the m floats' slot
			 * (es <= 4). */
			unsigned char *raw = (unsigned char *)(out + done) + m * (4 - es);
			if (infile_read(t->src, t->offset + (first + done) * es, raw, m * es, err,
					errlen))
				return -1;
			bad |= float_from_raw(t->dtype, es, raw, m, out + done);
			done += m;
		}
	}
	if (bad)
		*finite = false;
	return 0;
}

int tensor_read_float(const TensorRef *t, size_t first, size_t n, float *out, char *err,
		      size_t errlen)
{
	bool finite = true;
	return tensor_read_float_scan(t, first, n, out, &finite, err, errlen);
}

int tensor_read_bytes(const TensorRef *t, void *buf, char *err, size_t errlen)
{
	return infile_read(t->src, t->offset, buf, t->nbytes, err, errlen);
}

void tensor_shape_str(const TensorRef *t, char *buf, size_t len)
{
	size_t k = 0;
	if (len == 0)
		return;
	buf[0] = '\0';
	k += (size_t)snprintf(buf + k, len - k, "[");
	for (size_t i = 0; i < t->ndim && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "%s%zu", i ? ", " : "", t->shape[i]);
	if (k < len)
		snprintf(buf + k, len - k, "]");
}
