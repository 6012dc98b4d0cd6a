#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/path.h"
#include "data/publish.h"
#include "data/writer.h"
#include "data/writer_impl.h"

/* The files a writer makes: raw writes and copies, the temporaries beside
 * their final paths (in folder mode inside the temporary folder, their
 * subfolders recorded for the cleanup), and the small path helpers. */

const char *writer_base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

bool writer_same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

bool writer_exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

int writer_write_all(int fd, const void *p, size_t n, size_t at, const char *path,
		     char *err, size_t errlen)
{
	const unsigned char *b = p;
	while (n) {
		ssize_t k = pwrite(fd, b, n, (off_t)at);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			snprintf(err, errlen, "%s: write at offset %zu: %s", path, at,
				 k < 0 ? strerror(errno) : "no progress");
			return -1;
		}
		b += k;
		n -= (size_t)k;
		at += (size_t)k;
	}
	return 0;
}

/* As much of [*from, to) as the kernel copies itself (copy_file_range:
 * the bytes never pass through user memory, and a filesystem that shares
 * extents shares them), advancing *from and *out_at. 0 when it is done or
 * the kernel cannot copy between these files (EXDEV, ENOSYS, EINVAL,
 * EOPNOTSUPP...: the caller reads and writes the rest), -1 with one line
 * on a real read or write error. */
static int kernel_copy(int in_fd, const char *in_path, size_t *from, size_t to, int out_fd,
		       const char *out_path, size_t *out_at, char *err, size_t errlen)
{
#ifdef HAVE_COPY_FILE_RANGE
	while (*from < to) {
		size_t n = to - *from < ((size_t)1 << 30) ? to - *from : (size_t)1 << 30;
		off_t in_off = (off_t)*from, out_off = (off_t)*out_at;
		ssize_t k = copy_file_range(in_fd, &in_off, out_fd, &out_off, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EIO || errno == ENOSPC || errno == EDQUOT ||
			      errno == EFBIG || errno == ENOMEM)) {
			snprintf(err, errlen, "%s: copy to %s at offset %zu: %s", in_path, out_path,
				 *out_at, strerror(errno));
			return -1;
		}
		if (k <= 0)
			return 0;  /* not supported here, or the file shrank: the
				    * read and write loop names it */
		*from += (size_t)k;
		*out_at += (size_t)k;
	}
#else
	(void)in_fd, (void)in_path, (void)from, (void)to, (void)out_fd, (void)out_path,
		(void)out_at, (void)err, (void)errlen;
#endif
	return 0;
}

static int copy_through(int in_fd, const char *in_path, size_t from, size_t to, int out_fd,
			const char *out_path, size_t out_at, unsigned char *buf, char *err,
			size_t errlen);

/* Copy [from, to) of the input fd to the output at out_at: by the kernel
 * when it can, else through buf. */
int writer_copy_range(int in_fd, const char *in_path, size_t from, size_t to, int out_fd,
		      const char *out_path, size_t out_at, unsigned char *buf, char *err,
		      size_t errlen)
{
	/* A range that starts inside a page makes the kernel's copy (a splice
	 * through the page cache) write every page of it in two parts: two to
	 * four times the system time of the same bytes page-aligned, measured
	 * on ext4. When input and output agree within a page, the head up to
	 * the next page boundary goes through buf and the kernel copies the
	 * rest from there. */
	const size_t page = 4096;
	size_t head = from % page ? page - from % page : 0;
	if (head && out_at % page == from % page && to - from > 4 * page) {
		if (copy_through(in_fd, in_path, from, from + head, out_fd, out_path, out_at, buf,
				 err, errlen))
			return -1;
		from += head;
		out_at += head;
	}
	if (kernel_copy(in_fd, in_path, &from, to, out_fd, out_path, &out_at, err, errlen))
		return -1;
	return copy_through(in_fd, in_path, from, to, out_fd, out_path, out_at, buf, err, errlen);
}

/* Copy [from, to) through buf (COPY_CHUNK bytes). */
static int copy_through(int in_fd, const char *in_path, size_t from, size_t to, int out_fd,
			const char *out_path, size_t out_at, unsigned char *buf, char *err,
			size_t errlen)
{
	while (from < to) {
		size_t n = to - from < COPY_CHUNK ? to - from : COPY_CHUNK;
		ssize_t k = pread(in_fd, buf, n, (off_t)from);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			snprintf(err, errlen, "%s: read at offset %zu: %s", in_path, from,
				 k < 0 ? strerror(errno) : "file shrank while copying");
			return -1;
		}
		if (writer_write_all(out_fd, buf, (size_t)k, out_at, out_path, err, errlen))
			return -1;
		from += (size_t)k;
		out_at += (size_t)k;
	}
	return 0;
}

