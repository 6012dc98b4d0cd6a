#ifndef ROPEFOLD_CORE_STREAM_STORE_H
#define ROPEFOLD_CORE_STREAM_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* k doubles from o stored to out past the caches, where SSE2 can (x86-64:
 * always) and out is 16-byte aligned (malloc's buffers are) and k even;
 * else plainly. For a buffer far larger than the caches that is read
 * again only much later (a layer read from its file, the noise copy of
 * one): a plain store first reads every line it writes. Only the k values
 * are written, so other bytes sharing their lines stay as they are. End a
 * pass of them with stream_fence before another thread reads the buffer. */
#if defined(__SSE2__)
#include <emmintrin.h>
static inline void stream_doubles(double *out, const double *o, size_t k)
{
	if (((uintptr_t)out & 15) || k % 2) {
		memcpy(out, o, k * sizeof *out);
		return;
	}
	for (size_t i = 0; i < k; i += 2)
		_mm_stream_pd(out + i, _mm_loadu_pd(o + i));
}
static inline void stream_fence(void)
{
	_mm_sfence();
}
#else
static inline void stream_doubles(double *out, const double *o, size_t k)
{
	memcpy(out, o, k * sizeof *out);
}
static inline void stream_fence(void)
{
}
#endif

#endif
