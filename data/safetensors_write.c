#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/writer.h"
#include "data/writer_impl.h"

/* safetensors laid out again: the header JSON keeps every entry and its
 * order, with the dtype and data_offsets of each tensor updated; the data
 * section stays unaligned (offsets are relative to it), the header is
 * padded with spaces to a multiple of 8 bytes as the reference writer
 * does. */

/* The input's header length (its first 8 bytes, little-endian). */
static int header_len(const WFile *f, size_t *len, char *err, size_t errlen)
{
	unsigned char b[8];
	if (f->in.n < 8 || infile_read(&f->in, 0, b, 8, err, errlen)) {
		if (f->in.n < 8)
			snprintf(err, errlen, "%s: offset 0: bad header length", f->in_path);
		return -1;
	}
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	if (v > f->in.n - 8) {
		snprintf(err, errlen, "%s: offset 0: bad header length", f->in_path);
		return -1;
	}
	*len = (size_t)v;
	return 0;
}

int st_write_prepare(WFile *f, char *err, size_t errlen)
{
	size_t len;
	if (header_len(f, &len, err, errlen))
		return -1;
	f->data_in = 8 + len;
	f->align = 1;
	return 0;
}

int st_write_header(WFile *f, char *err, size_t errlen)
{
	size_t len = f->data_in - 8;
	char *text_in = malloc(len ? len : 1);
	if (!text_in) {
		snprintf(err, errlen, "%s: out of memory", f->in_path);
		return -1;
	}
	if (infile_read(&f->in, 8, text_in, len, err, errlen)) {
		free(text_in);
		return -1;
	}
	json_error_t je;
	json_t *root = json_loadb(text_in, len, 0, &je);
	free(text_in);
	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(err, errlen, "%s: offset 8: header is not a JSON object", f->in_path);
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < f->nseg && !rc; i++) {
		const WSeg *s = &f->seg[i];
		json_t *e = json_object_get(root, s->t->name);
		if (!e && s->added) {
			json_t *shape = json_array();
			for (size_t d = 0; d < s->t->ndim; d++)
				json_array_append_new(shape, json_integer((json_int_t)s->t->shape[d]));
			e = json_pack("{s:s, s:o}", "dtype", dtype_name(s->out_dtype), "shape", shape);
			rc |= json_object_set_new(root, s->t->name, e);
		}
		if (!json_is_object(e)) {
			snprintf(err, errlen, "%s: tensor %s: missing from the header", f->in_path,
				 s->t->name);
			rc = -1;
			break;
		}
		const char *dt = s->replace ? dtype_name(s->out_dtype) : NULL;
		if (dt)
			rc |= json_object_set_new(e, "dtype", json_string(dt));
		rc |= json_object_set_new(e, "data_offsets",
					  json_pack("[I, I]", (json_int_t)s->out_off,
						    (json_int_t)(s->out_off + s->out_len)));
		if (rc)
			snprintf(err, errlen, "%s: out of memory", f->in_path);
	}
	char *text = rc ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text) {
		if (!rc)
			snprintf(err, errlen, "%s: out of memory", f->in_path);
		return -1;
	}
	size_t n = strlen(text), padded = (n + 7) / 8 * 8;
	f->header = malloc(8 + padded);
	if (!f->header) {
		free(text);
		snprintf(err, errlen, "%s: out of memory", f->in_path);
		return -1;
	}
	for (int i = 0; i < 8; i++)
		f->header[i] = (unsigned char)((uint64_t)padded >> (8 * i));
	memcpy(f->header + 8, text, n);
	memset(f->header + 8 + n, ' ', padded - n);
	f->data_out = 8 + padded;
	free(text);
	return 0;
}
