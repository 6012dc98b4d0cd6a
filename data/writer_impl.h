#ifndef ROPEFOLD_DATA_WRITER_IMPL_H
#define ROPEFOLD_DATA_WRITER_IMPL_H

/* Internals shared by the writer's files: writer.c (the lifecycle),
 * writer_paths.c (writer_new's path rules), writer_layout.c (an output's
 * layout and copy), writer_commit.c (publishing), writer_files.c
 * (temporaries and copies), and the per-format layout code
 * (safetensors_write.c, gguf_write.c); writer_untie.c adds a tensor;
 * writer_round.c turns values into stored bytes. */

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "data/checksum.h"
#include "data/fileset.h"
#include "data/infile.h"
#include "data/model.h"
#include "data/tensor.h"
#include "data/writer.h"

/* Bytes per read and write of a copy. */
#define COPY_CHUNK ((size_t)1 << 20)

/* One tensor of an input file, and where it goes in the output. */
typedef struct {
	const TensorRef *t;
	size_t in_off, in_end;    /* absolute byte range in the input file */
	size_t out_off;           /* absolute in the output (relative to the
				   * data section while the layout is built) */
	size_t out_len;
	StoreDtype out_dtype;
	bool replace;             /* the values come from writer_put */
	bool written;             /* writer_put wrote them (the copy skips
				   * a replaced tensor's bytes) */
	size_t info_pos;          /* GGUF: offset of the tensor info's type */
	size_t put_next;          /* writer_put_part: the next element expected */
	Checksum put_sum;         /* ... and the checksum of the bytes so far */
	bool added;               /* not in the input: writer_add_tensor's, at
				   * the end of the data (in_off = in_end =
				   * the input's size) */
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
	bool resized;             /* some tensor changes its byte size or its
				   * dtype: a new header, a new layout */
	size_t infos_end;         /* GGUF: end of the tensor infos (before the
				   * padding to the data), for added tensors */
	const atomic_bool *stop;  /* the copy is to stop (writer_copy.c), or NULL */
} WFile;

/* One of writer_put's byte buffers, and the write it waits for. */
typedef struct {
	unsigned char *p;
	size_t cap;
	bool busy;                /* handed to the thread, not yet written */
	int fd;                   /* the write: n bytes at offset at of fd */
	size_t n, at;
	const char *path;         /* fd's, for the error */
} WPutBuf;

/* A file copied unchanged (config.json, tokenizer files, ...). */
typedef struct {
	char *src, *final_path, *tmp_path;
	ino_t ino;                /* of the temporary */
	bool published;           /* renamed into place by this commit */
	char *text;               /* written instead of src's bytes, or NULL
				   * (writer_set_aux_text) */
} AuxFile;

/* Bytes written over an output file after its copy (writer_patch). */
typedef struct {
	size_t file;              /* index in files */
	size_t at, n;
	unsigned char bytes[16];
} WPatch;

struct Writer {
	const Model *model;
	WriterOptions opt;        /* also_read, replace_hint: borrowed;
				   * opt.force is also force below */
	char out[PATH_MAX];
	char sidecar[PATH_MAX + 16];
	char sidecar_tmp[PATH_MAX + 48];
	ino_t sidecar_ino;
	bool sidecar_published;   /* renamed into place by this commit */
	FileSet inputs;           /* every file the run reads */
	bool config_differs;      /* single safetensors: OUT's config.json exists
				   * and is not the input's */
	size_t stale_removed;
	bool folder;              /* HF folder in, folder out */
	char in_dir[PATH_MAX];    /* folder mode: the input folder */
	char tmp_dir[PATH_MAX + 48];  /* folder mode: the temporary folder */
	bool force, started, committed;
	WFile *files;
	size_t nfiles;
	AuxFile *aux;
	size_t naux;
	/* folder mode: subfolders made inside tmp_dir for shards such as
	 * "sub/a.safetensors", parents before children; capacity fixed in
	 * writer_start so that the signal handler never sees a realloc */
	char **subdirs;
	size_t nsubdirs, cap_subdirs;
	Writer *next;             /* the list the signal handler walks */
	TensorRef **added;        /* writer_add_tensor's tensors (owned) */
	size_t nadded;
	WPatch *patch;
	size_t npatch;
	/* writer_copy.c: the thread copying the untouched bytes while the
	 * replaced tensors are written, its outcome and its stop flag */
	pthread_t copier;
	bool copying;             /* copier runs (or has run, not joined) */
	atomic_bool copy_stop;
	int copy_rc;
	char copy_err[1024];
	/* writer_put's scratch, kept from tensor to tensor (no fresh pages
	 * per tensor): a block type's decoded values */
	double *put_vals;
	size_t put_nvals;
	/* writer_async.c: the thread writing writer_put's stored bytes, from
	 * two buffers that take turns (kept likewise) */
	pthread_t putter;
	bool putting;             /* putter runs */
	bool put_sync;            /* put_mu and put_cv are initialised */
	pthread_mutex_t put_mu;
	pthread_cond_t put_cv;    /* a buffer was handed over or written */
	WPutBuf put_buf[2];
	int put_turn;             /* the buffer writer_put fills next */
	bool put_quit;
	int put_rc;               /* the first failed write, and its line */
	char put_err[1024];
};

/* ---- writer_async.c ---------------------------------------------------- */

