#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/writer.h"
#include "data/writer_impl.h"

/* writer_put's bytes are written by a thread of their own, started by
 * writer_start: two buffers take turns, one filled by writer_put while
 * the other is written. The write into the page cache is the kernel
 * copying every byte (5 s of an 8B fold's folding thread); on its own
 * thread it overlaps the next tensor's rounding. A failed write is
 * reported by the next writer_put or by writer_commit, which waits for
 * them all before its fsync. */

static void *putter_main(void *arg)
{
	Writer *w = arg;
	WPutBuf *b = NULL;
	for (size_t turn = 0;; turn ^= 1) {
		pthread_mutex_lock(&w->put_mu);
		b = &w->put_buf[turn];
		while (!b->busy && !w->put_quit)
			pthread_cond_wait(&w->put_cv, &w->put_mu);
		if (!b->busy) {   /* quit, and nothing left to write */
			pthread_mutex_unlock(&w->put_mu);
			return NULL;
		}
		pthread_mutex_unlock(&w->put_mu);
		char err[1024];
		int rc = writer_write_all(b->fd, b->p, b->n, b->at, b->path, err, sizeof err);
		pthread_mutex_lock(&w->put_mu);
		b->busy = false;
		if (rc && !w->put_rc) {
			w->put_rc = rc;
			snprintf(w->put_err, sizeof w->put_err, "%s", err);
		}
		pthread_cond_broadcast(&w->put_cv);
		pthread_mutex_unlock(&w->put_mu);
	}
}

void writer_async_start(Writer *w)
{
	pthread_mutex_init(&w->put_mu, NULL);
	pthread_cond_init(&w->put_cv, NULL);
	w->put_sync = true;
	w->put_quit = false;
	w->put_rc = 0;
	w->put_turn = 0;
	w->putting = pthread_create(&w->putter, NULL, putter_main, w) == 0;
}

/* The first write error, into err (-1), or 0. Under put_mu. */
static int async_error(Writer *w, char *err, size_t errlen)
{
	if (!w->put_rc)
		return 0;
	snprintf(err, errlen, "%s", w->put_err);
	return -1;
}

unsigned char *writer_async_buffer(Writer *w, size_t n, char *err, size_t errlen)
{
	WPutBuf *b = &w->put_buf[w->put_turn];
	if (w->putting) {
		pthread_mutex_lock(&w->put_mu);
		while (b->busy)
			pthread_cond_wait(&w->put_cv, &w->put_mu);
		int rc = async_error(w, err, errlen);
		pthread_mutex_unlock(&w->put_mu);
		if (rc)
			return NULL;
	}
	if (n > b->cap || !b->p) {
		free(b->p);
		b->cap = 0;
		if (!(b->p = malloc(n ? n : 1))) {
			snprintf(err, errlen, "%s: out of memory", w->out);
			return NULL;
		}
		b->cap = n;
	}
	return b->p;
}

int writer_async_write(Writer *w, int fd, size_t n, size_t at, const char *path, char *err,
		       size_t errlen)
{
	WPutBuf *b = &w->put_buf[w->put_turn];
	if (!w->putting)
		return writer_write_all(fd, b->p, n, at, path, err, errlen);
	pthread_mutex_lock(&w->put_mu);
	b->fd = fd;
	b->n = n;
	b->at = at;
	b->path = path;
	b->busy = true;
	pthread_cond_broadcast(&w->put_cv);
	pthread_mutex_unlock(&w->put_mu);
	w->put_turn ^= 1;
	return 0;
}

int writer_async_wait(Writer *w, char *err, size_t errlen)
{
	if (!w->putting)
		return 0;
	pthread_mutex_lock(&w->put_mu);
	while (w->put_buf[0].busy || w->put_buf[1].busy)
		pthread_cond_wait(&w->put_cv, &w->put_mu);
	int rc = async_error(w, err, errlen);
	pthread_mutex_unlock(&w->put_mu);
	return rc;
}

void writer_async_stop(Writer *w)
{
	if (w->putting) {
		pthread_mutex_lock(&w->put_mu);
		w->put_quit = true;
		pthread_cond_broadcast(&w->put_cv);
		pthread_mutex_unlock(&w->put_mu);
		pthread_join(w->putter, NULL);
		w->putting = false;
	}
	if (w->put_sync) {
		pthread_cond_destroy(&w->put_cv);
		pthread_mutex_destroy(&w->put_mu);
		w->put_sync = false;
	}
	for (int i = 0; i < 2; i++) {
		free(w->put_buf[i].p);
		memset(&w->put_buf[i], 0, sizeof w->put_buf[i]);
	}
}
