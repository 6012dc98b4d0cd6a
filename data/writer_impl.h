#ifndef ROPEFOLD_DATA_WRITER_IMPL_H
#define ROPEFOLD_DATA_WRITER_IMPL_H

/* Internals shared by writer.c and the per-format layout code
 * (safetensors_write.c, gguf_write.c). */

#include <stdbool.h>
#include <stddef.h>

#include "data/infile.h"
#include "data/model.h"
#include "data/tensor.h"

/* One tensor of an input file, and where it goes in the output. */
typedef struct {
	const TensorRef *t;
	size_t in_off, in_end;    /* absolute byte range in the input file */
	size_t out_off;           /* absolute in the output (relative to the
				   * data section while the layout is built) */
	size_t out_len;
	StoreDtype out_dtype;
	bool replace;             /* the values come from writer_put */
	size_t info_pos;          /* GGUF: offset of the tensor info's type */
} WSeg;

/* One input file and its output. */
typedef struct {
	const char *in_path;      /* the reader's path (not owned) */
	char *final_path;         /* where it ends up (owned) */
	char *tmp_path;           /* the temporary (owned), NULL until created */
	int fd;
	InFile in;                /* the input, read with infile_read */
	ModelFormat format;
	size_t data_in, data_out; /* starts of the data sections */
	size_t align;             /* of tensor data (relative to data_out) */
	unsigned char *header;    /* output bytes [0, data_out) when resized */
	WSeg *seg;                /* sorted by in_off */
	size_t nseg;
	bool resized;             /* some tensor changes its byte size */
} WFile;

/* safetensors: data_in and align of the input. */
int st_write_prepare(WFile *f, char *err, size_t errlen);
/* safetensors: the output header for the relative out_off of every seg;
 * sets header and data_out. */
int st_write_header(WFile *f, char *err, size_t errlen);
/* GGUF: data_in, align and every seg's info_pos. */
int gguf_write_prepare(WFile *f, char *err, size_t errlen);
/* GGUF: the input header with types and offsets of the segs updated. */
int gguf_write_header(WFile *f, char *err, size_t errlen);

#endif