/* Start the thread (without one the writes are made by the caller). */
void writer_async_start(Writer *w);
/* The buffer writer_put fills next, of at least n bytes, once its last
 * write is done; NULL with one line in err on a failed write or memory. */
unsigned char *writer_async_buffer(Writer *w, size_t n, char *err, size_t errlen);
/* Hand that buffer's first n bytes over, to be written at offset at of
 * fd (path names it); 0, or -1 with one line in err. */
int writer_async_write(Writer *w, int fd, size_t n, size_t at, const char *path, char *err,
		       size_t errlen);
/* Every write handed over done: 0, or -1 with the first failure in err. */
int writer_async_wait(Writer *w, char *err, size_t errlen);
/* Stop the thread after its writes and release the buffers. */
void writer_async_stop(Writer *w);

/* ---- writer_round.c ---------------------------------------------------- */

/* m values x of a float dtype t rounded to it, the rounding added to rr
 * (its maxima) and to the sums of squares se (errors) and sv (values),
 * and their stored bytes written at out (m times t's size). */
void writer_round_floats(StoreDtype t, const double *x, size_t m, unsigned char *out,
			 WriterRounding *rr, double *se, double *sv);
/* The same for n values (whole blocks) quantized to block type t, v
 * left holding what the blocks decode to; -1 when a value is beyond what
 * t can store (or memory ran out). */
int writer_round_blocks(StoreDtype t, const double *x, size_t n, double *v,
			unsigned char *out, WriterRounding *rr, double *se, double *sv);

/* ---- writer_paths.c ---------------------------------------------------- */

/* writer_new's checks: in folder or file, OUT and the sidecar's path, the
 * files (and aux files) to write, and which existing ones may go. */
int writer_check_paths(Writer *w, const char *in_path, const char *out_path, char *err,
		       size_t errlen);
/* " (HINT)" appended to a message about an output that exists. */
void writer_add_hint(const Writer *w, char *err, size_t errlen);

/* ---- writer_layout.c --------------------------------------------------- */

/* Lay out one output file and create its temporary (the new header
 * written when the layout changed). */
int writer_start_file(Writer *w, WFile *f, char *err, size_t errlen);
/* Copy every byte of the input file that writer_put does not write into
 * the temporary, and give it its final size (buf: COPY_CHUNK bytes of
 * scratch, for filesystems the kernel cannot copy between). */
int writer_copy_rest(WFile *f, unsigned char *buf, char *err, size_t errlen);

/* ---- writer_copy.c ----------------------------------------------------- */

/* Start copying every file's untouched bytes (writer_copy_rest) on a
 * thread of its own; without a thread, writer_copy_wait copies them. */
void writer_copy_start(Writer *w);
/* The copy done (waited for, or done now) and writer_patch's fields
 * written over it: 0, or -1 with the copy's error in err. */
int writer_copy_wait(Writer *w, char *err, size_t errlen);
/* Stop a copy still running and wait for it (writer_free). */
void writer_copy_stop(Writer *w);

/* ---- writer_commit.c --------------------------------------------------- */

/* Take back what this commit published (async-signal-safe). */
void writer_unpublish(Writer *w);
/* Remove every temporary (async-signal-safe). */
void writer_remove_temps(Writer *w);

/* ---- writer_files.c ---------------------------------------------------- */

/* The last component of path. */
const char *writer_base_name(const char *path);
bool writer_same_inode(const struct stat *a, const struct stat *b);
/* Whether anything is at p (lstat). */
bool writer_exists(const char *p);
/* n bytes at offset at of fd, retried until done: -1 with one line. */
int writer_write_all(int fd, const void *p, size_t n, size_t at, const char *path, char *err,
		     size_t errlen);
/* Copy [from, to) of the input fd to the output at out_at (buf: scratch
 * of COPY_CHUNK bytes). */
int writer_copy_range(int in_fd, const char *in_path, size_t from, size_t to, int out_fd,
		      const char *out_path, size_t out_at, unsigned char *buf, char *err,
		      size_t errlen);
/* A regular file opened for reading without blocking: the fd, or -1. */
int writer_open_input(const char *path, char *err, size_t errlen);
/* A whole file copied into an already created temporary. */
int writer_copy_file(const char *src, int out_fd, const char *out_path, char *err,
		     size_t errlen);
/* Whether two files hold the same bytes. */
bool writer_files_equal(const char *a, const char *b);
/* Folder mode: final_path relative to OUT. */
const char *writer_out_rel(const Writer *w, const char *final_path);
/* A temporary beside final_path (folder mode: inside the temporary
 * folder): the fd, *tmp owned by the caller; -1 with one line. */
int writer_make_temp(Writer *w, const char *final_path, char **tmp, char *err,
		     size_t errlen);
/* fsync a folder. */
int writer_fsync_dir(const char *dir);

/* safetensors: data_in and align of the input. */
int st_write_prepare(WFile *f, char *err, size_t errlen);
/* safetensors: the output header for the relative out_off of every seg;
 * sets header and data_out. */
int st_write_header(WFile *f, char *err, size_t errlen);
/* GGUF: data_in, align and every seg's info_pos. */
int gguf_write_prepare(WFile *f, char *err, size_t errlen);
/* GGUF: the input header with types and offsets of the segs updated. */
int gguf_write_header(WFile *f, char *err, size_t errlen);
/* llama2.c: no header to lay out again (writer_untie.c). */
int llama2c_write_prepare(WFile *f);

#endif
