#ifndef ROPEFOLD_DATA_CHECKSUM_H
#define ROPEFOLD_DATA_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#include "data/tensor.h"

/* Checksums of stored tensor bytes, which tie a fold's sidecar to the
 * files it describes: SipHash-2-4 (Aumasson and Bernstein, "SipHash: a
 * fast short-input PRF", 2012) with the fixed public key 00 01 02 ... 0f,
 * the paper's own test key. It guards against mistakes (a sidecar of
 * another file, an edited one), not against someone forging a sidecar.
 * Written as 16 lowercase hex digits. */

/* The name the sidecar records ("siphash-2-4"). */
#define CHECKSUM_NAME "siphash-2-4"

/* A running checksum, fed any number of times. */
typedef struct {
	uint64_t v[4];
	uint64_t tail;     /* the last total % 8 bytes, little-endian */
	size_t total;      /* bytes fed so far */
} Checksum;

void checksum_init(Checksum *c);
/* Feed n bytes. */
void checksum_update(Checksum *c, const void *p, size_t n);
/* The checksum of everything fed (c is left unusable). */
uint64_t checksum_final(Checksum *c);
/* The checksum of n bytes at once. */
uint64_t checksum_bytes(const void *p, size_t n);

/* The checksum of the bytes tensor t stores, read from its file with
 * pread (not through a mapping, so a file that shrank is an error, not
 * a fault). 0, or -1 with one line in err. */
int checksum_tensor(const TensorRef *t, uint64_t *out, char *err, size_t errlen);

/* 16 hex digits and a NUL into buf. */
void checksum_format(uint64_t h, char buf[17]);
/* Parse 16 hex digits; -1 when s is not exactly that. */
int checksum_parse(const char *s, uint64_t *out);

#endif
