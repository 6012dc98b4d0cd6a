#ifndef ROPEFOLD_DATA_CHECKSUM_AHEAD_H
#define ROPEFOLD_DATA_CHECKSUM_AHEAD_H

#include <stddef.h>
#include <stdint.h>

#include "data/tensor.h"

/* Checksums of stored tensors (checksum_tensor's) computed on a thread of
 * their own, in the order they will be asked for, while the caller does
 * other work: a fold records the checksum of every tensor it rewrites,
 * and reading and hashing them on the folding thread was a tenth of its
 * time at 8B scale. */
typedef struct ChecksumAhead ChecksumAhead;

/* Start the thread on t[0..n) (the array is copied; the tensors must
 * outlive the helper). NULL when no thread or memory could be had: then
 * checksum_ahead_get computes each checksum itself. */
ChecksumAhead *checksum_ahead_start(const TensorRef *const *t, size_t n);
/* The checksum of t: the thread's (waited for) when t is in its list,
 * else computed here. 0, or -1 with one line in err. */
int checksum_ahead_get(ChecksumAhead *c, const TensorRef *t, uint64_t *out, char *err,
		       size_t errlen);
/* Stop the thread (between two tensors) and release everything; NULL is
 * fine. */
void checksum_ahead_free(ChecksumAhead *c);

#endif
