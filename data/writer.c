#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/dtype.h"
#include "data/checksum.h"
#include "data/fileset.h"
#include "data/model_tensors.h"
#include "data/path.h"
#include "data/publish.h"
#include "data/writer.h"
#include "data/writer_impl.h"

#define COPY_CHUNK ((size_t)1 << 20)

/* A file copied unchanged (config.json, tokenizer files, ...). */
typedef struct {
	char *src, *final_path, *tmp_path;
	ino_t ino;                /* of the temporary */
	bool published;           /* renamed into place by this commit */
} AuxFile;

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
};

static Writer *live_writers;

/* ---- small helpers -------------------------------------------------------- */

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* out without trailing slashes (a folder may be given as "out/"). */
static void strip_slashes(char *p)
{
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
}

static bool same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* IEEE half bits of a double already representable as a half. */
static uint16_t half_bits(double v)
{
	uint16_t sign = signbit(v) ? 0x8000 : 0;
	double a = fabs(v);
	if (a == 0)
		return sign;
	if (isinf(a))
		return sign | 0x7c00;
	if (isnan(a))
		return 0x7e00;
	int e;
	frexp(a, &e);  /* a = m 2^e, m in [0.5, 1) */
	if (e - 1 < -14)
		return sign | (uint16_t)ldexp(a, 24);   /* subnormal: a / 2^-24 */
	uint16_t mant = (uint16_t)(ldexp(a, -(e - 1)) * 1024.0 - 1024.0);
	return sign | (uint16_t)((e - 1 + 15) << 10) | mant;
}

/* Little-endian bytes of n values already rounded to dtype t. */
static void encode(StoreDtype t, const double *v, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t u = 0;
		size_t k = 0;
		if (t == STORE_F64) {
			memcpy(&u, &v[i], 8);
			k = 8;
		} else if (t == STORE_F32 || t == STORE_BF16) {
			float f = (float)v[i];
			uint32_t b;
			memcpy(&b, &f, 4);
			u = t == STORE_F32 ? b : b >> 16;
			k = t == STORE_F32 ? 4 : 2;
		} else {
			u = half_bits(v[i]);
			k = 2;
		}
		for (size_t j = 0; j < k; j++)
			out[i * k + j] = (unsigned char)(u >> (8 * j));
	}
}

static int write_all(int fd, const void *p, size_t n, size_t at, const char *path,
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

/* Copy [from, to) of the input fd to the output at out_at. */
static int copy_range(int in_fd, const char *in_path, size_t from, size_t to, int out_fd,
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
		if (write_all(out_fd, buf, (size_t)k, out_at, out_path, err, errlen))
			return -1;
		from += (size_t)k;
		out_at += (size_t)k;
	}
	return 0;
}

/* A regular file only, opened without blocking (a FIFO is refused). */
static int open_input(const char *path, char *err, size_t errlen)
{
	size_t size;
	return infile_open_fd(path, &size, err, errlen);
}

/* A whole file copied into an already created temporary. */
static int copy_file(const char *src, int out_fd, const char *out_path, char *err,
		     size_t errlen)
{
	int in = open_input(src, err, errlen);
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
		rc = copy_range(in, src, 0, (size_t)st.st_size, out_fd, out_path, 0, buf, err,
				errlen);
	free(buf);
	close(in);
	return rc;
}

