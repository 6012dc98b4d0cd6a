#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/ggml_types.h"
#include "data/writer_impl.h"

/* GGUF laid out again: the header (metadata, tensor infos) keeps its size;
 * only each tensor info's ggml type and data offset change. Offsets stay
 * multiples of general.alignment (32 when absent). The reader checked the
 * file already; this walk still checks every length it follows. */

enum { GV_STRING = 8, GV_ARRAY = 9, GV_NTYPES = 13 };
static const size_t gv_size[GV_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* A walk over the input's header, read on demand into h (a short read
 * leaves its message in err). */
typedef struct {
	const InFile *f;
	InHead *h;
	size_t n, pos;
	int bad;
	char *err;
	size_t errlen;
} Walk;

/* Bytes [pos, pos + k) read into h; false (bad) past the end or on error. */
static bool need(Walk *w, size_t k)
{
	if (w->bad || k > w->n - w->pos ||
	    infile_head_need(w->f, w->h, w->pos + k, w->err, w->errlen)) {
		w->bad = w->bad ? w->bad : k > w->n - w->pos ? 1 : 2;
		return false;
	}
	return true;
}

static uint64_t rd(Walk *w, size_t k)
{
	if (!need(w, k))
		return 0;
	uint64_t v = 0;
	for (size_t i = k; i-- > 0;)
		v = v << 8 | w->h->p[w->pos + i];
	w->pos += k;
	return v;
}

static void skip(Walk *w, uint64_t k)
{
	if (w->bad || k > w->n - w->pos)
		w->bad = 1;
	else
		w->pos += (size_t)k;
}

static void skip_value(Walk *w, unsigned t, int depth)
{
	if (t >= GV_NTYPES || depth > 3) {
		w->bad = 1;
	} else if (t == GV_STRING) {
		skip(w, rd(w, 8));
	} else if (t != GV_ARRAY) {
		skip(w, gv_size[t]);
	} else {
		unsigned et = (unsigned)rd(w, 4);
		uint64_t n = rd(w, 8);
		if (et < GV_NTYPES && et != GV_STRING && et != GV_ARRAY) {
			if (n > (w->n - w->pos) / gv_size[et])
				w->bad = 1;
			else
				skip(w, n * gv_size[et]);
		} else {
			for (uint64_t i = 0; i < n && !w->bad; i++)
				skip_value(w, et, depth + 1);
		}
	}
}

int gguf_write_prepare(WFile *f, char *err, size_t errlen)
{
	InHead head = {0};
	Walk w = {&f->in, &head, f->in.n, 4, 0, err, errlen};
	rd(&w, 4);
	uint64_t nt = rd(&w, 8), nkv = rd(&w, 8);
	size_t align = 32;
	for (uint64_t i = 0; i < nkv && !w.bad; i++) {
		uint64_t kl = rd(&w, 8);
		size_t key = w.pos;
		if (kl == 17)
			need(&w, 17);
		skip(&w, kl);
		unsigned t = (unsigned)rd(&w, 4);
		if (!w.bad && kl == 17 && !memcmp(head.p + key, "general.alignment", 17) &&
		    t < GV_NTYPES && t != GV_STRING && t != GV_ARRAY) {
			Walk r = w;
			uint64_t v = rd(&r, gv_size[t]);
			if (v >= 1 && v <= 65536 && !(v & (v - 1)))
				align = (size_t)v;
		}
		skip_value(&w, t, 0);
	}
	for (uint64_t i = 0; i < nt && !w.bad; i++) {
		uint64_t nl = rd(&w, 8);
		size_t name = w.pos;
		need(&w, nl);
		skip(&w, nl);
		uint32_t nd = (uint32_t)rd(&w, 4);
		if (nd > 4)
			w.bad = 1;
		skip(&w, (uint64_t)nd * 8);
		size_t info = w.pos;
		skip(&w, 12);
		for (size_t k = 0; k < f->nseg && !w.bad; k++) {
			const char *tn = f->seg[k].t->name;
			if (f->seg[k].added)
				continue;
			if (strlen(tn) == nl && !memcmp(head.p + name, tn, nl))
				f->seg[k].info_pos = info;
		}
	}
	infile_head_free(&head);
	if (w.bad == 1)
		snprintf(err, errlen, "%s: offset %zu: GGUF header ends early", f->in_path, w.pos);
	if (w.bad)
		return -1;
	f->infos_end = w.pos;
	for (size_t k = 0; k < f->nseg; k++) {
		if (!f->seg[k].info_pos && !f->seg[k].added) {
			snprintf(err, errlen, "%s: tensor %s: no tensor info", f->in_path,
				 f->seg[k].t->name);
			return -1;
		}
	}
	f->align = align;
	f->data_in = w.pos % align ? w.pos + align - w.pos % align : w.pos;
	if (f->data_in > f->in.n)
		f->data_in = f->in.n;
	return 0;
}

/* The ggml id of a dtype the writer stores (every one has an id). */
static uint32_t ggml_type(StoreDtype t)
{
	unsigned id = 0;
	ggml_type_id(t, &id);
	return id;
}

static void put_le(unsigned char *p, uint64_t v, size_t k)
{
	for (size_t i = 0; i < k; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Bytes of the tensor infos of the added tensors (writer_add_tensor):
 * name, dims (ne0 first: the reverse of the row-major shape), type,
 * offset; written at p when p is not NULL (each info_pos set from at). */
static size_t added_infos(WFile *f, unsigned char *p, size_t at)
{
	size_t n = 0;
	for (size_t k = 0; k < f->nseg; k++) {
		WSeg *s = &f->seg[k];
		if (!s->added)
			continue;
		size_t nl = strlen(s->t->name), nd = s->t->ndim;
		if (p) {
			put_le(p + n, nl, 8);
			memcpy(p + n + 8, s->t->name, nl);
			put_le(p + n + 8 + nl, nd, 4);
			for (size_t d = 0; d < nd; d++)
				put_le(p + n + 12 + nl + 8 * d, s->t->shape[nd - 1 - d], 8);
			s->info_pos = at + n + 12 + nl + 8 * nd;
		}
		n += 8 + nl + 4 + 8 * nd + 4 + 8;
	}
	return n;
}

int gguf_write_header(WFile *f, char *err, size_t errlen)
{
	size_t extra = added_infos(f, NULL, 0), nadd = 0;
	size_t head = extra ? f->infos_end + extra : f->data_in;
	size_t out = head % f->align ? head + f->align - head % f->align : head;
	f->header = calloc(out ? out : 1, 1);
	if (!f->header) {
		snprintf(err, errlen, "%s: out of memory", f->in_path);
		return -1;
	}
	if (infile_read(&f->in, 0, f->header, extra ? f->infos_end : f->data_in, err, errlen))
		return -1;
	if (extra) {
		/* the new infos after the last one; the tensor count (offset 8) grows */
		added_infos(f, f->header + f->infos_end, f->infos_end);
		for (size_t k = 0; k < f->nseg; k++)
			nadd += f->seg[k].added;
		uint64_t nt = 0;
		for (int i = 7; i >= 0; i--)
			nt = nt << 8 | f->header[8 + i];
		put_le(f->header + 8, nt + nadd, 8);
	}
	for (size_t k = 0; k < f->nseg; k++) {
		const WSeg *s = &f->seg[k];
		if (s->replace)
			put_le(f->header + s->info_pos, ggml_type(s->out_dtype), 4);
		put_le(f->header + s->info_pos + 4, s->out_off, 8);
	}
	f->data_out = out;
	return 0;
}
