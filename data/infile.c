#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/infile.h"

/* The first read of a header grown on demand (small, so that the fuzz
 * targets' inputs, at most 64 KiB, grow it several times). */
#define HEAD_MIN ((size_t)4 << 10)

/* What a path that is not a regular file is. */
static const char *kind_name(mode_t m)
{
	if (S_ISDIR(m))
		return "a folder";
	if (S_ISFIFO(m))
		return "a FIFO (named pipe)";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

/* The target of a symlink path into buf, or "" when path is none. */
static void link_target(const char *path, char *buf, size_t len)
{
	struct stat ls;
	ssize_t k = -1;
	if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode))
		k = readlink(path, buf, len - 1);
	buf[k > 0 ? (size_t)k : 0] = '\0';
}

/* "PATH: is a FIFO (named pipe), not a regular file", naming a symlink's
 * target when path is one. */
static void describe_kind(const char *path, mode_t m, char *err, size_t errlen)
{
	char to[256];
	link_target(path, to, sizeof to);
	if (to[0])
		snprintf(err, errlen, "%s: is a symlink to %s, %s, not a regular file", path, to,
			 kind_name(m));
	else
		snprintf(err, errlen, "%s: is %s, not a regular file", path, kind_name(m));
}

/* Why stat or open failed, in words for the two cases strerror words
 * badly (a loop, a symlink to nothing). */
void infile_why(const char *path, int e, char *err, size_t errlen)
{
	char to[256];
	if (e == ELOOP) {
		snprintf(err, errlen, "%s: is a symlink loop (too many levels of symbolic links)",
			 path);
		return;
	}
	link_target(path, to, sizeof to);
	if (e == ENOENT && to[0])
		snprintf(err, errlen, "%s: is a symlink to %s, which does not exist", path, to);
	else
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
}

int infile_open_fd(const char *path, size_t *size, char *err, size_t errlen)
{
	struct stat st;
	/* stat first, so that a device is never opened (an open may act). */
	if (stat(path, &st) != 0) {
		infile_why(path, errno, err, errlen);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		describe_kind(path, st.st_mode, err, errlen);
		return -1;
	}
	/* O_NONBLOCK: should the path become a FIFO after the stat, the
	 * open returns at once and the fstat below refuses it. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		infile_why(path, errno, err, errlen);
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		describe_kind(path, st.st_mode, err, errlen);
		close(fd);
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if ((unsigned long long)st.st_size > (unsigned long long)SIZE_MAX) {
		snprintf(err, errlen, "%s: too large for this machine", path);
		close(fd);
		return -1;
	}
	*size = (size_t)st.st_size;
	return fd;
}

int infile_open(InFile *f, const char *path, char *err, size_t errlen)
{
	memset(f, 0, sizeof *f);
	f->fd = -1;
	size_t n;
	int fd = infile_open_fd(path, &n, err, errlen);
	if (fd < 0)
		return -1;
	if (n == 0) {
		snprintf(err, errlen, "%s: empty file", path);
		close(fd);
		return -1;
	}
	f->path = strdup(path);
	if (!f->path) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	f->fd = fd;
	f->n = n;
	return 0;
}

int infile_wrap(InFile *f, const char *name, const void *p, size_t n)
{
	memset(f, 0, sizeof *f);
	f->fd = -1;
	f->path = strdup(name);
	if (!f->path)
		return -1;
	f->mem = p;
	f->n = n;
	return 0;
}

/* The short read of an open file: it has shrunk since it was opened. */
static void shrank(const InFile *f, size_t at, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(f->fd, &st) == 0 && (unsigned long long)st.st_size != f->n)
		snprintf(err, errlen, "%s: changed size while being read (offset %zu: %zu bytes "
			 "when opened, %lld now)", f->path, at, f->n, (long long)st.st_size);
	else
		snprintf(err, errlen, "%s: changed size while being read (offset %zu: the file "
			 "ends early)", f->path, at);
}

int infile_read(const InFile *f, size_t off, void *buf, size_t n, char *err,
		size_t errlen)
{
	if (off > f->n || n > f->n - off) {
		snprintf(err, errlen, "%s: offset %zu: %zu bytes past the end of the file (%zu "
			 "bytes)", f->path, off, n, f->n);
		return -1;
	}
	if (f->fd < 0) {
		if (n)
			memcpy(buf, f->mem + off, n);
		return 0;
	}
	unsigned char *b = buf;
	while (n) {
		/* Linux moves at most about 2 GiB per call. */
		size_t want = n < ((size_t)1 << 30) ? n : (size_t)1 << 30;
		ssize_t k = pread(f->fd, b, want, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			snprintf(err, errlen, "%s: read at offset %zu: %s", f->path, off,
				 strerror(errno));
			return -1;
		}
		if (k == 0) {
			shrank(f, off, err, errlen);
			return -1;
		}
		b += k;
		off += (size_t)k;
		n -= (size_t)k;
	}
	return 0;
}

void infile_close(InFile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	memset(f, 0, sizeof *f);
	f->fd = -1;
}

int infile_head_need(const InFile *f, InHead *h, size_t end, char *err, size_t errlen)
{
	if (end <= h->have)
		return 0;
	if (end > f->n) {
		snprintf(err, errlen, "%s: offset %zu: past the end of the file (%zu bytes)",
			 f->path, end, f->n);
		return -1;
	}
	if (end > h->cap) {
		size_t cap = h->cap ? h->cap : HEAD_MIN;
		while (cap < end && cap <= SIZE_MAX / 2)
			cap *= 2;
		if (cap < end)
			cap = end;
		if (cap > f->n)
			cap = f->n;
		unsigned char *p = realloc(h->p, cap);
		if (!p) {
			snprintf(err, errlen, "%s: out of memory for a header of %zu bytes", f->path,
				 cap);
			return -1;
		}
		h->p = p;
		h->cap = cap;
	}
	/* Read up to the capacity: the next need is likely close by. */
	if (infile_read(f, h->have, h->p + h->have, h->cap - h->have, err, errlen))
		return -1;
	h->have = h->cap;
	return 0;
}

void infile_head_free(InHead *h)
{
	free(h->p);
	memset(h, 0, sizeof *h);
}

int infile_slurp(const char *path, size_t max, char **text, size_t *len, char *err,
		 size_t errlen)
{
	*text = NULL;
	*len = 0;
	InFile f;
	memset(&f, 0, sizeof f);
	size_t n;
	int fd = infile_open_fd(path, &n, err, errlen);
	if (fd < 0)
		return -1;
	if (n > max) {
		snprintf(err, errlen, "%s: %zu bytes: absurdly large for this file (at most %zu)",
			 path, n, max);
		close(fd);
		return -1;
	}
	char *buf = malloc(n + 1);
	f.path = (char *)path;
	f.fd = fd;
	f.n = n;
	int rc = -1;
	if (!buf)
		snprintf(err, errlen, "%s: out of memory", path);
	else
		rc = infile_read(&f, 0, buf, n, err, errlen);
	close(fd);
	if (rc) {
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}
