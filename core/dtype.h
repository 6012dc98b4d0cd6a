#ifndef ROPEFOLD_CORE_DTYPE_H
#define ROPEFOLD_CORE_DTYPE_H

#include <stddef.h>

/* The floating-point storage types a checkpoint's weights come in, as far
 * as rounding is concerned (what a fold re-stores and verify tolerates). */
typedef enum {
	STORE_F64 = 0,
	STORE_F32 = 1,
	STORE_F16 = 2,
	STORE_BF16 = 3
} StoreDtype;

/* Unit roundoff of a storage type: 2^-53, 2^-24, 2^-11, 2^-8. */
double dtype_unit_roundoff(StoreDtype t);
/* "f64", "f32", "f16", "bf16". */
const char *dtype_name(StoreDtype t);
/* The name of the storage type whose unit roundoff is closest to u. */
const char *dtype_name_of_roundoff(double u);
/* Parse "f64", "f32", "f16", "bf16" (any case; 0 on success). */
int dtype_parse(const char *s, StoreDtype *out);
/* Round n values in place to the nearest value of type t (ties to even,
 * subnormals kept, overflow to infinity): one rounding, no double
 * rounding through float. */
void dtype_round(StoreDtype t, double *v, size_t n);

#endif
