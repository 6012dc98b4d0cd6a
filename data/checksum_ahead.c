#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "data/checksum.h"
#include "data/checksum_ahead.h"

enum { AHEAD_PENDING = 0, AHEAD_DONE, AHEAD_FAILED };

struct ChecksumAhead {
	const TensorRef **t;   /* n tensors, in the order asked for */
	uint64_t *sum;         /* n: their checksums once done */
	unsigned char *state;  /* n: AHEAD_* */
	size_t n;
	size_t hint;           /* where the last lookup found its tensor */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;     /* a checksum was done (or failed) */
	atomic_bool stop;
};

static void *ahead_main(void *arg)
{
	ChecksumAhead *c = arg;
	char err[1024];   /* a failure is read again by checksum_ahead_get */
	for (size_t i = 0; i < c->n && !atomic_load(&c->stop); i++) {
		uint64_t h = 0;
		int rc = checksum_tensor(c->t[i], &h, err, sizeof err);
		pthread_mutex_lock(&c->mu);
		c->sum[i] = h;
		c->state[i] = rc ? AHEAD_FAILED : AHEAD_DONE;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	/* stopped: nobody waits for the rest */
	return NULL;
}

/* Release c's memory (its thread done or never started). */
static void ahead_release(ChecksumAhead *c)
{
	free(c->t);
	free(c->sum);
	free(c->state);
	free(c);
}

ChecksumAhead *checksum_ahead_start(const TensorRef *const *t, size_t n)
{
	ChecksumAhead *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->n = n;
	c->t = malloc((n ? n : 1) * sizeof *c->t);
	c->sum = calloc(n ? n : 1, sizeof *c->sum);
	c->state = calloc(n ? n : 1, 1);
	if (!c->t || !c->sum || !c->state) {
		ahead_release(c);
		return NULL;
	}
	memcpy(c->t, t, n * sizeof *t);
	atomic_init(&c->stop, false);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->thread, NULL, ahead_main, c)) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		ahead_release(c);
		return NULL;
	}
	return c;
}

/* t's place in the list (searched from the last one found, as the
 * tensors are asked for in order), or n. */
static size_t find(ChecksumAhead *c, const TensorRef *t)
{
	for (size_t k = 0; k < c->n; k++) {
		size_t i = (c->hint + k) % c->n;
		if (c->t[i] == t) {
			c->hint = i;
			return i;
		}
	}
	return c->n;
}

int checksum_ahead_get(ChecksumAhead *c, const TensorRef *t, uint64_t *out, char *err,
		       size_t errlen)
{
	size_t i = c ? find(c, t) : 0;
	if (!c || i == c->n)
		return checksum_tensor(t, out, err, errlen);
	pthread_mutex_lock(&c->mu);
	while (c->state[i] == AHEAD_PENDING)
		pthread_cond_wait(&c->cv, &c->mu);
	int rc = c->state[i] == AHEAD_DONE ? 0 : -1;
	*out = c->sum[i];
	pthread_mutex_unlock(&c->mu);
	if (rc)   /* computed again here for the message of this tensor */
		return checksum_tensor(t, out, err, errlen);
	return 0;
}

void checksum_ahead_free(ChecksumAhead *c)
{
	if (!c)
		return;
	atomic_store(&c->stop, true);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	ahead_release(c);
}