static bool files_equal(const char *a, const char *b)
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
static const char *out_rel(const Writer *w, const char *final_path)
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
static int make_temp(Writer *w, const char *final_path, char **tmp, char *err,
		     size_t errlen)
{
	char dir[PATH_MAX], path[2 * PATH_MAX + 64];
	int fd;
	if (w->folder) {
		int k = snprintf(path, sizeof path, "%s/%s", w->tmp_dir, out_rel(w, final_path));
		if (k < 0 || (size_t)k >= sizeof path) {
			snprintf(err, errlen, "%s: path too long", final_path);
			return -1;
		}
		if (make_subdirs(w, path, err, errlen))
			return -1;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	} else {
		path_dirname(final_path, dir, sizeof dir);
		if (publish_temp_prefix(path, sizeof path - 8, dir, base_name(final_path),
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

/* ---- writer_new: the path rules ------------------------------------------- */

/* " (HINT)" appended to a message about an output that exists. */
static void add_hint(const Writer *w, char *err, size_t errlen)
{
	size_t n = strlen(err);
	if (w->opt.replace_hint && n < errlen)
		snprintf(err + n, errlen - n, " (%s)", w->opt.replace_hint);
}

/* Every file the run reads: the checkpoint's files, the files copied
 * beside them, a single safetensors file's config.json (read even when it
 * is not copied), and the caller's (the --undo sidecar). */
static int collect_inputs(Writer *w, const char *in_path, char *err, size_t errlen)
{
	int rc = 0;
	for (size_t i = 0; i < w->nfiles && !rc; i++)
		rc = fileset_add(&w->inputs, w->files[i].in_path);
	for (size_t i = 0; i < w->naux && !rc; i++)
		rc = fileset_add(&w->inputs, w->aux[i].src);
	if (!w->folder && !rc) {
		char din[PATH_MAX], cfg[PATH_MAX + 16];
		path_dirname(in_path, din, sizeof din);
		snprintf(cfg, sizeof cfg, "%s/config.json", din);
		rc = fileset_add(&w->inputs, cfg);
	}
	if (w->opt.also_read && !rc)
		rc = fileset_add(&w->inputs, w->opt.also_read);
	if (rc)
		snprintf(err, errlen, "%s: out of memory", w->out);
	return rc;
}

/* An output path that is one of the files the run reads. */
static int refuse_input(const Writer *w, const char *out, const char *what, char *err,
			size_t errlen)
{
	const char *in = fileset_which(&w->inputs, out);
	if (!in)
		return 0;
	if (!strcmp(in, out))
		snprintf(err, errlen, "%s: %sis a file this run reads; refusing to replace it", out,
			 what);
	else
		snprintf(err, errlen, "%s: %sis %s (the same file), which this run reads; refusing "
			 "to replace it", out, what, in);
	return -1;
}

/* No output replaces a file the run reads, by any path: OUT itself, a
 * folder OUT holding one, the sidecar beside OUT, an aux file beside OUT
 * (other than its own source, which is then not copied). */
static int check_outputs(const Writer *w, char *err, size_t errlen)
{
	const char *held = fileset_inside(&w->inputs, w->out);
	if (held) {
		snprintf(err, errlen, "%s: holds %s, which this run reads; refusing to replace it",
			 w->out, held);
		return -1;
	}
	if (refuse_input(w, w->out, "", err, errlen))
		return -1;
	if (w->folder)
		return 0;  /* every other output lies inside OUT */
	if (w->opt.sidecar && refuse_input(w, w->sidecar, "the sidecar's path, ", err, errlen))
		return -1;
	for (size_t i = 0; i < w->naux; i++)
		if (refuse_input(w, w->aux[i].final_path, "", err, errlen))
			return -1;
	return 0;
}

static bool exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

/* A folder holding only regular files and folders, at most depth deep. */
static bool plain_tree(const char *dir, int depth)
{
	DIR *d = depth > 0 ? opendir(dir) : NULL;
	bool ok = d != NULL;
	struct dirent *e;
	while (d && ok && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[2 * PATH_MAX];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		struct stat st;
		ok = lstat(p, &st) == 0 &&
		     (S_ISREG(st.st_mode) || (S_ISDIR(st.st_mode) && plain_tree(p, depth - 1)));
	}
	if (d)
		closedir(d);
	return ok;
}

/* Folder mode: name is the first folder of some shard's output path (an
 * earlier fold of the same checkpoint wrote it). */
static bool is_shard_folder(const Writer *w, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < w->nfiles; i++) {
		const char *rel = out_rel(w, w->files[i].final_path);
		if (!strncmp(rel, name, n) && rel[n] == '/')
			return true;
	}
	return false;
}

/* --force replaces a file with a file, and a checkpoint folder (config.json,
 * files, and the subfolders this checkpoint's shards go to, holding files
 * only) with a folder; anything else is refused. */
static int check_replaceable(const Writer *w, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(w->out, &st) != 0)
		return 0;
	if (!w->folder) {
		if (S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s: is a folder; the output of a single-file "
				 "checkpoint is a file", w->out);
			return -1;
		}
		return 0;
	}
	char cfg[PATH_MAX + 16];
	snprintf(cfg, sizeof cfg, "%s/config.json", w->out);
	bool ok = S_ISDIR(st.st_mode) && exists(cfg);
	DIR *d = ok ? opendir(w->out) : NULL;
	struct dirent *e;
	while (d && ok && (e = readdir(d))) {
		char p[2 * PATH_MAX];
		snprintf(p, sizeof p, "%s/%s", w->out, e->d_name);
		struct stat s2;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		ok = lstat(p, &s2) == 0 &&
		     (S_ISREG(s2.st_mode) || (S_ISDIR(s2.st_mode) && is_shard_folder(w, e->d_name) &&
					      plain_tree(p, 16)));
	}
	if (d)
		closedir(d);
	if (!ok) {
		snprintf(err, errlen, "%s: exists and is not a checkpoint folder (config.json "
			 "and files only); refusing to replace it", w->out);
		return -1;
	}
	return 0;
}

/* Folder mode: where the input file `file` goes, relative to OUT: its
 * path inside the input folder ("sub/a.safetensors" for a shard the index
 * puts in a subfolder), with empty and "." components dropped. A path
 * outside the input folder or with a ".." component is refused, so that
 * nothing is ever written outside OUT. */
static int shard_rel(const Writer *w, const char *file, char *rel, size_t len, char *err,
		     size_t errlen)
{
	const char *r = NULL;
	size_t n = strlen(w->in_dir);
	if (n && !strncmp(file, w->in_dir, n) && (file[n] == '/' || w->in_dir[n - 1] == '/'))
		r = file + n;
	char real[PATH_MAX];
	if (!r && realpath(w->in_dir, real)) {
		n = strlen(real);
		if (n && !strncmp(file, real, n) && (file[n] == '/' || real[n - 1] == '/'))
			r = file + n;
	}
	if (!r) {
		snprintf(err, errlen, "%s: is not inside the input folder %s", file, w->in_dir);
		return -1;
	}
	size_t k = 0;
	rel[0] = '\0';
	while (*r) {
		while (*r == '/')
			r++;
		size_t c = strcspn(r, "/");
		if (c == 0 || (c == 1 && r[0] == '.')) {
			r += c;
			continue;
		}
		if (c == 2 && r[0] == '.' && r[1] == '.') {
			snprintf(err, errlen, "%s: refusing a shard path with '..'", file);
			return -1;
		}
		if (k + (k > 0) + c >= len) {
			snprintf(err, errlen, "%s: path too long", file);
			return -1;
		}
		if (k)
			rel[k++] = '/';
		memcpy(rel + k, r, c);
		k += c;
		rel[k] = '\0';
		r += c;
	}
	if (!k) {
		snprintf(err, errlen, "%s: not a file inside the input folder %s", file, w->in_dir);
		return -1;
	}
	return 0;
}

/* Folder mode: two input files that would land on one output path (the
 * index naming a shard twice as "a" and "./a"), or on the sidecar. */
static int check_distinct(const Writer *w, const WFile *f, char *err, size_t errlen)
{
	for (const WFile *g = w->files; g < f; g++) {
		if (!strcmp(g->final_path, f->final_path)) {
			snprintf(err, errlen, "%s and %s: the same output file %s", g->in_path,
				 f->in_path, f->final_path);
			return -1;
		}
	}
	if (!strcmp(f->final_path, w->sidecar)) {
		snprintf(err, errlen, "%s: its output %s is where the sidecar goes", f->in_path,
			 f->final_path);
		return -1;
	}
	return 0;
}

/* The input's files, each once, in the order of the tensor table. */
static int collect_files(Writer *w, char *err, size_t errlen)
{
	const TensorTable *tt = model_tensor_table(w->model);
	ModelFormat fmt = model_info(w->model)->format;
	w->files = calloc(tt->n ? tt->n : 1, sizeof *w->files);
	if (!w->files) {
		snprintf(err, errlen, "%s: out of memory", w->out);
		return -1;
	}
	for (size_t i = 0; i < tt->n; i++) {
		const char *f = tt->v[i].file;
		bool seen = false;
		for (size_t j = 0; j < w->nfiles && !seen; j++)
			seen = !strcmp(w->files[j].in_path, f);
		if (seen)
			continue;
		WFile *wf = &w->files[w->nfiles++];
		wf->in_path = f;
		wf->fd = -1;
		wf->format = fmt;
		char p[2 * PATH_MAX], rel[PATH_MAX];
		if (w->folder) {
			if (shard_rel(w, f, rel, sizeof rel, err, errlen))
				return -1;
			snprintf(p, sizeof p, "%s/%s", w->out, rel);
		} else {
			snprintf(p, sizeof p, "%s", w->out);
		}
		if (!(wf->final_path = strdup(p))) {
			snprintf(err, errlen, "%s: out of memory", w->out);
			return -1;
		}
		if (w->folder && check_distinct(w, wf, err, errlen))
			return -1;
	}
	if (!w->folder && w->nfiles != 1) {
		snprintf(err, errlen, "%s: %zu files: give the folder of a sharded checkpoint",
			 w->out, w->nfiles);
		return -1;
	}
	return 0;
}

static int add_aux(Writer *w, const char *src, const char *final_path, char *err,
		   size_t errlen)
{
	AuxFile *v = realloc(w->aux, (w->naux + 1) * sizeof *v);
	if (!v) {
		snprintf(err, errlen, "%s: out of memory", src);
		return -1;
	}
	w->aux = v;
	AuxFile *a = &w->aux[w->naux];
	memset(a, 0, sizeof *a);
	a->src = strdup(src);
	a->final_path = strdup(final_path);
	if (!a->src || !a->final_path) {
		free(a->src);
		free(a->final_path);
		snprintf(err, errlen, "%s: out of memory", src);
		return -1;
	}
	w->naux++;
	return 0;
}

/* Folder mode: every other regular file of the input folder is copied. */
static int collect_aux_folder(Writer *w, char *err, size_t errlen)
{
	DIR *d = opendir(w->in_dir);
	if (!d) {
		snprintf(err, errlen, "%s: %s", w->in_dir, strerror(errno));
		return -1;
	}
	struct dirent *e;
	int rc = 0;
	while (!rc && (e = readdir(d))) {
		char src[2 * PATH_MAX], dst[2 * PATH_MAX];
		snprintf(src, sizeof src, "%s/%s", w->in_dir, e->d_name);
		struct stat st;
		if (e->d_name[0] == '.' || stat(src, &st) || !S_ISREG(st.st_mode) ||
		    !strcmp(e->d_name, "fold.json"))
			continue;
		bool rewritten = false;
		for (size_t i = 0; i < w->nfiles && !rewritten; i++)
			rewritten = !strcmp(out_rel(w, w->files[i].final_path), e->d_name);
		if (rewritten)
			continue;
		snprintf(dst, sizeof dst, "%s/%s", w->out, e->d_name);
		rc = add_aux(w, src, dst, err, errlen);
	}
	closedir(d);
	return rc;
}

/* A single safetensors file: its config.json goes beside OUT. */
static int collect_aux_config(Writer *w, const char *in_path, char *err, size_t errlen)
{
	char din[PATH_MAX], dout[PATH_MAX], src[PATH_MAX + 16], dst[PATH_MAX + 16];
	path_dirname(in_path, din, sizeof din);
	path_dirname(w->out, dout, sizeof dout);
	snprintf(src, sizeof src, "%s/config.json", din);
	snprintf(dst, sizeof dst, "%s/config.json", dout);
	struct stat a, b;
	if (stat(src, &a) != 0)
		return 0;
	if (stat(dst, &b) == 0) {
		/* Only a regular file is compared: opening a FIFO would block. */
		if (same_inode(&a, &b) || (S_ISREG(b.st_mode) && files_equal(src, dst)))
			return 0;
		w->config_differs = true;  /* refused below unless force */
	}
	return add_aux(w, src, dst, err, errlen);
}

/* An output that exists, refused unless force (OUT, its sidecar, the
 * config.json beside it). */
static int check_existing(Writer *w, char *err, size_t errlen)
{
	bool force = w->force;
	if (!force && exists(w->out)) {
		snprintf(err, errlen, "%s: exists", w->out);
		add_hint(w, err, errlen);
		return -1;
	}
	if (exists(w->out) && check_replaceable(w, err, errlen))
		return -1;
	if (!force && !w->folder && exists(w->sidecar)) {
		snprintf(err, errlen, "%s: exists", w->sidecar);
		add_hint(w, err, errlen);
		return -1;
	}
	if (!force && w->config_differs) {
		const AuxFile *a = &w->aux[w->naux - 1];
		snprintf(err, errlen, "%s: exists and differs from %s", a->final_path, a->src);
		add_hint(w, err, errlen);
		return -1;
	}
	return 0;
}

/* OUT as given: a trailing slash (or a last component "." or "..") names a
 * folder, which the output of a single-file checkpoint cannot be (cp
 * refuses to create a file "newdir/" too). */
static int set_out(Writer *w, const char *out_path, char *err, size_t errlen)
{
	if (!out_path[0] || strlen(out_path) >= sizeof w->out - 16) {
		snprintf(err, errlen, "--out: empty or too long path");
		return -1;
	}
	snprintf(w->out, sizeof w->out, "%s", out_path);
	const char *last = base_name(out_path);
	if (!w->folder && (!last[0] || !strcmp(last, ".") || !strcmp(last, ".."))) {
		snprintf(err, errlen, "%s: %s names a folder; the output of a single-file "
			 "checkpoint is a file (give its name)", out_path,
			 last[0] ? "a last component . or .." : "a trailing slash");
		return -1;
	}
	strip_slashes(w->out);
	return 0;
}

int writer_new(const Model *m, const char *in_path, const char *out_path,
	       const WriterOptions *o, Writer **out, char *err, size_t errlen)
{
	*out = NULL;
	Writer *w = calloc(1, sizeof *w);
	if (!w) {
		snprintf(err, errlen, "%s: out of memory", out_path);
		return -1;
	}
	w->model = m;
	w->opt = *o;
	w->force = o->force;
	struct stat st;
	if (stat(in_path, &st) == 0 && S_ISDIR(st.st_mode)) {
		w->folder = true;
		snprintf(w->in_dir, sizeof w->in_dir, "%s", in_path);
		strip_slashes(w->in_dir);
	} else if (strlen(in_path) > 5 && !strcmp(in_path + strlen(in_path) - 5, ".json")) {
		snprintf(err, errlen, "%s: give the checkpoint's folder rather than its index",
			 in_path);
		goto fail;
	}
	if (set_out(w, out_path, err, errlen))
		goto fail;
	if (w->folder)
		snprintf(w->sidecar, sizeof w->sidecar, "%s/fold.json", w->out);
	else
		snprintf(w->sidecar, sizeof w->sidecar, "%s.fold.json", w->out);
	if (collect_files(w, err, errlen) ||
	    (w->folder ? collect_aux_folder(w, err, errlen)
	     : (model_info(m)->format == MODEL_FMT_SAFETENSORS &&
		collect_aux_config(w, in_path, err, errlen))) ||
	    collect_inputs(w, in_path, err, errlen) || check_outputs(w, err, errlen) ||
	    check_existing(w, err, errlen))
		goto fail;
	for (size_t i = 0; i < w->nfiles; i++) {
		const TensorTable *tt = model_tensor_table(m);
		WFile *f = &w->files[i];
		for (size_t k = 0; k < tt->n; k++)
			f->nseg += !strcmp(tt->v[k].file, f->in_path);
		f->seg = calloc(f->nseg ? f->nseg : 1, sizeof *f->seg);
		if (!f->seg) {
			snprintf(err, errlen, "%s: out of memory", f->in_path);
			goto fail;
		}
		size_t n = 0;
		for (size_t k = 0; k < tt->n; k++) {
			const TensorRef *t = &tt->v[k];
			if (strcmp(t->file, f->in_path))
				continue;
			WSeg *s = &f->seg[n++];
			s->t = t;
			s->in_off = t->offset;
			s->in_end = t->offset + t->nbytes;
			s->out_len = t->nbytes;
			s->out_dtype = t->dtype;
		}
	}
	*out = w;
	return 0;
fail:
	writer_free(w);
	return -1;
}

const char *writer_sidecar_path(const Writer *w)
{
	return w->sidecar;
}

static WSeg *find_seg(Writer *w, const TensorRef *t, WFile **file)
{
	for (size_t i = 0; i < w->nfiles; i++) {
		for (size_t k = 0; k < w->files[i].nseg; k++) {
			if (w->files[i].seg[k].t == t) {
				if (file)
					*file = &w->files[i];
				return &w->files[i].seg[k];
			}
		}
	}
	return NULL;
}

int writer_replace(Writer *w, const TensorRef *t, StoreDtype dtype, char *err,
		   size_t errlen)
{
	WSeg *s = find_seg(w, t, NULL);
	if (!s || w->started) {
		snprintf(err, errlen, "%s: tensor %s: not part of this checkpoint", w->out,
			 t->name);
		return -1;
	}
	if (!dtype_is_float(dtype)) {
		char floats[64];
		dtype_list(floats, sizeof floats, true);
		snprintf(err, errlen, "%s: tensor %s: cannot store dtype %s (%s)", t->file, t->name,
			 t->dtype_name, floats);
		return -1;
	}
	if (w->files[0].format == MODEL_FMT_LLAMA2C && dtype != STORE_F32) {
		snprintf(err, errlen, "%s: tensor %s: llama2.c files hold only F32", t->file,
			 t->name);
		return -1;
	}
	s->replace = true;
	s->out_dtype = dtype;
	if (!dtype_bytes(dtype, t->nelem, &s->out_len)) {
		snprintf(err, errlen, "%s: tensor %s: too large", t->file, t->name);
		return -1;
	}
	return 0;
}

/* ---- writer_start: layout and copy ---------------------------------------- */

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

/* Copy the input to the output, leaving room for the replaced tensors. */
static int copy_resized(WFile *f, int in_fd, unsigned char *buf, char *err, size_t errlen)
{
	if (write_all(f->fd, f->header, f->data_out, 0, f->tmp_path, err, errlen))
		return -1;
	size_t in = f->data_in, out = f->data_out;
	for (size_t i = 0; i < f->nseg; i++) {
		WSeg *s = &f->seg[i];
		if (copy_range(in_fd, f->in_path, in, s->in_off, f->fd, f->tmp_path, out, buf, err,
			       errlen))
			return -1;
		out = s->out_off;
		if (s->out_len == s->in_end - s->in_off) {
			in = s->in_off;
			continue;
		}
		/* Replaced and resized: leave room (filled by writer_put). */
		in = i + 1 < f->nseg ? f->seg[i + 1].in_off
				     : f->data_in + align_up(s->in_end - f->data_in, f->align);
		if (in > f->in.n)
			in = f->in.n;
		out = f->data_out + align_up(s->out_off - f->data_out + s->out_len, f->align);
	}
	if (copy_range(in_fd, f->in_path, in, f->in.n, f->fd, f->tmp_path, out, buf, err,
		       errlen))
		return -1;
	size_t end = out + (f->in.n - in);
	if (ftruncate(f->fd, (off_t)end)) {
		snprintf(err, errlen, "%s: %s", f->tmp_path, strerror(errno));
		return -1;
	}
	return 0;
}

static int start_file(Writer *w, WFile *f, unsigned char *buf, char *err, size_t errlen)
{
	if (infile_open(&f->in, f->in_path, err, errlen))
		return -1;
	qsort(f->seg, f->nseg, sizeof *f->seg, cmp_seg);
	for (size_t i = 0; i < f->nseg; i++)
		if (f->seg[i].out_len != f->seg[i].in_end - f->seg[i].in_off)
			f->resized = true;
	if (check_overlaps(f, err, errlen))
		return -1;
	if (f->resized) {
		int rc = f->format == MODEL_FMT_GGUF ? gguf_write_prepare(f, err, errlen)
						     : st_write_prepare(f, err, errlen);
		if (rc || check_overlaps(f, err, errlen))
			return -1;
		layout_relative(f);
		rc = f->format == MODEL_FMT_GGUF ? gguf_write_header(f, err, errlen)
						 : st_write_header(f, err, errlen);
		if (rc)
			return -1;
		for (size_t i = 0; i < f->nseg; i++)
			f->seg[i].out_off += f->data_out;
	} else {
		for (size_t i = 0; i < f->nseg; i++)
			f->seg[i].out_off = f->seg[i].in_off;
	}
	f->fd = make_temp(w, f->final_path, &f->tmp_path, err, errlen);
	if (f->fd < 0)
		return -1;
	int in_fd = open_input(f->in_path, err, errlen);
	if (in_fd < 0)
		return -1;
	int rc = f->resized ? copy_resized(f, in_fd, buf, err, errlen)
			    : copy_range(in_fd, f->in_path, 0, f->in.n, f->fd, f->tmp_path, 0,
					 buf, err, errlen);
	close(in_fd);
	/* The header is no longer needed; the open input is (checks only). */
	return rc;
}

/* The temporaries of earlier runs to OUT that died (SIGKILL, a crash, a
 * power cut): of OUT itself, and of a single file's sidecar and aux files
 * (in folder mode those lie inside OUT's temporary folder). */
static void remove_stale(Writer *w)
{
	char dir[PATH_MAX];
	time_t now = time(NULL);
	path_dirname(w->out, dir, sizeof dir);
	w->stale_removed += publish_remove_stale(dir, base_name(w->out), now,
						 WRITER_STALE_SECONDS);
	if (w->folder)
		return;
	w->stale_removed += publish_remove_stale(dir, base_name(w->sidecar), now,
						 WRITER_STALE_SECONDS);
	for (size_t i = 0; i < w->naux; i++) {
		path_dirname(w->aux[i].final_path, dir, sizeof dir);
		w->stale_removed += publish_remove_stale(dir, base_name(w->aux[i].final_path), now,
							 WRITER_STALE_SECONDS);
	}
}

size_t writer_stale_removed(const Writer *w)
{
	return w->stale_removed;
}

int writer_start(Writer *w, char *err, size_t errlen)
{
	if (w->started) {
		snprintf(err, errlen, "%s: already started", w->out);
		return -1;
	}
	w->started = true;
	remove_stale(w);
	w->next = live_writers;
	live_writers = w;
	if (w->folder) {
		char dir[PATH_MAX];
		path_dirname(w->out, dir, sizeof dir);
		int bad = publish_temp_prefix(w->tmp_dir, sizeof w->tmp_dir - 8, dir,
					      base_name(w->out), (long)getpid());
		if (!bad)
			strcat(w->tmp_dir, "XXXXXX");
		if (bad || !mkdtemp(w->tmp_dir)) {
			snprintf(err, errlen, "%s: cannot create a temporary folder in %s: %s",
				 w->out, dir, strerror(errno));
			w->tmp_dir[0] = '\0';
			return -1;
		}
		chmod(w->tmp_dir, 0755);
		/* At most one subfolder per '/' of the shards' relative paths. */
		for (size_t i = 0; i < w->nfiles; i++)
			for (const char *c = out_rel(w, w->files[i].final_path); *c; c++)
				w->cap_subdirs += *c == '/';
		w->subdirs = calloc(w->cap_subdirs ? w->cap_subdirs : 1, sizeof *w->subdirs);
		if (!w->subdirs) {
			w->cap_subdirs = 0;
			snprintf(err, errlen, "%s: out of memory", w->out);
			return -1;
		}
	}
	unsigned char *buf = malloc(COPY_CHUNK);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", w->out);
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < w->nfiles && !rc; i++)
		rc = start_file(w, &w->files[i], buf, err, errlen);
	for (size_t i = 0; i < w->naux && !rc; i++) {
		AuxFile *a = &w->aux[i];
		int fd = make_temp(w, a->final_path, &a->tmp_path, err, errlen);
		if (fd < 0) {
			rc = -1;
			break;
		}
		struct stat st;
		a->ino = fstat(fd, &st) == 0 ? st.st_ino : 0;
		rc = copy_file(a->src, fd, a->tmp_path, err, errlen);
		if (!rc && fsync(fd)) {
			snprintf(err, errlen, "%s: fsync: %s", a->tmp_path, strerror(errno));
			rc = -1;
		}
		close(fd);
	}
	free(buf);
	return rc;
}

