#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/reader.h"

/* safetensors: an 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 * "__metadata__": {...}}, then the byte buffer the offsets point into. */

/* Headers beyond this are refused as absurd (real ones are a few MB). */
#define ST_MAX_HEADER ((size_t)100 << 20)

/* JSON whitespace. */
static bool st_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The 8-byte little-endian header length. */
static uint64_t st_header_len(const unsigned char *p)
{
	uint64_t len = 0;
	for (int i = 7; i >= 0; i--)
		len = len << 8 | p[i];
	return len;
}

/* A header length that fits the file, and header bytes that open a JSON
 * object after optional whitespace (which JSON allows; whitespace that
 * runs past the sniffed bytes is left to the parser). A llama2.c file
 * cannot pass: its first 8 bytes are dim and hidden_dim, so the "length"
 * is at least 2^32 times hidden_dim, far beyond its size. Files named
 * *.safetensors and the files of an HF folder are read as safetensors
 * whatever this says (model.c), so that a broken one gets a safetensors
 * message. */
static bool st_sniff(const unsigned char *p, size_t n, size_t size)
{
	if (n < 10)
		return false;
	uint64_t len = st_header_len(p);
	if (len < 2 || len > size - 8)
		return false;
	size_t i = 8, hend = 8 + (size_t)len, end = hend < n ? hend : n;
	while (i < end && st_space(p[i]))
		i++;
	if (i < end)
		return p[i] == '{';
	return hend > n;  /* whitespace up to the sniffed bytes: parse decides */
}

/* safetensors' dtype names: those ropefold converts are spelled as
 * core/dtype.c spells them; the others carry their element size. */
