#ifndef ROPEFOLD_DATA_FILESET_H
#define ROPEFOLD_DATA_FILESET_H

#include <stddef.h>
#include <sys/types.h>

/* The files a run reads, known by device and inode, so that no output can
 * replace one of them by any path: a symlink, a hard link, "..", or just
 * another spelling of the same name. */

typedef struct {
	dev_t dev;
	ino_t ino;
	char *path;      /* as given (owned) */
} FileSetEntry;

typedef struct {
	FileSetEntry *v;
	size_t n;
} FileSet;

/* Add the file at path (following symlinks); a path that does not exist
 * is skipped, as there is nothing to protect. 0, or -1 out of memory. */
int fileset_add(FileSet *s, const char *path);
/* The path of the entry that path is (following symlinks), or NULL. */
const char *fileset_which(const FileSet *s, const char *path);
/* The path of an entry that lies inside the folder dir at any depth (by
 * its real path: symlinked folders resolved), or NULL; NULL too when dir
 * is not a folder. */
const char *fileset_inside(const FileSet *s, const char *dir);
/* Release. */
void fileset_free(FileSet *s);

#endif
