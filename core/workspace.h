#ifndef ROPEFOLD_CORE_WORKSPACE_H
#define ROPEFOLD_CORE_WORKSPACE_H

#include <stddef.h>

/* Big buffers that live as long as a session. The first touch of fresh
 * memory is expensive on virtual machines (page faults, zeroing), so big
 * buffers are mapped once, advised to use huge pages, and reused by every
 * evaluation instead of being allocated and freed each time. */

/* n bytes, 64-byte aligned, uninitialised; NULL when out of memory.
 * Returns a non-NULL pointer for n = 0 too. */
void *ws_alloc(size_t n);
/* n bytes, zeroed. */
void *ws_calloc(size_t n);
/* Release a buffer of ws_alloc/ws_calloc (n as passed there). */
void ws_free(void *p, size_t n);

#endif
