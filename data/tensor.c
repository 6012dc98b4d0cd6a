#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Element j of a 32-element quantized block. */
static double block_elem(StoreDtype t, const unsigned char *blk, size_t j)
{
	double d = tensor_f16_to_double(ld16(blk));
	if (t == STORE_Q8_0)
		return d * (double)(int8_t)blk[2 + j];
	unsigned q = j < 16 ? (blk[2 + j] & 0x0f) : (blk[2 + j - 16] >> 4);
	return d * ((double)q - 8.0);
}

/* n stored elements at raw into out, front to back, each element loaded
 * before its double is stored: raw may lie inside out (see tensor_read). */
static void convert_elems(StoreDtype t, const unsigned char *raw, size_t n, double *out)
{
	switch (t) {
	case STORE_F64:
		for (size_t i = 0; i < n; i++) {
			uint64_t u = ld64(raw + 8 * i);
			memcpy(&out[i], &u, sizeof u);
		}
		break;
	case STORE_F32:
		for (size_t i = 0; i < n; i++) {
			uint32_t u = ld32(raw + 4 * i);
			float f;
			memcpy(&f, &u, sizeof f);
			out[i] = f;
		}
		break;
	case STORE_F16:
		for (size_t i = 0; i < n; i++)
			out[i] = tensor_f16_to_double(ld16(raw + 2 * i));
		break;
	case STORE_BF16:
		for (size_t i = 0; i < n; i++)
			out[i] = tensor_bf16_to_double(ld16(raw + 2 * i));
		break;
	default:
		break;
	}
}

/* Elements converted per read call: 1 MiB of doubles, so that a chunk's
 * stored bytes are still in cache when they are converted. */
#define READ_CHUNK ((size_t)1 << 17)

/* Q8_0 / Q4_0: blocks of 32 elements, bsz bytes each (an f16 scale and
 * the quants). Runs of whole blocks are read like elements (tensor_read):
 * into the end of their slot in out (a block of bsz <= 256 bytes becomes
 * 32 doubles, 256 bytes), each block decoded whole before its slot is
 * stored; a partial block at either end of the range is read on its own. */
static int read_blocks(const TensorRef *t, size_t first, size_t n, double *out, char *err,
		       size_t errlen)
{
	size_t bsz = dtype_block_bytes(t->dtype);
	size_t e = first, end = first + n;
	while (e < end) {
		size_t b = e / 32;
		if (e % 32 || end - e < 32) {
			unsigned char blk[34];
			if (infile_read(t->src, t->offset + b * bsz, blk, bsz, err, errlen))
				return -1;
			size_t stop = (b + 1) * 32 < end ? (b + 1) * 32 : end;
			for (; e < stop; e++)
				*out++ = block_elem(t->dtype, blk, e % 32);
			continue;
		}
		size_t nb = (end - e) / 32;
		if (nb > READ_CHUNK / 32)
			nb = READ_CHUNK / 32;
		unsigned char *raw = (unsigned char *)out + nb * (256 - bsz);
		if (infile_read(t->src, t->offset + b * bsz, raw, nb * bsz, err, errlen))
			return -1;
		/* Block k's slot ends where block k + 1's bytes begin at the
		 * earliest: 256 (k + 1) <= nb (256 - bsz) + (k + 1) bsz. */
		for (size_t k = 0; k < nb; k++) {
			double v[32];
			for (size_t i = 0; i < 32; i++)
				v[i] = block_elem(t->dtype, raw + k * bsz, i);
			memcpy(out + 32 * k, v, sizeof v);
		}
		out += 32 * nb;
		e += 32 * nb;
	}
	return 0;
}

int tensor_read(const TensorRef *t, size_t first, size_t n, double *out, char *err,
		size_t errlen)
{
	size_t end;
	if (!size_add(first, n, &end) || end > t->nelem || t->dtype == STORE_UNSUPPORTED) {
		snprintf(err, errlen, "%s: tensor %s: cannot convert elements %zu..%zu (%s)",
			 t->file, t->name, first, first + n, t->dtype_name);
		return -1;
	}
	if (!dtype_is_float(t->dtype))
		return read_blocks(t, first, n, out, err, errlen);
	size_t es = dtype_block_bytes(t->dtype);
	for (size_t done = 0; done < n;) {
		size_t m = n - done < READ_CHUNK ? n - done : READ_CHUNK;
		/* The m stored elements are read into the end of their m
		 * doubles' slot and converted front to back: element i is loaded
		 * before out[i] is stored, and out[i] ends where element i + 1
		 * begins at the earliest (es <= 8). */
		unsigned char *raw = (unsigned char *)(out + done) + m * (8 - es);
		if (infile_read(t->src, t->offset + (first + done) * es, raw, m * es, err, errlen))
			return -1;
		convert_elems(t->dtype, raw, m, out + done);
		done += m;
	}
	return 0;
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
