#ifndef ROPEFOLD_DATA_WRITER_H
#define ROPEFOLD_DATA_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/model.h"
#include "data/tensor.h"

/* Writing a checkpoint: a copy of an open model's files (same format) in
 * which some tensors are replaced, written atomically. Everything not
 * replaced is copied byte for byte; a replaced tensor may change its dtype
 * (F64, F32, F16, BF16), and the file is then laid out again (safetensors
 * header offsets, GGUF tensor infos with their alignment).
 *
 * Call sequence:
 *   writer_new          check the paths (OUT is none of the files the run
 *                       reads, does not exist unless force, ...)
 *   writer_replace      for every tensor to be replaced, with its new dtype
 *   writer_start        stale temporaries of OUT removed; a temporary
 *                       file (or folder) in OUT's folder, laid out
 *   writer_put          the values of each replaced tensor, any order
 *   writer_commit       every byte not replaced copied (after the puts:
 *                       the replaced tensors are read while they may
 *                       still be in the page cache), sidecar text, one
 *                       fsync per file, rename into place
 *   writer_free         removes the temporaries unless committed
 * Every function that can fail returns 0, or -1 with one line in err.
 *
 * A single file (GGUF, llama2.c, safetensors) becomes the file OUT; a
 * safetensors file's config.json is copied beside OUT. An HF folder
 * becomes the folder OUT with every file of the input folder, each shard
 * at its path relative to the input folder (an index's "sub/a.safetensors"
 * in OUT/sub/), and the sidecar inside it as fold.json; else the sidecar
 * is OUT.fold.json.
 *
 * Publishing: without force nothing that exists is ever replaced, even when
 * another run creates it after writer_new looked (renameat2 with
 * RENAME_NOREPLACE, else link + unlink): the sidecar goes first, then the
 * aux files, then OUT, and a failure takes back what this run published.
 * A temporary is named .NAME.tmp-PID-XXXXXX after the file it becomes and
 * the process writing it; writer_start removes those of OUT's names whose
 * process is gone and which have not changed for WRITER_STALE_SECONDS (a
 * run killed by SIGKILL leaves its temporary behind). */

typedef struct Writer Writer;

/* A temporary of a process that is gone, unchanged for this long, is
 * stale (the age guards against a process this one cannot see: another
 * machine or PID namespace sharing the folder). */
#define WRITER_STALE_SECONDS 600

/* How a writer publishes its output. */
typedef struct {
	bool force;                  /* replace an existing OUT, its sidecar, aux files */
	bool sidecar;                /* a sidecar will be written (OUT.fold.json may
				      * then not be one of the files the run reads) */
	const char *also_read;       /* another file the run reads (the --undo
				      * sidecar), or NULL */
	const char *replace_hint;    /* how the user asks for force, added to the
				      * messages about an existing output ("use
				      * --force to replace it"), or NULL */
	/* Called once every temporary is complete, before anything is
	 * published: -1 (with a line in err) fails the commit. For tests
	 * (an interrupted or paused commit); NULL for none. */
	int (*before_publish)(void *ctx, char *err, size_t errlen);
	void *hook_ctx;
} WriterOptions;

/* What re-storing one tensor did. */
typedef struct {
	double max_abs_err;   /* max |stored - given| */
	double max_abs;       /* max |given| */
	uint64_t checksum;    /* of the bytes stored (data/checksum.h) */
	double frob_err;      /* ||stored - given||_F */
	double frob;          /* ||given||_F */
} WriterRounding;

/* Prepare writing a folded copy of m (opened from in_path) to out_path. */
int writer_new(const Model *m, const char *in_path, const char *out_path,
	       const WriterOptions *o, Writer **out, char *err, size_t errlen);
/* Replace tensor t (of m) with values stored as dtype: F64/F32/F16/BF16,
 * or in a GGUF one of ggml's block quantizations but Q8_K (quantized as
 * llama.cpp's quantize does without an importance matrix: data/ggml_quant.h;
 * its rows must be whole blocks). */
int writer_replace(Writer *w, const TensorRef *t, StoreDtype dtype, char *err,
		   size_t errlen);
/* Create the temporaries (the bytes not replaced are copied at commit). */
int writer_start(Writer *w, char *err, size_t errlen);
/* Store t->nelem values of a replaced tensor (rounded to its dtype, or
 * quantized). */
int writer_put(Writer *w, const TensorRef *t, const double *values, WriterRounding *r,
	       char *err, size_t errlen);
/* Store values [first, first + n) of a replaced tensor (rounded to its
 * dtype), the parts of one tensor in order from 0 to t->nelem, so that
 * memory holds one part. r: this part's rounding; its checksum, once the
 * last part is stored, that of all the tensor's bytes (0 before). */
int writer_put_part(Writer *w, const TensorRef *t, size_t first, size_t n, const double *values,
		    WriterRounding *r, char *err, size_t errlen);
/* Copy the bytes not replaced, write the sidecar text, fsync and rename
 * everything into place. */
int writer_commit(Writer *w, const char *sidecar, char *err, size_t errlen);
/* Release; removes the temporaries when not committed. */
void writer_free(Writer *w);

/* Add a tensor the input does not have (an untied head), before
 * writer_start: named name, of like's shape, in the file holding like,
 * stored as dtype after the last tensor; *out is the tensor to writer_put
 * (owned by the writer; its src is NULL: it has no stored bytes to read).
 * safetensors (a header entry), GGUF (a tensor info after the last one,
 * the tensor count raised) and llama2.c (appended; the caller patches the
 * header). */
int writer_add_tensor(Writer *w, const TensorRef *like, const char *name, StoreDtype dtype,
		      const TensorRef **out, char *err, size_t errlen);
/* Write n (<= 16) bytes at offset at of the output file that holds t,
 * over what is copied there (a header field; applied at commit, after the
 * copy). Before writer_start. */
int writer_patch(Writer *w, const TensorRef *t, size_t at, const void *bytes, size_t n,
		 char *err, size_t errlen);
/* The input path of the aux file (copied unchanged) named base, such as
 * "config.json", or NULL when the writer copies none. */
const char *writer_aux_src(const Writer *w, const char *base);
/* Write text as that aux file instead of a copy. Before writer_start. */
int writer_set_aux_text(Writer *w, const char *base, const char *text, char *err,
			size_t errlen);

/* Where the sidecar goes (valid after writer_new). */
const char *writer_sidecar_path(const Writer *w);
/* Stale temporaries writer_start removed. */
size_t writer_stale_removed(const Writer *w);
/* Remove every temporary of the writers alive now: async-signal-safe,
 * for a signal handler. */
void writer_cleanup_signal(void);

#endif
