#include "config.h"

#include <errno.h>
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

/* Publishing: the sidecar, fsync, every output renamed into place without
 * replacing what another run made meanwhile (unless forced), and taking
 * back what this commit published when a later step fails. */

static int write_sidecar(Writer *w, const char *text, char *err, size_t errlen)
{
	char *tmp = NULL;
	int fd = writer_make_temp(w, w->sidecar, &tmp, err, errlen);
	if (fd < 0)
		return -1;
	snprintf(w->sidecar_tmp, sizeof w->sidecar_tmp, "%s", tmp);
	free(tmp);
	struct stat st;
	w->sidecar_ino = fstat(fd, &st) == 0 ? st.st_ino : 0;
	int rc = writer_write_all(fd, text, strlen(text), 0, w->sidecar_tmp, err, errlen);
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
		writer_add_hint(w, err, errlen);
	} else {
		snprintf(err, errlen, "%s: cannot rename into place: %s", final_path, strerror(e));
	}
}

/* Swap the old OUT folder out of the way, put the new one in its place,
 * remove the old (force only). */
static int replace_folder(Writer *w, const char *parent, char *err, size_t errlen)
{
	char old[PATH_MAX + 32];
	int k = snprintf(old, sizeof old, "%s/.%s.old-XXXXXX", parent, writer_base_name(w->out));
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
		if (writer_fsync_dir(w->subdirs[i])) {
			snprintf(err, errlen, "%s: fsync: %s", w->subdirs[i], strerror(errno));
			return -1;
		}
	}
	if (writer_fsync_dir(w->tmp_dir)) {
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
	writer_fsync_dir(parent);
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
		if (w->force || !writer_files_equal(a->tmp_path, a->final_path))
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
void writer_unpublish(Writer *w)
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
			writer_unpublish(w);
			return -1;
		}
	}
	WFile *f = &w->files[0];
	if (publish_file(w, f->tmp_path, f->final_path, &created, err, errlen)) {
		writer_unpublish(w);
		return -1;
	}
	free(f->tmp_path);
	f->tmp_path = NULL;
	char dir[PATH_MAX];
	path_dirname(w->out, dir, sizeof dir);
	writer_fsync_dir(dir);
	return 0;
}

int writer_commit(Writer *w, const char *sidecar, char *err, size_t errlen)
{
	if (!w->started) {
		snprintf(err, errlen, "%s: not started", w->out);
		return -1;
	}
	for (size_t i = 0; i < w->nfiles; i++)
		for (size_t k = 0; k < w->files[i].nseg; k++)
			if (w->files[i].seg[k].replace && !w->files[i].seg[k].written) {
				snprintf(err, errlen, "%s: tensor %s: marked for replacement but "
					 "never written", w->out, w->files[i].seg[k].t->name);
				return -1;
			}
	if (writer_async_wait(w, err, errlen) || writer_copy_wait(w, err, errlen))
		return -1;
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

void writer_remove_temps(Writer *w)
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
