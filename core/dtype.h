#ifndef ROPEFOLD_CORE_DTYPE_H
#define ROPEFOLD_CORE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>

/* The storage types a checkpoint's tensors come in: one enum, and one
 * table (core/dtype.c) holding each type's names, block geometry and
 * rounding. Readers map their file's type ids onto it (data/ggml_types.c,
 * data/safetensors.c), the writer stores in it, verify and fold round and
 * tolerate by it, data/ggml_quant.c decodes the block types by it.
 *
 * A block quantization (ggml's Q4_0 .. IQ4_XS) stores `block` elements in
 * `block_bytes` bytes; a float type stores one element per block. Adding a
 * ggml type is one value here, one row of the table, its id in
 * data/ggml_types.c and its layout in data/ggml_quant.c. The block types
 * come in ggml's order, so that lists of them read as ggml's do. */
typedef enum {
	STORE_F64 = 0,
	STORE_F32,
	STORE_F16,
	STORE_BF16,
	STORE_Q4_0,           /* 32 elements: an f16 scale and 16 bytes of nibbles */
	STORE_Q4_1,           /* the other block layouts: data/ggml_quant.c */
	STORE_Q5_0,
	STORE_Q5_1,
	STORE_Q8_0,           /* 32 elements: an f16 scale and 32 int8 */
	STORE_Q2_K,
	STORE_Q3_K,
	STORE_Q4_K,
	STORE_Q5_K,
	STORE_Q6_K,
	STORE_Q8_K,
	STORE_IQ4_NL,
	STORE_IQ4_XS,
	STORE_COUNT,
	STORE_UNSUPPORTED = STORE_COUNT   /* a type a file names that does not
					   * convert (I8, IQ2_XXS, F8_E4M3, ...):
					   * its bytes are checked, never read */
} StoreDtype;

/* Name as checkpoints and sidecars spell it: "F32", "BF16", "Q8_0" ("?"
 * for STORE_UNSUPPORTED). */
const char *dtype_name(StoreDtype t);
/* Name as ropefold's flags and reports spell it: "f32", "bf16", "q8_0". */
const char *dtype_lower_name(StoreDtype t);
/* Parse either spelling, any case (0 on success, -1 when unknown). */
int dtype_parse(const char *s, StoreDtype *out);
/* The names of every type ropefold reads (floats_only: of the float
 * types), comma-separated into buf: "F64, F32, F16, BF16, Q4_0, ...,
 * IQ4_XS". */
void dtype_list(char *buf, size_t len, bool floats_only);

/* True for the element-wise float types (F64, F32, F16, BF16): they
 * convert to double exactly, round (dtype_round) and can be written. */
bool dtype_is_float(StoreDtype t);
/* True for ggml's block quantizations (Q4_0 .. IQ4_XS): data/ggml_quant.c
 * decodes them; they are read, never written. */
bool dtype_is_block(StoreDtype t);
/* Elements per block: 32 or 256 for the block quantizations, 1 for the
 * floats (0 for STORE_UNSUPPORTED). */
size_t dtype_block(StoreDtype t);
/* Stored bytes of one block (of one element for the floats). */
size_t dtype_block_bytes(StoreDtype t);
/* Bytes of n elements (n a multiple of the block size): false on
 * overflow, a partial block or STORE_UNSUPPORTED. */
bool dtype_bytes(StoreDtype t, size_t n, size_t *bytes);

/* Unit roundoff: 2^-53, 2^-24, 2^-11, 2^-8 for the floats; for a block
 * quantization half its grid step relative to the block's largest
 * magnitude (1/254 for Q8_0, 1/15 for Q4_K: the table in core/dtype.c
 * derives each from ggml's quantizers). */
double dtype_unit_roundoff(StoreDtype t);
/* A block quantization's largest grid step over its block's largest
 * magnitude (0 for the floats). */
double dtype_quant_step(StoreDtype t);
/* The lower name of the float type whose unit roundoff is closest to u. */
const char *dtype_name_of_roundoff(double u);

/* Round n values in place to the nearest value of float type t (ties to
 * even, subnormals kept, overflow to infinity): one rounding, no double
 * rounding through float. Other types are left unchanged. */
void dtype_round(StoreDtype t, double *v, size_t n);
/* The same from x into out (n values; out may be x). */
void dtype_round_into(StoreDtype t, const double *x, size_t n, double *out);
/* The gaps from g, a value of float type t, to its neighbours above (*up)
 * and below (*dn): subnormals kept; a power of two has half the gap on
 * its side towards zero. */
void dtype_gaps(StoreDtype t, double g, double *up, double *dn);

#endif
