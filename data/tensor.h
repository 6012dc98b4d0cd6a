#ifndef ROPEFOLD_DATA_TENSOR_H
#define ROPEFOLD_DATA_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "data/infile.h"

#define TENSOR_MAX_DIMS 4

/* One tensor inside a checkpoint file: nothing is read until it is. */
typedef struct {
	char *name;                      /* owned */
	StoreDtype dtype;                /* STORE_UNSUPPORTED: dtype_name says which */
	char dtype_name[16];             /* as the file spells it: "BF16", "Q8_0", "I8" */
	size_t ndim;
	size_t shape[TENSOR_MAX_DIMS];   /* row-major: shape[0] outermost */
	size_t nelem;
	const InFile *src;               /* the file holding it (not owned) */
	size_t nbytes;
	size_t offset;                   /* absolute byte offset in src */
	const char *file;                /* src->path, for messages */
} TensorRef;

/* All tensors of a checkpoint (of every shard), with a hash index on the
 * names so that lookups stay O(1) for checkpoints of many thousand
 * tensors (MoE experts). Zero-initialise before the first add. */
typedef struct {
	TensorRef *v;
	size_t n, cap;
	size_t *slot;     /* nslot entries (a power of two): index into v + 1, 0 = free */
	size_t nslot;
} TensorTable;

/* Overflow-checked size arithmetic: false when the result does not fit. */
static inline bool size_mul(size_t a, size_t b, size_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}
static inline bool size_add(size_t a, size_t b, size_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

/* Append a tensor (name copied); returns the new entry or NULL (no memory).
 * Callers check tensor_table_find first: names are meant to be unique. */
TensorRef *tensor_table_add(TensorTable *tt, const char *name, size_t namelen);
/* The tensor of that exact name (the first added), or NULL. */
const TensorRef *tensor_table_find(const TensorTable *tt, const char *name);
/* Release names, the array and the index. */
void tensor_table_free(TensorTable *tt);

/* Convert elements [first, first + n) of t to double (exact for every
 * convertible dtype), reading their bytes from t->src in large calls
 * straight into out: no scratch buffer, nothing shared, so two threads
 * may read tensors of one file at once. Returns 0, or -1 with one line
 * in err: the range is outside the tensor, the dtype does not convert,
 * or the file could not be read (it shrank since it was opened). */
int tensor_read(const TensorRef *t, size_t first, size_t n, double *out, char *err,
		size_t errlen);
/* The same, and *finite made false when a value read is NaN or Inf (told
 * in the conversion's own pass; left alone otherwise). */
int tensor_read_scan(const TensorRef *t, size_t first, size_t n, double *out, bool *finite,
		     char *err, size_t errlen);
/* The same into float: the quantized dtypes, F32, F16 and BF16 exactly
 * (the floats ggml computes), F64 rounded to nearest. */
int tensor_read_float(const TensorRef *t, size_t first, size_t n, float *out, char *err,
		      size_t errlen);
/* The same, and *finite made false when a float read is NaN or Inf (told
 * while converting; left alone when all are finite). */
int tensor_read_float_scan(const TensorRef *t, size_t first, size_t n, float *out,
			   bool *finite, char *err, size_t errlen);
/* The t->nbytes stored bytes of t into buf. */
int tensor_read_bytes(const TensorRef *t, void *buf, char *err, size_t errlen);

/* IEEE half and bfloat16 bit patterns to double (exact). */
double tensor_f16_to_double(uint16_t h);
double tensor_bf16_to_double(uint16_t b);

/* "[a, b]" into buf. */
void tensor_shape_str(const TensorRef *t, char *buf, size_t len);

#endif
