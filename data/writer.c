#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/dtype.h"
#include "data/checksum.h"
#include "data/fileset.h"
#include "data/ggml_quant.h"
#include "data/model_tensors.h"
#include "data/path.h"
#include "data/publish.h"
#include "data/writer.h"
#include "data/writer_impl.h"

/* Every writer alive, for the signal handler's cleanup. */
static Writer *live_writers;


int writer_new(const Model *m, const char *in_path, const char *out_path,
	       const WriterOptions *o, Writer **out, char *err, size_t errlen)
{
	*out = NULL;
	Writer *w = calloc(1, sizeof *w);
	if (!w) {
		snprintf(err, errlen, "%s: out of memory", out_path);
		return -1;
	}
	w->model = m;
	w->opt = *o;
	w->force = o->force;
	if (writer_check_paths(w, in_path, out_path, err, errlen))
		goto fail;
	for (size_t i = 0; i < w->nfiles; i++) {
		const TensorTable *tt = model_tensor_table(m);
		WFile *f = &w->files[i];
		for (size_t k = 0; k < tt->n; k++)
			f->nseg += !strcmp(tt->v[k].file, f->in_path);
		f->seg = calloc(f->nseg ? f->nseg : 1, sizeof *f->seg);
		if (!f->seg) {
			snprintf(err, errlen, "%s: out of memory", f->in_path);
			goto fail;
		}
		size_t n = 0;
		for (size_t k = 0; k < tt->n; k++) {
			const TensorRef *t = &tt->v[k];
			if (strcmp(t->file, f->in_path))
				continue;
			WSeg *s = &f->seg[n++];
			s->t = t;
			s->in_off = t->offset;
			s->in_end = t->offset + t->nbytes;
			s->out_len = t->nbytes;
			s->out_dtype = t->dtype;
		}
	}
	*out = w;
	return 0;
fail:
	writer_free(w);
	return -1;
}

const char *writer_sidecar_path(const Writer *w)
{
	return w->sidecar;
}

static WSeg *find_seg(Writer *w, const TensorRef *t, WFile **file)
{
	for (size_t i = 0; i < w->nfiles; i++) {
		for (size_t k = 0; k < w->files[i].nseg; k++) {
			if (w->files[i].seg[k].t == t) {
				if (file)
					*file = &w->files[i];
				return &w->files[i].seg[k];
			}
		}
	}
	return NULL;
}

int writer_replace(Writer *w, const TensorRef *t, StoreDtype dtype, char *err,
		   size_t errlen)
{
	WSeg *s = find_seg(w, t, NULL);
	if (!s || w->started) {
		snprintf(err, errlen, "%s: tensor %s: not part of this checkpoint", w->out,
			 t->name);
		return -1;
	}
	bool block = dtype_is_block(dtype) && dtype != STORE_Q8_K;
	if (!dtype_is_float(dtype) && !block) {
		char floats[64];
		dtype_list(floats, sizeof floats, true);
		snprintf(err, errlen, "%s: tensor %s: cannot store dtype %s (%s)", t->file, t->name,
			 dtype_name(dtype), floats);
		return -1;
	}
	if (block && w->files[0].format != MODEL_FMT_GGUF) {
		snprintf(err, errlen, "%s: tensor %s: only a GGUF holds ggml's block quantizations "
			 "such as %s", t->file, t->name, dtype_name(dtype));
		return -1;
	}
	if (block && (t->ndim == 0 || t->shape[t->ndim - 1] % dtype_block(dtype))) {
		snprintf(err, errlen, "%s: tensor %s: rows of %zu values are not whole %s blocks "
			 "of %zu", t->file, t->name, t->ndim ? t->shape[t->ndim - 1] : 0,
			 dtype_name(dtype), dtype_block(dtype));
		return -1;
	}
	if (w->files[0].format == MODEL_FMT_LLAMA2C && dtype != STORE_F32) {
		snprintf(err, errlen, "%s: tensor %s: llama2.c files hold only F32", t->file,
			 t->name);
		return -1;
	}
	s->replace = true;
	s->out_dtype = dtype;
	if (!dtype_bytes(dtype, t->nelem, &s->out_len)) {
		snprintf(err, errlen, "%s: tensor %s: too large", t->file, t->name);
		return -1;
	}
	return 0;
}

/* The temporaries of earlier runs to OUT that died (SIGKILL, a crash, a
 * power cut): of OUT itself, and of a single file's sidecar and aux files
 * (in folder mode those lie inside OUT's temporary folder). */
