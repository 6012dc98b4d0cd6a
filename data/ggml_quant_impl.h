#ifndef ROPEFOLD_DATA_GGML_QUANT_IMPL_H
#define ROPEFOLD_DATA_GGML_QUANT_IMPL_H

/* Inside data/ggml_quant*.c only: a block's fields unpacked, shared by the
 * layouts (ggml_quant.c) and the quantizers (ggml_quantize.c). */

#include <stdint.h>

#include "data/ggml_quant.h"

/* What a block's bytes say, before any arithmetic. */
typedef struct {
	uint16_t d;          /* f16 scale (super-block scale for the K-quants) */
	uint16_t m;          /* the second f16: Q4_1/Q5_1's min m, K-quants' dmin */
	float d32;           /* Q8_K's f32 scale */
	uint8_t sc[16];      /* sub-block scales as stored: Q2_K 4 bits, Q3_K, Q4_K,
			      * Q5_K, IQ4_XS 6 bits, Q6_K the bits of an int8 */
	uint8_t mn[16];      /* sub-block mins: Q2_K 4 bits, Q4_K/Q5_K 6 bits */
	uint8_t q[256];      /* one code per element, unsigned, as many bits as
			      * the type stores (Q8_0/Q8_K: the int8 + 128) */
} QFields;

/* Bytes of one block to its fields and back (pack(unpack(b)) == b, except
 * Q8_K's bsums, which pack computes from the codes). */
void ggml_quant_unpack(StoreDtype t, const unsigned char *b, QFields *f);
void ggml_quant_pack(StoreDtype t, const QFields *f, unsigned char *b);

#endif
