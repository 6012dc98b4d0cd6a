#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

int testhook_fold_layer(size_t written, char *err, size_t errlen)
{
	const char *e = getenv("ROPEFOLD_TEST_FAIL");
	if (!e)
		return 0;
	unsigned long n;
	if (sscanf(e, "layer:%lu", &n) == 1 && written == n) {
		snprintf(err, errlen, "test failure injected after %zu layers", written);
		return -1;
	}
	if (sscanf(e, "kill:%lu", &n) == 1 && written == n)
		raise(SIGKILL);
	return 0;
}

/* commit and pause:FILE, before anything is published. */
static int before_publish(void *ctx, char *err, size_t errlen)
{
	const char *e = ctx;
	if (!strcmp(e, "commit")) {
		snprintf(err, errlen, "test failure injected before the rename");
		return -1;
	}
	if (strncmp(e, "pause:", 6))
		return 0;
	char mark[4200];
	snprintf(mark, sizeof mark, "%s.paused", e + 6);
	FILE *f = fopen(mark, "w");
	if (f)
		fclose(f);
	struct timespec tick = {0, 10 * 1000 * 1000};
	for (int i = 0; i < 6000; i++) {
		if (access(e + 6, F_OK) == 0)
			return 0;
		nanosleep(&tick, NULL);
	}
	snprintf(err, errlen, "test pause: %s did not appear", e + 6);
	return -1;
}

static int layer_done(void *ctx, size_t done, size_t total, char *err, size_t errlen)
{
	(void)ctx;
	(void)total;
	return testhook_fold_layer(done, err, errlen);
}

void testhook_fold_hooks(FoldHooks *h)
{
	const char *e = getenv("ROPEFOLD_TEST_FAIL");
	h->before_publish = e ? before_publish : NULL;
	h->publish_ctx = (void *)e;
	if (!h->layer_done)
		h->layer_done = layer_done;
	if (!h->started)
		h->started = testhook_open;
}
