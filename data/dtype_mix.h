#ifndef ROPEFOLD_DATA_DTYPE_MIX_H
#define ROPEFOLD_DATA_DTYPE_MIX_H

#include <stddef.h>

/* How many tensors a checkpoint stores in each dtype (a quantized GGUF is
 * a mixture: Q4_K_M keeps some tensors at Q6_K, norms at F32). */

#define DTYPE_MIX_MAX 32

typedef struct {
	char name[16];           /* as the file spells it: "Q4_K", "BF16" */
	size_t count;
} DtypeCount;

typedef struct {
	DtypeCount v[DTYPE_MIX_MAX];   /* most tensors first, ties by name */
	size_t n;
	size_t total;            /* tensors counted */
} DtypeMix;

/* Count one tensor of dtype name (a mixture past DTYPE_MIX_MAX dtypes
 * counts the rest under the last). Keeps the order. */
void dtype_mix_add(DtypeMix *m, const char *name);
/* "Q4_K 190, Q6_K 33, F32 65" into buf ("" when empty). */
void dtype_mix_format(const DtypeMix *m, char *buf, size_t len);

#endif