/* ---- writer_put ------------------------------------------------------------- */

int writer_put(Writer *w, const TensorRef *t, const double *values, WriterRounding *r,
	       char *err, size_t errlen)
{
	WFile *f = NULL;
	WSeg *s = find_seg(w, t, &f);
	if (!s || !s->replace || f->fd < 0) {
		snprintf(err, errlen, "%s: tensor %s: not marked for replacement", w->out,
			 t->name);
		return -1;
	}
	size_t n = t->nelem;
	double *v = malloc((n ? n : 1) * sizeof(double));
	unsigned char *b = malloc(s->out_len ? s->out_len : 1);
	if (!v || !b) {
		free(v);
		free(b);
		snprintf(err, errlen, "%s: tensor %s: out of memory", w->out, t->name);
		return -1;
	}
	memcpy(v, values, n * sizeof(double));
	dtype_round(s->out_dtype, v, n);
	WriterRounding rr = {0, 0, 0};
	for (size_t i = 0; i < n; i++) {
		double e = fabs(v[i] - values[i]), a = fabs(values[i]);
		if (!(e <= rr.max_abs_err))
			rr.max_abs_err = e;
		if (a > rr.max_abs)
			rr.max_abs = a;
	}
	encode(s->out_dtype, v, n, b);
	rr.checksum = checksum_bytes(b, s->out_len);
	int rc = write_all(f->fd, b, s->out_len, s->out_off, f->tmp_path, err, errlen);
	free(v);
	free(b);
	if (!rc && r)
		*r = rr;
	if (!rc && !isfinite(rr.max_abs_err)) {
		snprintf(err, errlen, "%s: tensor %s: a rotated value overflows %s", w->out,
			 t->name, dtype_name(s->out_dtype));
		return -1;
	}
	return rc;
}

