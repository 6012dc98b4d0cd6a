#ifndef ROPEFOLD_DATA_GGML_TYPES_H
#define ROPEFOLD_DATA_GGML_TYPES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/dtype.h"

/* ggml's tensor type ids, as GGUF tensor infos hold them, against
 * ropefold's storage types (core/dtype.h): one table for the reader and
 * the writer. The types ropefold does not convert keep their name and
 * block geometry here, so that a GGUF holding them still has its byte
 * ranges checked. */

typedef struct {
	const char *name;       /* ggml's spelling: "F32", "Q8_0", "Q6_K" */
	StoreDtype dtype;       /* STORE_UNSUPPORTED when ropefold does not read it */
	size_t block;           /* elements per block */
	size_t block_bytes;     /* bytes per block */
} GgmlType;

/* The type of ggml id `id`; false when the id is not one ropefold knows. */
bool ggml_type_of(unsigned id, GgmlType *out);
/* The ggml id of a storage type; false for STORE_UNSUPPORTED. */
bool ggml_type_id(StoreDtype t, unsigned *id);

#endif
