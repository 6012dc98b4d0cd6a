#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tui/shared/kernel_env.h"

AttnKernel kernel_env(void)
{
	const char *k = getenv("ROPEFOLD_KERNEL");
	return k && strcmp(k, "blas") == 0 ? ATTN_KERNEL_BLAS : ATTN_KERNEL_AUTO;
}