/* ---- commit and cleanup ---------------------------------------------------- */

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

static int write_sidecar(Writer *w, const char *text, char *err, size_t errlen)
{
	char *tmp = NULL;
	int fd = make_temp(w, w->sidecar, &tmp, err, errlen);
	if (fd < 0)
		return -1;
	snprintf(w->sidecar_tmp, sizeof w->sidecar_tmp, "%s", tmp);
	free(tmp);
	struct stat st;
	w->sidecar_ino = fstat(fd, &st) == 0 ? st.st_ino : 0;
	int rc = write_all(fd, text, strlen(text), 0, w->sidecar_tmp, err, errlen);
	if (!rc && fsync(fd)) {
		snprintf(err, errlen, "%s: fsync: %s", w->sidecar_tmp, strerror(errno));
		rc = -1;
	}
	close(fd);
	return rc;
}

/* The message for an output that could not be put in place. */
static void publish_error(const Writer *w, const char *final_path, int e, char *err,
			  size_t errlen)
{
	if (e == EEXIST || e == ENOTEMPTY) {
		snprintf(err, errlen, "%s: was created meanwhile (by another run?); not replaced",
			 final_path);
		add_hint(w, err, errlen);
	} else {
		snprintf(err, errlen, "%s: cannot rename into place: %s", final_path, strerror(e));
	}
}