static void remove_stale(Writer *w)
{
	char dir[PATH_MAX];
	time_t now = time(NULL);
	path_dirname(w->out, dir, sizeof dir);
	w->stale_removed += publish_remove_stale(dir, writer_base_name(w->out), now,
						 WRITER_STALE_SECONDS);
	if (w->folder)
		return;
	w->stale_removed += publish_remove_stale(dir, writer_base_name(w->sidecar), now,
						 WRITER_STALE_SECONDS);
	for (size_t i = 0; i < w->naux; i++) {
		path_dirname(w->aux[i].final_path, dir, sizeof dir);
		w->stale_removed += publish_remove_stale(dir, writer_base_name(w->aux[i].final_path), now,
							 WRITER_STALE_SECONDS);
	}
}

size_t writer_stale_removed(const Writer *w)
{
	return w->stale_removed;
}

int writer_start(Writer *w, char *err, size_t errlen)
{
	if (w->started) {
		snprintf(err, errlen, "%s: already started", w->out);
		return -1;
	}
	w->started = true;
	remove_stale(w);
	w->next = live_writers;
	live_writers = w;
	if (w->folder) {
		char dir[PATH_MAX];
		path_dirname(w->out, dir, sizeof dir);
		int bad = publish_temp_prefix(w->tmp_dir, sizeof w->tmp_dir - 8, dir,
					      writer_base_name(w->out), (long)getpid());
		if (!bad)
			strcat(w->tmp_dir, "XXXXXX");
		if (bad || !mkdtemp(w->tmp_dir)) {
			snprintf(err, errlen, "%s: cannot create a temporary folder in %s: %s",
				 w->out, dir, strerror(errno));
			w->tmp_dir[0] = '\0';
			return -1;
		}
		chmod(w->tmp_dir, 0755);
		/* At most one subfolder per '/' of the shards' relative paths. */
		for (size_t i = 0; i < w->nfiles; i++)
			for (const char *c = writer_out_rel(w, w->files[i].final_path); *c; c++)
				w->cap_subdirs += *c == '/';
		w->subdirs = calloc(w->cap_subdirs ? w->cap_subdirs : 1, sizeof *w->subdirs);
		if (!w->subdirs) {
			w->cap_subdirs = 0;
			snprintf(err, errlen, "%s: out of memory", w->out);
			return -1;
		}
	}
	int rc = 0;
	for (size_t i = 0; i < w->nfiles && !rc; i++)
		rc = writer_start_file(w, &w->files[i], err, errlen);
	for (size_t i = 0; i < w->naux && !rc; i++) {
		AuxFile *a = &w->aux[i];
		int fd = writer_make_temp(w, a->final_path, &a->tmp_path, err, errlen);
		if (fd < 0) {
			rc = -1;
			break;
		}
		struct stat st;
		a->ino = fstat(fd, &st) == 0 ? st.st_ino : 0;
		rc = a->text ? writer_write_all(fd, a->text, strlen(a->text), 0, a->tmp_path, err,
						errlen)
			     : writer_copy_file(a->src, fd, a->tmp_path, err, errlen);
		if (!rc && fsync(fd)) {
			snprintf(err, errlen, "%s: fsync: %s", a->tmp_path, strerror(errno));
			rc = -1;
		}
		close(fd);
	}
	if (!rc) {
		writer_copy_start(w);
		writer_async_start(w);
	}
	return rc;
}

int writer_put(Writer *w, const TensorRef *t, const double *values, WriterRounding *r,
	       char *err, size_t errlen)
{
	WFile *f = NULL;
	WSeg *s = find_seg(w, t, &f);
	if (!s || !s->replace || f->fd < 0) {
		snprintf(err, errlen, "%s: tensor %s: not marked for replacement", w->out,
			 t->name);
		return -1;
	}
	size_t n = t->nelem;
	bool block = dtype_is_block(s->out_dtype);
	/* a block type is quantized whole, its decoded values kept here */
	if (block && (n > w->put_nvals || !w->put_vals)) {
		free(w->put_vals);
		w->put_nvals = 0;
		if (!(w->put_vals = malloc((n ? n : 1) * sizeof(double)))) {
			snprintf(err, errlen, "%s: tensor %s: out of memory", w->out, t->name);
			return -1;
		}
		w->put_nvals = n;
	}
	unsigned char *b = writer_async_buffer(w, s->out_len, err, errlen);
	if (!b)
		return -1;
	WriterRounding rr = {0, 0, 0, 0, 0};
	double se = 0, sv = 0;
	if (!block) {
		writer_round_floats(s->out_dtype, values, n, b, &rr, &se, &sv);
	} else if (writer_round_blocks(s->out_dtype, values, n, w->put_vals, b, &rr, &se, &sv)) {
		snprintf(err, errlen, "%s: tensor %s: a rotated value is too large for %s",
			 w->out, t->name, dtype_name(s->out_dtype));
		return -1;
	}
	rr.frob_err = sqrt(se);
	rr.frob = sqrt(sv);
	rr.checksum = checksum_bytes(b, s->out_len);
	if (!isfinite(rr.max_abs_err)) {
		snprintf(err, errlen, "%s: tensor %s: a rotated value overflows %s", w->out,
			 t->name, dtype_name(s->out_dtype));
		return -1;
	}
	int rc = writer_async_write(w, f->fd, s->out_len, s->out_off, f->tmp_path, err, errlen);
	s->written = rc == 0;
	if (!rc && r)
		*r = rr;
	return rc;
}