static const struct {
	const char *name;
	size_t size;    /* bytes per element */
} st_unsupported[] = {
	{"I64", 8}, {"U64", 8}, {"I32", 4}, {"U32", 4}, {"I16", 2}, {"U16", 2},
	{"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

/* The storage type and element size of a dtype name; false when unknown. */
static bool st_dtype(const char *name, StoreDtype *dt, size_t *size)
{
	static const StoreDtype floats[] = {STORE_F64, STORE_F32, STORE_F16, STORE_BF16};
	for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
		if (!strcmp(name, dtype_name(floats[i]))) {
			*dt = floats[i];
			*size = dtype_block_bytes(floats[i]);
			return true;
		}
	}
	for (size_t i = 0; i < sizeof st_unsupported / sizeof st_unsupported[0]; i++) {
		if (!strcmp(name, st_unsupported[i].name)) {
			*dt = STORE_UNSUPPORTED;
			*size = st_unsupported[i].size;
			return true;
		}
	}
	return false;
}

/* A non-negative JSON integer as size_t. */
static bool json_size(const json_t *j, size_t *out)
{
	if (!json_is_integer(j))
		return false;
	json_int_t v = json_integer_value(j);
	if (v < 0 || (unsigned long long)v > (unsigned long long)SIZE_MAX)
		return false;
	*out = (size_t)v;
	return true;
}

#define FAIL(...)                                          \
	do {                                               \
		snprintf(err, errlen, __VA_ARGS__);        \
		goto fail;                                 \
	} while (0)

/* Parse one tensor entry of the header. */
static int st_entry(const InFile *f, TensorTable *tt, const char *key,
		    json_t *val, size_t base, size_t buflen, char *err, size_t errlen)
{
	json_t *dt = json_object_get(val, "dtype");
	json_t *shape = json_object_get(val, "shape");
	json_t *offs = json_object_get(val, "data_offsets");
	if (!json_is_object(val) || !json_is_string(dt) || !json_is_array(shape) ||
	    !json_is_array(offs) || json_array_size(offs) != 2) {
		snprintf(err, errlen, "%s: tensor %s: header entry needs dtype, shape "
			 "and data_offsets [begin, end]", f->path, key);
		return -1;
	}
	const char *dts = json_string_value(dt);
	StoreDtype sdt;
	size_t esize;
	if (!st_dtype(dts, &sdt, &esize)) {
		snprintf(err, errlen, "%s: tensor %s: unknown dtype '%.20s'", f->path, key, dts);
		return -1;
	}
	size_t nd = json_array_size(shape);
	if (nd > TENSOR_MAX_DIMS) {
		snprintf(err, errlen, "%s: tensor %s: %zu dimensions (at most %d supported)",
			 f->path, key, nd, TENSOR_MAX_DIMS);
		return -1;
	}
	size_t dims[TENSOR_MAX_DIMS], nelem = 1;
	for (size_t i = 0; i < nd; i++) {
		if (!json_size(json_array_get(shape, i), &dims[i]) ||
		    !size_mul(nelem, dims[i], &nelem)) {
			snprintf(err, errlen, "%s: tensor %s: bad shape", f->path, key);
			return -1;
		}
	}
	size_t b, e, need;
	if (!json_size(json_array_get(offs, 0), &b) || !json_size(json_array_get(offs, 1), &e) ||
	    b > e) {
		snprintf(err, errlen, "%s: tensor %s: bad data_offsets", f->path, key);
		return -1;
	}
	if (e > buflen) {
		snprintf(err, errlen, "%s: tensor %s: data_offsets end %zu past the end of the "
			 "data (%zu bytes at offset %zu)", f->path, key, e, buflen, base);
		return -1;
	}
	if (!size_mul(nelem, esize, &need) || need != e - b) {
		snprintf(err, errlen, "%s: tensor %s: shape and dtype %s need %zu bytes, "
			 "data_offsets give %zu", f->path, key, dts,
			 size_mul(nelem, esize, &need) ? need : SIZE_MAX, e - b);
		return -1;
	}
	const TensorRef *dup = tensor_table_find(tt, key);
	if (dup) {
		/* One header cannot repeat a name (the JSON parser refuses
		 * duplicate keys), so this is a second shard. */
		snprintf(err, errlen, "%s: duplicate tensor %s (also in %s)", f->path, key,
			 dup->file);
		return -1;
	}
	TensorRef *t = tensor_table_add(tt, key, strlen(key));
	if (!t) {
		snprintf(err, errlen, "%s: out of memory", f->path);
		return -1;
	}
	t->dtype = sdt;
	snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dts);
	t->ndim = nd;
	memcpy(t->shape, dims, nd * sizeof dims[0]);
	t->nelem = nelem;
	t->offset = base + b;
	t->src = f;
	t->nbytes = e - b;
	t->file = f->path;
	return 0;
}

/* One tensor's data range, relative to the data buffer. */
typedef struct {
	size_t b, e;
	const TensorRef *t;
} StRange;

static int st_range_cmp(const void *pa, const void *pb)
{
	const StRange *a = pa, *b = pb;
	if (a->b != b->b)
		return a->b < b->b ? -1 : 1;
	return a->e < b->e ? -1 : a->e > b->e;
}

/* The tensors of f (parsed, so its header length is sound) must tile its
 * data buffer exactly, as the reference safetensors library requires: no
 * two share a byte, no byte is left over (a hole or trailing bytes mean a
 * wrong header length or a corrupt header). Run after the family and the
 * layers were checked, so that a tensor deleted from a header is reported
 * as missing rather than as the hole it leaves. */