/* Swap the old OUT folder out of the way, put the new one in its place,
 * remove the old (force only). */
static int replace_folder(Writer *w, const char *parent, char *err, size_t errlen)
{
	char old[PATH_MAX + 32];
	int k = snprintf(old, sizeof old, "%s/.%s.old-XXXXXX", parent, base_name(w->out));
	if (k < 0 || (size_t)k >= sizeof old || !mkdtemp(old) || rmdir(old) ||
	    rename(w->out, old)) {
		snprintf(err, errlen, "%s: cannot replace: %s", w->out, strerror(errno));
		return -1;
	}
	if (rename(w->tmp_dir, w->out)) {
		/* Put the old OUT back: nothing changed. */
		int e = errno;
		rename(old, w->out);
		snprintf(err, errlen, "%s: cannot replace: %s", w->out, strerror(e));
		return -1;
	}
	w->tmp_dir[0] = '\0';
	struct stat st;
	if (lstat(old, &st) == 0 && S_ISDIR(st.st_mode))
		publish_remove_tree(old);
	else
		unlink(old);
	return 0;
}

static int commit_folder(Writer *w, char *err, size_t errlen)
{
	char parent[PATH_MAX];
	path_dirname(w->out, parent, sizeof parent);
	for (size_t i = 0; i < w->nsubdirs; i++) {
		if (fsync_dir(w->subdirs[i])) {
			snprintf(err, errlen, "%s: fsync: %s", w->subdirs[i], strerror(errno));
			return -1;
		}
	}
	if (fsync_dir(w->tmp_dir)) {
		snprintf(err, errlen, "%s: fsync: %s", w->tmp_dir, strerror(errno));
		return -1;
	}
	if (publish_rename(w->tmp_dir, w->out, false, true) == 0) {
		w->tmp_dir[0] = '\0';
	} else if (w->force && (errno == ENOTEMPTY || errno == EEXIST || errno == EISDIR ||
				errno == ENOTDIR)) {
		if (replace_folder(w, parent, err, errlen))
			return -1;
	} else {
		publish_error(w, w->out, errno, err, errlen);
		return -1;
	}
	fsync_dir(parent);
	return 0;
}

