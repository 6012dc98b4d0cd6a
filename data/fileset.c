#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/fileset.h"

int fileset_add(FileSet *s, const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0 || fileset_which(s, path))
		return 0;
	FileSetEntry *v = realloc(s->v, (s->n + 1) * sizeof *v);
	if (!v)
		return -1;
	s->v = v;
	v[s->n].dev = st.st_dev;
	v[s->n].ino = st.st_ino;
	if (!(v[s->n].path = strdup(path)))
		return -1;
	s->n++;
	return 0;
}

const char *fileset_which(const FileSet *s, const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].dev == st.st_dev && s->v[i].ino == st.st_ino)
			return s->v[i].path;
	return NULL;
}

/* Some folder above the real path of p is the folder d. */
static bool below(const char *p, const struct stat *d)
{
	char real[PATH_MAX];
	if (!realpath(p, real))
		return false;
	for (char *slash; (slash = strrchr(real, '/'));) {
		if (slash == real)
			slash[1] = '\0';   /* the root */
		else
			*slash = '\0';
		struct stat st;
		if (stat(real, &st) == 0 && st.st_dev == d->st_dev && st.st_ino == d->st_ino)
			return true;
		if (slash == real)
			break;
	}
	return false;
}

const char *fileset_inside(const FileSet *s, const char *dir)
{
	struct stat d;
	if (stat(dir, &d) != 0 || !S_ISDIR(d.st_mode))
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (below(s->v[i].path, &d))
			return s->v[i].path;
	return NULL;
}

void fileset_free(FileSet *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].path);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}