int writer_put_part(Writer *w, const TensorRef *t, size_t first, size_t n, const double *values,
		    WriterRounding *r, char *err, size_t errlen)
{
	WFile *f = NULL;
	WSeg *s = find_seg(w, t, &f);
	if (!s || !s->replace || f->fd < 0 || first != s->put_next || n > t->nelem - first ||
	    !t->nelem || !dtype_is_float(s->out_dtype)) {
		snprintf(err, errlen, "%s: tensor %s: not marked for replacement as a float "
			 "dtype, or its parts out of order", w->out, t->name);
		return -1;
	}
	size_t esz = s->out_len / t->nelem;   /* float dtypes: whole bytes a value */
	size_t nb = n * esz;
	unsigned char *b = malloc(nb ? nb : 1);
	if (!b) {
		snprintf(err, errlen, "%s: tensor %s: out of memory", w->out, t->name);
		return -1;
	}
	WriterRounding rr;
	memset(&rr, 0, sizeof rr);
	double se = 0, sv = 0;
	writer_round_floats(s->out_dtype, values, n, b, &rr, &se, &sv);
	rr.frob_err = sqrt(se);   /* of this part */
	rr.frob = sqrt(sv);
	if (first == 0)
		checksum_init(&s->put_sum);
	checksum_update(&s->put_sum, b, nb);
	s->put_next = first + n;
	if (s->put_next == t->nelem)
		rr.checksum = checksum_final(&s->put_sum);
	int rc = writer_write_all(f->fd, b, nb, s->out_off + first * esz, f->tmp_path, err, errlen);
	s->written = rc == 0 && s->put_next == t->nelem;
	free(b);
	if (!rc && r)
		*r = rr;
	if (!rc && !isfinite(rr.max_abs_err)) {
		snprintf(err, errlen, "%s: tensor %s: a rotated value overflows %s", w->out,
			 t->name, dtype_name(s->out_dtype));
		return -1;
	}
	return rc;
}

void writer_cleanup_signal(void)
{
	for (Writer *w = live_writers; w; w = w->next) {
		if (!w->committed) {
			writer_remove_temps(w);
			writer_unpublish(w);
		}
	}
}

void writer_free(Writer *w)
{
	if (!w)
		return;
	for (Writer **p = &live_writers; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	writer_copy_stop(w);
	writer_async_stop(w);
	for (size_t i = 0; i < w->nfiles; i++) {
		WFile *f = &w->files[i];
		if (f->fd >= 0)
			close(f->fd);
	}
	if (!w->committed)
		writer_remove_temps(w);
	for (size_t i = 0; i < w->nfiles; i++) {
		WFile *f = &w->files[i];
		free(f->final_path);
		free(f->tmp_path);
		free(f->header);
		free(f->seg);
		if (f->in.path)
			infile_close(&f->in);
	}
	for (size_t i = 0; i < w->nadded; i++) {
		free(w->added[i]->name);
		free(w->added[i]);
	}
	free(w->added);
	free(w->patch);
	for (size_t i = 0; i < w->naux; i++) {
		free(w->aux[i].text);
		free(w->aux[i].src);
		free(w->aux[i].final_path);
		free(w->aux[i].tmp_path);
	}
	for (size_t i = 0; i < w->nsubdirs; i++)
		free(w->subdirs[i]);
	free(w->subdirs);
	free(w->put_vals);
	free(w->aux);
	free(w->files);
	fileset_free(&w->inputs);
	free(w);
}