/* Put a temporary file in place as final_path. Without force nothing
 * there is replaced, not even a file another run made after writer_new
 * looked. Under force an existing folder there is removed first.
 * *created says that final_path did not exist before. */
static int publish_file(const Writer *w, const char *tmp, const char *final_path,
			bool *created, char *err, size_t errlen)
{
	struct stat st;
	bool existed = lstat(final_path, &st) == 0;
	if (w->force && existed && S_ISDIR(st.st_mode))
		publish_remove_tree(final_path);
	if (publish_rename(tmp, final_path, w->force, false) != 0) {
		publish_error(w, final_path, errno, err, errlen);
		return -1;
	}
	*created = !existed || !w->force;
	return 0;
}

/* An aux file (config.json beside OUT) in place. Another run that put the
 * same bytes there meanwhile is fine: this run's copy is dropped. */
static int publish_aux(Writer *w, AuxFile *a, char *err, size_t errlen)
{
	bool created;
	if (publish_file(w, a->tmp_path, a->final_path, &created, err, errlen)) {
		if (w->force || !files_equal(a->tmp_path, a->final_path))
			return -1;
		unlink(a->tmp_path);
		created = false;
	}
	a->published = created;
	free(a->tmp_path);
	a->tmp_path = NULL;
	return 0;
}