static int st_verify(const InFile *f, const TensorTable *tt, char *err, size_t errlen)
{
	unsigned char len8[8];
	if (infile_read(f, 0, len8, 8, err, errlen))
		return -1;
	size_t base = 8 + (size_t)st_header_len(len8), buflen = f->n - base, n = 0;
	StRange *r = malloc((tt->n ? tt->n : 1) * sizeof *r);
	if (!r) {
		snprintf(err, errlen, "%s: out of memory", f->path);
		return -1;
	}
	for (size_t i = 0; i < tt->n; i++) {
		const TensorRef *t = &tt->v[i];
		if (t->src == f)
			r[n++] = (StRange){t->offset - base, t->offset - base + t->nbytes, t};
	}
	qsort(r, n, sizeof *r, st_range_cmp);
	size_t at = 0;
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (r[i].b < at) {
			snprintf(err, errlen, "%s: tensors %s and %s overlap (data_offsets [%zu, %zu] "
				 "and [%zu, %zu])", f->path, r[i - 1].t->name, r[i].t->name,
				 r[i - 1].b, r[i - 1].e, r[i].b, r[i].e);
			rc = -1;
		} else if (r[i].b > at) {
			snprintf(err, errlen, "%s: offset %zu: %zu byte%s before tensor %s not "
				 "covered by any tensor (data_offsets start at %zu, not %zu)", f->path,
				 base + at, r[i].b - at, r[i].b - at == 1 ? "" : "s", r[i].t->name,
				 r[i].b, at);
			rc = -1;
		}
		at = r[i].e;
	}
	if (!rc && at != buflen) {
		snprintf(err, errlen, "%s: offset %zu: %zu byte%s after the last tensor's data not "
			 "covered by any tensor (wrong header length or corrupt header)", f->path,
			 base + at, buflen - at, buflen - at == 1 ? "" : "s");
		rc = -1;
	}
	free(r);
	return rc;
}

static int st_parse(const InFile *f, TensorTable *tt, Hparams *hp, char *err,
		    size_t errlen)
{
	json_t *root = NULL;
	unsigned char *hdr = NULL;     /* the len header bytes after the length */
	unsigned char len8[8];
	(void)hp;
	if (f->n < 8)
		FAIL("%s: truncated: %zu bytes, a safetensors header length needs 8", f->path, f->n);
	if (infile_read(f, 0, len8, 8, err, errlen))
		goto fail;
	uint64_t len = st_header_len(len8);
	if (len > ST_MAX_HEADER)
		FAIL("%s: offset 0: header length %llu is absurd (limit %zu)", f->path,
		     (unsigned long long)len, ST_MAX_HEADER);
	if (len > f->n - 8)
		FAIL("%s: offset 0: header length %llu runs past the end of the file (%zu bytes)",
		     f->path, (unsigned long long)len, f->n);
	if (len < 2)
		FAIL("%s: offset 0: header length %llu is too short for a JSON object", f->path,
		     (unsigned long long)len);
	hdr = malloc((size_t)len);
	if (!hdr)
		FAIL("%s: out of memory for a header of %llu bytes", f->path,
		     (unsigned long long)len);
	if (infile_read(f, 8, hdr, (size_t)len, err, errlen))
		goto fail;
	/* JSON allows whitespace before the object; anything else there is
	 * not a safetensors header (an array, a string, a number). */
	size_t at = 0;
	while (at < (size_t)len && st_space(hdr[at]))
		at++;
	if (at == (size_t)len || hdr[at] != '{')
		FAIL("%s: offset %zu: header is not a JSON object", f->path, 8 + at);
	json_error_t je;
	root = json_loadb((const char *)hdr, (size_t)len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		FAIL("%s: offset %d: header is not JSON: %s", f->path, 8 + je.position, je.text);
	if (!json_is_object(root))
		FAIL("%s: offset 8: header is not a JSON object", f->path);
	size_t base = 8 + (size_t)len, buflen = f->n - base;
	const char *key;
	json_t *val;
	json_object_foreach(root, key, val) {
		if (!strcmp(key, "__metadata__"))
			continue;
		if (st_entry(f, tt, key, val, base, buflen, err, errlen))
			goto fail;
	}
	json_decref(root);
	free(hdr);
	return 0;
fail:
	json_decref(root);
	free(hdr);
	return -1;
}

const ReaderOps reader_safetensors = {
	.name = "safetensors",
	.format = MODEL_FMT_SAFETENSORS,
	.sniff = st_sniff,
	.parse = st_parse,
	.verify = st_verify,
};