/* A regular file only, opened without blocking (a FIFO is refused). */
int writer_open_input(const char *path, char *err, size_t errlen)
{
	size_t size;
	return infile_open_fd(path, &size, err, errlen);
}

/* A whole file copied into an already created temporary. */
int writer_copy_file(const char *src, int out_fd, const char *out_path, char *err,
		     size_t errlen)
{
	int in = writer_open_input(src, err, errlen);
	if (in < 0)
		return -1;
	struct stat st;
	unsigned char *buf = malloc(COPY_CHUNK);
	int rc = -1;
	if (!buf)
		snprintf(err, errlen, "%s: out of memory", src);
	else if (fstat(in, &st))
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
	else
		rc = writer_copy_range(in, src, 0, (size_t)st.st_size, out_fd, out_path, 0, buf, err,
				errlen);
	free(buf);
	close(in);
	return rc;
}

bool writer_files_equal(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool eq = fa && fb;
	while (eq) {
		int ca = getc(fa), cb = getc(fb);
		if (ca != cb)
			eq = false;
		if (ca == EOF || cb == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return eq;
}

/* Folder mode: final_path relative to OUT ("a.safetensors",
 * "sub/a.safetensors"); every final path there is OUT "/" REL. */
const char *writer_out_rel(const Writer *w, const char *final_path)
{
	return final_path + strlen(w->out) + 1;
}

/* One folder inside the temporary folder, recorded before it is made so
 * that the cleanup (signal handler included) removes it. An existing
 * folder (made for an earlier shard) is fine. */
static int make_subdir(Writer *w, const char *path)
{
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		errno = ENOTDIR;
		return -1;
	}
	char *copy = w->nsubdirs < w->cap_subdirs ? strdup(path) : NULL;
	if (!copy) {
		errno = ENOMEM;
		return -1;
	}
	w->subdirs[w->nsubdirs++] = copy;
	if (mkdir(path, 0755)) {
		int e = errno;
		free(w->subdirs[--w->nsubdirs]);
		errno = e;
		return -1;
	}
	return 0;
}

/* Folder mode: the parent folders of path (tmp_dir "/" rel) inside the
 * temporary folder. */
static int make_subdirs(Writer *w, char *path, char *err, size_t errlen)
{
	for (char *s = path + strlen(w->tmp_dir) + 1; (s = strchr(s, '/')); *s++ = '/') {
		*s = '\0';
		if (make_subdir(w, path)) {
			snprintf(err, errlen, "%s: cannot create the folder %s: %s", w->out, path,
				 strerror(errno));
			*s = '/';
			return -1;
		}
	}
	return 0;
}

/* A temporary file beside final (folder mode: inside the temp folder, at
 * its path relative to OUT). Returns the fd; *tmp is owned by the caller. */
int writer_make_temp(Writer *w, const char *final_path, char **tmp, char *err,
		     size_t errlen)
{
	char dir[PATH_MAX], path[2 * PATH_MAX + 64];
	int fd;
	if (w->folder) {
		int k = snprintf(path, sizeof path, "%s/%s", w->tmp_dir, writer_out_rel(w, final_path));
		if (k < 0 || (size_t)k >= sizeof path) {
			snprintf(err, errlen, "%s: path too long", final_path);
			return -1;
		}
		if (make_subdirs(w, path, err, errlen))
			return -1;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	} else {
		path_dirname(final_path, dir, sizeof dir);
		if (publish_temp_prefix(path, sizeof path - 8, dir, writer_base_name(final_path),
					(long)getpid())) {
			snprintf(err, errlen, "%s: path too long", final_path);
			return -1;
		}
		strcat(path, "XXXXXX");
		fd = mkstemp(path);
		if (fd >= 0)
			fchmod(fd, 0644);
	}
	if (fd < 0) {
		path_dirname(final_path, dir, sizeof dir);
		snprintf(err, errlen, "%s: cannot create a temporary file in %s: %s", final_path,
			 w->folder ? w->tmp_dir : dir, strerror(errno));
		return -1;
	}
	*tmp = strdup(path);
	if (!*tmp) {
		close(fd);
		unlink(path);
		snprintf(err, errlen, "%s: out of memory", final_path);
		return -1;
	}
	return fd;
}

int writer_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}