/* Take back what this commit published when a later step fails: the
 * sidecar (it must not describe a file it is not about) and the aux files
 * it created, each only while it is still the file this run wrote.
 * Async-signal-safe (lstat, unlink). */
static void unpublish(Writer *w)
{
	struct stat st;
	for (size_t i = 0; i < w->naux; i++) {
		AuxFile *a = &w->aux[i];
		if (a->published && lstat(a->final_path, &st) == 0 && st.st_ino == a->ino)
			unlink(a->final_path);
		a->published = false;
	}
	if (w->sidecar_published && lstat(w->sidecar, &st) == 0 && st.st_ino == w->sidecar_ino)
		unlink(w->sidecar);
	w->sidecar_published = false;
}

/* Single file: the sidecar first (of two runs to one OUT, the one whose
 * sidecar lands first goes on), then the aux files, then OUT: an OUT that
 * exists is complete. */
static int commit_file(Writer *w, bool sidecar, char *err, size_t errlen)
{
	bool created;
	if (sidecar) {
		if (publish_file(w, w->sidecar_tmp, w->sidecar, &created, err, errlen))
			return -1;
		w->sidecar_tmp[0] = '\0';
		w->sidecar_published = true;
	}
	for (size_t i = 0; i < w->naux; i++) {
		if (publish_aux(w, &w->aux[i], err, errlen)) {
			unpublish(w);
			return -1;
		}
	}
	WFile *f = &w->files[0];
	if (publish_file(w, f->tmp_path, f->final_path, &created, err, errlen)) {
		unpublish(w);
		return -1;
	}
	free(f->tmp_path);
	f->tmp_path = NULL;
	char dir[PATH_MAX];
	path_dirname(w->out, dir, sizeof dir);
	fsync_dir(dir);
	return 0;
}

