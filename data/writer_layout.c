#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/writer.h"
#include "data/writer_impl.h"

/* One output file laid out and copied: tensors keep their order; when a
 * replaced tensor changes its byte size the format's header is written
 * again (safetensors_write.c, gguf_write.c) and the data behind it moves.
 * writer_start_file lays the file out and creates its temporary (with the
 * new header); writer_copy_rest copies every byte writer_put does not
 * write, on writer_copy.c's thread while the replaced tensors are folded
 * and written (the two touch disjoint byte ranges), waited for at commit.
 * It no longer comes before the fold: on a machine whose page cache cannot
 * hold a model and its copy, a copy first sent the attention tensors back
 * to the disk before they were read. */

static int cmp_seg(const void *a, const void *b)
{
	const WSeg *x = a, *y = b;
	return x->in_off < y->in_off ? -1 : x->in_off > y->in_off;
}

static size_t align_up(size_t v, size_t a)
{
	return a > 1 && v % a ? v + a - v % a : v;
}

/* Out offsets relative to the data section: tensors keep their order and
 * the gaps between them; a resized tensor is followed by zero padding to
 * the alignment instead of its old gap. Returns the data section's size. */
static size_t layout_relative(WFile *f)
{
	size_t in = 0, out = 0, data_len = f->in.n - f->data_in;
	for (size_t i = 0; i < f->nseg; i++) {
		WSeg *s = &f->seg[i];
		size_t rel = s->in_off - f->data_in;
		out += rel - in;
		s->out_off = out;
		if (s->out_len == s->in_end - s->in_off) {
			out += s->out_len;
			in = s->in_end - f->data_in;
			continue;
		}
		out = align_up(out + s->out_len, f->align);
		in = i + 1 < f->nseg ? f->seg[i + 1].in_off - f->data_in
				     : align_up(s->in_end - f->data_in, f->align);
		if (in > data_len)
			in = data_len;
	}
	return out + (data_len - in);
}

static int check_overlaps(const WFile *f, char *err, size_t errlen)
{
	for (size_t i = 0; i + 1 < f->nseg; i++) {
		const WSeg *a = &f->seg[i], *b = &f->seg[i + 1];
		if (b->in_off < a->in_end && (a->replace || b->replace || f->resized)) {
			snprintf(err, errlen, "%s: tensors %s and %s share bytes; cannot rewrite "
				 "one of them", f->in_path, a->t->name, b->t->name);
			return -1;
		}
	}
	if (f->nseg && f->seg[0].in_off < f->data_in) {
		snprintf(err, errlen, "%s: tensor %s lies inside the header", f->in_path,
			 f->seg[0].t->name);
		return -1;
	}
	return 0;
}

/* The writer gave up on this copy (writer_free before the commit). */
static bool copy_stopped(const WFile *f, char *err, size_t errlen)
{
	if (!f->stop || !atomic_load(f->stop))
		return false;
	snprintf(err, errlen, "%s: copy stopped", f->tmp_path);
	return true;
}

/* Copy the input to the output around the replaced tensors (writer_put
 * wrote them; the header was written by writer_start_file). */
