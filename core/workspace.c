#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/workspace.h"

/* Below this, malloc's own heap is the better home. */
#define WS_MAP_MIN ((size_t)1 << 21)

void *ws_alloc(size_t n)
{
	if (n < WS_MAP_MIN) {
		void *p = NULL;
		if (posix_memalign(&p, 64, n ? n : 64) != 0)
			return NULL;
		return p;
	}
	/* Map one huge page more and trim, so the buffer starts on a huge
	 * page boundary and every 2 MiB of it can be one page. */
	n = (n + 4095) & ~(size_t)4095;
	size_t len = n + WS_MAP_MIN;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	size_t lead = (WS_MAP_MIN - (size_t)((uintptr_t)m % WS_MAP_MIN)) % WS_MAP_MIN;
	if (lead)
		munmap(m, lead);
	if (WS_MAP_MIN - lead)
		munmap(m + lead + n, WS_MAP_MIN - lead);
	char *p = m + lead;
#ifdef MADV_HUGEPAGE
	madvise(p, n, MADV_HUGEPAGE);
#endif
	return p;
}

void *ws_calloc(size_t n)
{
	void *p = ws_alloc(n);
	/* Fresh mappings are already zero. */
	if (p && n < WS_MAP_MIN)
		memset(p, 0, n);
	return p;
}

void ws_free(void *p, size_t n)
{
	if (!p)
		return;
	if (n < WS_MAP_MIN)
		free(p);
	else
		munmap(p, (n + 4095) & ~(size_t)4095);
}
