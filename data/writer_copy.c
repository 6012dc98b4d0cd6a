#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/writer.h"
#include "data/writer_impl.h"

/* The untouched bytes of every output file (all but the replaced
 * tensors: at 8B scale 13 of 16 GB) are copied by a thread of their own,
 * started by writer_start, while the caller reads, folds and writes the
 * replaced tensors; writer_commit waits for it. The copy is the kernel's
 * (copy_file_range: system time and the disk), the fold's arithmetic is
 * user time: on two cores the two overlap instead of adding up. Each
 * thread writes its own byte ranges of the temporaries (pwrite and
 * copy_file_range at explicit offsets), so they share nothing but the
 * file descriptors. */

static int copy_all(Writer *w, char *err, size_t errlen)
{
	unsigned char *buf = malloc(COPY_CHUNK);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", w->out);
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < w->nfiles && !rc; i++)
		rc = writer_copy_rest(&w->files[i], buf, err, errlen);
	free(buf);
	return rc;
}

static void *copier_main(void *arg)
{
	Writer *w = arg;
	w->copy_rc = copy_all(w, w->copy_err, sizeof w->copy_err);
	return NULL;
}

void writer_copy_start(Writer *w)
{
	atomic_store(&w->copy_stop, false);
	for (size_t i = 0; i < w->nfiles; i++)
		w->files[i].stop = &w->copy_stop;
	w->copy_rc = 0;
	w->copy_err[0] = '\0';
	w->copying = pthread_create(&w->copier, NULL, copier_main, w) == 0;
}

int writer_copy_wait(Writer *w, char *err, size_t errlen)
{
	int rc;
	if (w->copying) {
		pthread_join(w->copier, NULL);
		w->copying = false;
		rc = w->copy_rc;
		if (rc)
			snprintf(err, errlen, "%s", w->copy_err);
	} else {
		rc = copy_all(w, err, errlen);
	}
	for (size_t i = 0; i < w->npatch && !rc; i++) {
		const WPatch *p = &w->patch[i];
		WFile *f = &w->files[p->file];
		rc = writer_write_all(f->fd, p->bytes, p->n, p->at, f->tmp_path, err, errlen);
	}
	return rc;
}

void writer_copy_stop(Writer *w)
{
	if (!w->copying)
		return;
	atomic_store(&w->copy_stop, true);
	pthread_join(w->copier, NULL);
	w->copying = false;
}
