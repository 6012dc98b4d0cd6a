#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/fileset.h"
#include "data/model_tensors.h"
#include "data/path.h"
#include "data/writer.h"
#include "data/writer_impl.h"

/* writer_new's path rules: where every output goes, which files the run
 * reads, and which existing outputs may be replaced (data/writer.h). */

/* out without trailing slashes (a folder may be given as "out/"). */
static void strip_slashes(char *p)
{
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
}

/* " (HINT)" appended to a message about an output that exists. */
void writer_add_hint(const Writer *w, char *err, size_t errlen)
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
		const char *rel = writer_out_rel(w, w->files[i].final_path);
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
	bool ok = S_ISDIR(st.st_mode) && writer_exists(cfg);
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
			rewritten = !strcmp(writer_out_rel(w, w->files[i].final_path), e->d_name);
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
		if (writer_same_inode(&a, &b) || (S_ISREG(b.st_mode) && writer_files_equal(src, dst)))
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
	if (!force && writer_exists(w->out)) {
		snprintf(err, errlen, "%s: exists", w->out);
		writer_add_hint(w, err, errlen);
		return -1;
	}
	if (writer_exists(w->out) && check_replaceable(w, err, errlen))
		return -1;
	if (!force && !w->folder && writer_exists(w->sidecar)) {
		snprintf(err, errlen, "%s: exists", w->sidecar);
		writer_add_hint(w, err, errlen);
		return -1;
	}
	if (!force && w->config_differs) {
		const AuxFile *a = &w->aux[w->naux - 1];
		snprintf(err, errlen, "%s: exists and differs from %s", a->final_path, a->src);
		writer_add_hint(w, err, errlen);
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
	const char *last = writer_base_name(out_path);
	if (!w->folder && (!last[0] || !strcmp(last, ".") || !strcmp(last, ".."))) {
		snprintf(err, errlen, "%s: %s names a folder; the output of a single-file "
			 "checkpoint is a file (give its name)", out_path,
			 last[0] ? "a last component . or .." : "a trailing slash");
		return -1;
	}
	strip_slashes(w->out);
	return 0;
}

int writer_check_paths(Writer *w, const char *in_path, const char *out_path, char *err,
		       size_t errlen)
{
	struct stat st;
	if (stat(in_path, &st) == 0 && S_ISDIR(st.st_mode)) {
		w->folder = true;
		snprintf(w->in_dir, sizeof w->in_dir, "%s", in_path);
		strip_slashes(w->in_dir);
	} else if (strlen(in_path) > 5 && !strcmp(in_path + strlen(in_path) - 5, ".json")) {
		snprintf(err, errlen, "%s: give the checkpoint's folder rather than its index",
			 in_path);
		return -1;
	}
	if (set_out(w, out_path, err, errlen))
		return -1;
	if (w->folder)
		snprintf(w->sidecar, sizeof w->sidecar, "%s/fold.json", w->out);
	else
		snprintf(w->sidecar, sizeof w->sidecar, "%s.fold.json", w->out);
	if (collect_files(w, err, errlen) ||
	    (w->folder ? collect_aux_folder(w, err, errlen)
	     : (model_info(w->model)->format == MODEL_FMT_SAFETENSORS &&
		collect_aux_config(w, in_path, err, errlen))) ||
	    collect_inputs(w, in_path, err, errlen) || check_outputs(w, err, errlen) ||
	    check_existing(w, err, errlen))
		return -1;
	return 0;
}
