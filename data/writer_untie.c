#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/writer.h"
#include "data/writer_impl.h"

/* What a writer adds beyond replacing tensors, for untying a head: a new
 * tensor after the last one, bytes patched over the copy (llama2.c's
 * header), an aux file written from text (config.json). */

int llama2c_write_prepare(WFile *f)
{
	/* weights from offset 0 of the data; nothing to lay out again */
	f->data_in = 0;
	f->align = 1;
	f->data_out = 0;
	return 0;
}

/* The file holding tensor t, or NULL. */
static WFile *file_of(Writer *w, const TensorRef *t)
{
	for (size_t i = 0; i < w->nfiles; i++)
		if (!strcmp(w->files[i].in_path, t->file))
			return &w->files[i];
	return NULL;
}

int writer_add_tensor(Writer *w, const TensorRef *like, const char *name, StoreDtype dtype,
		      const TensorRef **out, char *err, size_t errlen)
{
	WFile *f = file_of(w, like);
	struct stat st;
	if (!f || w->started) {
		snprintf(err, errlen, "%s: tensor %s: cannot add a tensor beside it", w->out,
			 like->name);
		return -1;
	}
	if ((f->format == MODEL_FMT_LLAMA2C && dtype != STORE_F32) || !dtype_is_float(dtype)) {
		snprintf(err, errlen, "%s: tensor %s: cannot store dtype %s here", w->out, name,
			 dtype_name(dtype));
		return -1;
	}
	if (stat(f->in_path, &st) != 0) {
		snprintf(err, errlen, "%s: %s", f->in_path, strerror(errno));
		return -1;
	}
	TensorRef **na = realloc(w->added, (w->nadded + 1) * sizeof *na);
	WSeg *ns = realloc(f->seg, (f->nseg + 1) * sizeof *ns);
	if (na)
		w->added = na;
	if (ns)
		f->seg = ns;
	TensorRef *t = na && ns ? calloc(1, sizeof *t) : NULL;
	if (!t || !(t->name = strdup(name))) {
		free(t);
		snprintf(err, errlen, "%s: out of memory", w->out);
		return -1;
	}
	w->added[w->nadded++] = t;
	t->dtype = dtype;
	snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtype_name(dtype));
	t->ndim = like->ndim;
	memcpy(t->shape, like->shape, sizeof t->shape);
	t->nelem = like->nelem;
	t->src = NULL;
	t->nbytes = 0;
	t->offset = (size_t)st.st_size;
	t->file = like->file;
	WSeg *s = &f->seg[f->nseg++];
	memset(s, 0, sizeof *s);
	s->t = t;
	s->in_off = s->in_end = (size_t)st.st_size;
	s->replace = true;
	s->added = true;
	s->out_dtype = dtype;
	if (!dtype_bytes(dtype, t->nelem, &s->out_len)) {
		snprintf(err, errlen, "%s: tensor %s: too large", w->out, name);
		return -1;
	}
	*out = t;
	return 0;
}

int writer_patch(Writer *w, const TensorRef *t, size_t at, const void *bytes, size_t n,
		 char *err, size_t errlen)
{
	WFile *f = file_of(w, t);
	WPatch *np = f && !w->started && n <= sizeof np->bytes
			     ? realloc(w->patch, (w->npatch + 1) * sizeof *np) : NULL;
	if (!np) {
		snprintf(err, errlen, "%s: cannot patch the output", w->out);
		return -1;
	}
	w->patch = np;
	WPatch *p = &w->patch[w->npatch++];
	p->file = (size_t)(f - w->files);
	p->at = at;
	p->n = n;
	memcpy(p->bytes, bytes, n);
	return 0;
}

static AuxFile *aux_named(const Writer *w, const char *base)
{
	for (size_t i = 0; i < w->naux; i++)
		if (!strcmp(writer_base_name(w->aux[i].final_path), base))
			return &w->aux[i];
	return NULL;
}

const char *writer_aux_src(const Writer *w, const char *base)
{
	const AuxFile *a = aux_named(w, base);
	return a ? a->src : NULL;
}

int writer_set_aux_text(Writer *w, const char *base, const char *text, char *err,
			size_t errlen)
{
	AuxFile *a = aux_named(w, base);
	char *c = a && !w->started ? strdup(text) : NULL;
	if (!c) {
		snprintf(err, errlen, "%s: cannot write %s", w->out, base);
		return -1;
	}
	free(a->text);
	a->text = c;
	return 0;
}
