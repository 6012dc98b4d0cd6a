#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tui/shared/testhook.h"

void testhook_stop(const char *point)
{
	const char *e = getenv("ROPEFOLD_TEST_STOP");
	if (e && !strcmp(e, point))
		raise(SIGSTOP);
}

void testhook_open(void *unused)
{
	(void)unused;
	testhook_stop("open");
}
