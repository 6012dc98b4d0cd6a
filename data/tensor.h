#ifndef ROPEFOLD_DATA_TENSOR_H
#define ROPEFOLD_DATA_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/infile.h"

/* Element types a checkpoint may store. Only the first group converts to
 * double; the others are known so that their byte ranges can be checked. */
typedef enum {
	TDT_F64 = 0,
	TDT_F32,
	TDT_F16,
	TDT_BF16,
	TDT_Q8_0,          /* GGUF: blocks of 32, f16 scale + 32 int8 */
	TDT_Q4_0,          /* GGUF: blocks of 32, f16 scale + 16 bytes of nibbles */
	TDT_Q4_1,          /* GGUF: ggml's other block quantizations (layouts in */
	TDT_Q5_0,          /* data/ggml_quant.c) */
	TDT_Q5_1,
	TDT_Q2_K,
	TDT_Q3_K,
	TDT_Q4_K,
	TDT_Q5_K,
	TDT_Q6_K,
	TDT_Q8_K,
	TDT_IQ4_NL,
	TDT_IQ4_XS,
	TDT_UNSUPPORTED    /* known storage type that does not convert */
} TensorDtype;

#define TENSOR_MAX_DIMS 4

/* One tensor inside a checkpoint file: nothing is read until it is. */
typedef struct {
	char *name;                      /* owned */
	TensorDtype dtype;
	char dtype_name[16];             /* as the file spells it: "BF16", "Q8_0" */
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

/* Bytes of n elements of a dtype (n a multiple of the block size for the
 * quantized ones); false on overflow or a partial block. */
bool tensor_dtype_bytes(TensorDtype t, size_t n, size_t *bytes);
/* Elements per block (32 or 256 for the quantized ones, else 1). */
size_t tensor_dtype_block(TensorDtype t);

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
/* The same into float: the quantized dtypes, F32, F16 and BF16 exactly
 * (the floats ggml computes), F64 rounded to nearest. */
int tensor_read_float(const TensorRef *t, size_t first, size_t n, float *out, char *err,
		      size_t errlen);
/* The t->nbytes stored bytes of t into buf. */
int tensor_read_bytes(const TensorRef *t, void *buf, char *err, size_t errlen);

/* IEEE half and bfloat16 bit patterns to double (exact). */
double tensor_f16_to_double(uint16_t h);
double tensor_bf16_to_double(uint16_t b);

/* "[a, b]" into buf. */
void tensor_shape_str(const TensorRef *t, char *buf, size_t len);

#endif