int writer_commit(Writer *w, const char *sidecar, char *err, size_t errlen)
{
	if (!w->started) {
		snprintf(err, errlen, "%s: not started", w->out);
		return -1;
	}
	for (size_t i = 0; i < w->nfiles; i++) {
		WFile *f = &w->files[i];
		if (fsync(f->fd)) {
			snprintf(err, errlen, "%s: fsync: %s", f->tmp_path, strerror(errno));
			return -1;
		}
		close(f->fd);
		f->fd = -1;
	}
	if (sidecar && write_sidecar(w, sidecar, err, errlen))
		return -1;
	if (w->opt.before_publish && w->opt.before_publish(w->opt.hook_ctx, err, errlen))
		return -1;
	int rc = w->folder ? commit_folder(w, err, errlen)
			   : commit_file(w, sidecar != NULL, err, errlen);
	if (!rc) {
		w->committed = true;
		for (size_t i = 0; i < w->naux; i++)
			w->aux[i].published = false;
		w->sidecar_published = false;
	}
	return rc;
}

static void remove_temps(Writer *w)
{
	for (size_t i = 0; i < w->nfiles; i++)
		if (w->files[i].tmp_path)
			unlink(w->files[i].tmp_path);
	for (size_t i = 0; i < w->naux; i++)
		if (w->aux[i].tmp_path)
			unlink(w->aux[i].tmp_path);
	if (w->sidecar_tmp[0])
		unlink(w->sidecar_tmp);
	if (w->tmp_dir[0]) {
		/* Children were made after their parents. */
		for (size_t i = w->nsubdirs; i-- > 0;)
			rmdir(w->subdirs[i]);
		rmdir(w->tmp_dir);
	}
}

void writer_cleanup_signal(void)
{
	for (Writer *w = live_writers; w; w = w->next) {
		if (!w->committed) {
			remove_temps(w);
			unpublish(w);
		}
	}
}

void writer_free(Writer *w)
{
	if (!w)
		return;
	for (Writer **p = &live_writers; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	for (size_t i = 0; i < w->nfiles; i++) {
		WFile *f = &w->files[i];
		if (f->fd >= 0)
			close(f->fd);
	}
	if (!w->committed)
		remove_temps(w);
	for (size_t i = 0; i < w->nfiles; i++) {
		WFile *f = &w->files[i];
		free(f->final_path);
		free(f->tmp_path);
		free(f->header);
		free(f->seg);
		if (f->in.path)
			infile_close(&f->in);
	}
	for (size_t i = 0; i < w->naux; i++) {
		free(w->aux[i].src);
		free(w->aux[i].final_path);
		free(w->aux[i].tmp_path);
	}
	for (size_t i = 0; i < w->nsubdirs; i++)
		free(w->subdirs[i]);
	free(w->subdirs);
	free(w->aux);
	free(w->files);
	fileset_free(&w->inputs);
	free(w);
}