static int copy_resized(WFile *f, int in_fd, unsigned char *buf, char *err, size_t errlen)
{
	size_t in = f->data_in, out = f->data_out;
	for (size_t i = 0; i < f->nseg; i++) {
		WSeg *s = &f->seg[i];
		if (copy_stopped(f, err, errlen) ||
		    writer_copy_range(in_fd, f->in_path, in, s->in_off, f->fd, f->tmp_path, out, buf, err,
			       errlen))
			return -1;
		out = s->out_off;
		if (s->out_len == s->in_end - s->in_off) {
			/* same size: copied unless writer_put wrote it */
			in = s->replace ? s->in_end : s->in_off;
			if (s->replace)
				out += s->out_len;
			continue;
		}
		/* Replaced and resized: leave room (filled by writer_put). */
		in = i + 1 < f->nseg ? f->seg[i + 1].in_off
				     : f->data_in + align_up(s->in_end - f->data_in, f->align);
		if (in > f->in.n)
			in = f->in.n;
		out = f->data_out + align_up(s->out_off - f->data_out + s->out_len, f->align);
	}
	if (writer_copy_range(in_fd, f->in_path, in, f->in.n, f->fd, f->tmp_path, out, buf, err,
		       errlen))
		return -1;
	size_t end = out + (f->in.n - in);
	if (ftruncate(f->fd, (off_t)end)) {
		snprintf(err, errlen, "%s: %s", f->tmp_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Same layout: every byte but the replaced tensors' copied in place (they
 * are written by writer_put; until then the file has holes there). */
static int copy_in_place(WFile *f, int in_fd, unsigned char *buf, char *err, size_t errlen)
{
	size_t in = 0;
	for (size_t i = 0; i < f->nseg; i++) {
		const WSeg *s = &f->seg[i];
		if (!s->replace || s->in_off < in)
			continue;
		if (copy_stopped(f, err, errlen) ||
		    writer_copy_range(in_fd, f->in_path, in, s->in_off, f->fd, f->tmp_path, in, buf,
				      err, errlen))
			return -1;
		in = s->in_end;
	}
	if (writer_copy_range(in_fd, f->in_path, in, f->in.n, f->fd, f->tmp_path, in, buf, err,
			      errlen))
		return -1;
	if (ftruncate(f->fd, (off_t)f->in.n)) {
		snprintf(err, errlen, "%s: %s", f->tmp_path, strerror(errno));
		return -1;
	}
	return 0;
}

int writer_start_file(Writer *w, WFile *f, char *err, size_t errlen)
{
	if (infile_open(&f->in, f->in_path, err, errlen))
		return -1;
	qsort(f->seg, f->nseg, sizeof *f->seg, cmp_seg);
	/* a new header when a tensor changes size, or changes dtype at the same
	 * width (BF16 <-> F16): the old header would label the new bytes with
	 * the old dtype */
	for (size_t i = 0; i < f->nseg; i++)
		if (f->seg[i].out_len != f->seg[i].in_end - f->seg[i].in_off ||
		    (f->seg[i].replace && f->seg[i].out_dtype != f->seg[i].t->dtype))
			f->resized = true;
	if (check_overlaps(f, err, errlen))
		return -1;
	if (f->resized) {
		int rc = f->format == MODEL_FMT_GGUF      ? gguf_write_prepare(f, err, errlen)
			 : f->format == MODEL_FMT_LLAMA2C ? llama2c_write_prepare(f)
							  : st_write_prepare(f, err, errlen);
		if (rc || check_overlaps(f, err, errlen))
			return -1;
		layout_relative(f);
		rc = f->format == MODEL_FMT_GGUF      ? gguf_write_header(f, err, errlen)
		     : f->format == MODEL_FMT_LLAMA2C ? 0
						      : st_write_header(f, err, errlen);
		if (rc)
			return -1;
		for (size_t i = 0; i < f->nseg; i++)
			f->seg[i].out_off += f->data_out;
	} else {
		for (size_t i = 0; i < f->nseg; i++)
			f->seg[i].out_off = f->seg[i].in_off;
	}
	f->fd = writer_make_temp(w, f->final_path, &f->tmp_path, err, errlen);
	if (f->fd < 0)
		return -1;
	if (f->resized &&
	    writer_write_all(f->fd, f->header, f->data_out, 0, f->tmp_path, err, errlen))
		return -1;
	return 0;
}

int writer_copy_rest(WFile *f, unsigned char *buf, char *err, size_t errlen)
{
	int in_fd = writer_open_input(f->in_path, err, errlen);
	if (in_fd < 0)
		return -1;
	int rc = f->resized ? copy_resized(f, in_fd, buf, err, errlen)
			    : copy_in_place(f, in_fd, buf, err, errlen);
	close(in_fd);
	return rc;
}
