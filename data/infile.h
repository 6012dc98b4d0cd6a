#ifndef ROPEFOLD_DATA_INFILE_H
#define ROPEFOLD_DATA_INFILE_H

#include <stddef.h>

/* A file ropefold reads, through pread on a descriptor kept open: never a
 * mapping, so a file that shrinks while it is read (truncated by another
 * program) is an error message, not a SIGBUS. Opening reads nothing, so a
 * 16 GB checkpoint opens at once; readers read their headers and a layer's
 * tensors read their bytes with infile_read.
 *
 * Every path the readers open goes through infile_open_fd: only regular
 * files are opened (a FIFO would block the open or the first read for
 * ever; a folder, a device or a socket is no checkpoint), and a refusal
 * says what the path is. */
typedef struct {
	char *path;                 /* owned */
	int fd;                     /* -1: borrowed memory */
	const unsigned char *mem;   /* borrowed memory of n bytes (fd == -1) */
	size_t n;                   /* the size when opened */
} InFile;

/* Open path for reading, refusing anything but a regular file (FIFO,
 * folder, device, socket, symlink loop, dangling symlink) with one line
 * in err saying what it is. The open never blocks. Returns the fd (the
 * caller closes it) and the size in *size, or -1. */
int infile_open_fd(const char *path, size_t *size, char *err, size_t errlen);

/* Why path cannot be used, after a call on it failed with errno e, as
 * infile_open_fd words it ("is a symlink loop", "is a symlink to X, which
 * does not exist", else strerror). */
void infile_why(const char *path, int e, char *err, size_t errlen);

/* Open path (through infile_open_fd). Empty files are refused. */
int infile_open(InFile *f, const char *path, char *err, size_t errlen);
/* Read memory the caller keeps alive (fuzzing, tests) through the same
 * calls; name is copied and used in messages. -1 when out of memory. */
int infile_wrap(InFile *f, const char *name, const void *p, size_t n);
/* Bytes [off, off + n) into buf. A range past the size the file had when
 * opened is refused; a file that has shrunk since gives "PATH: changed
 * size while being read (offset N ...)". Returns 0 or -1 with err. */
int infile_read(const InFile *f, size_t off, void *buf, size_t n, char *err,
		size_t errlen);
/* Close and release. */
void infile_close(InFile *f);

/* The first bytes of a file whose header length is known only while it
 * is parsed (GGUF): p holds the file's bytes [0, have), read on demand.
 * A grow may move p: keep offsets, not pointers, across calls. */
typedef struct {
	unsigned char *p;
	size_t have, cap;
} InHead;

/* Make the file's bytes [0, end) available in h->p (end <= f->n); the
 * buffer grows at least twofold, so a header is read in few calls. */
int infile_head_need(const InFile *f, InHead *h, size_t end, char *err, size_t errlen);
/* Release the buffer. */
void infile_head_free(InHead *h);

/* A whole small file (JSON beside a checkpoint) through infile_open_fd,
 * at most max bytes (a larger one is refused as absurd), into a heap
 * buffer of *len bytes plus a NUL (free it). Returns 0 or -1 with err. */
int infile_slurp(const char *path, size_t max, char **text, size_t *len, char *err,
		 size_t errlen);

#endif
