#ifndef ROPEFOLD_DATA_MAPFILE_H
#define ROPEFOLD_DATA_MAPFILE_H

#include <stddef.h>

/* A whole file mapped read-only. Pages are read only when touched, so
 * mapping a 16 GB checkpoint costs nothing until a layer is loaded. */
typedef struct {
	char *path;                 /* owned */
	const unsigned char *p;     /* n bytes */
	size_t n;
	int mapped;                 /* 1: munmap on close, 0: borrowed memory */
} MappedFile;

/* Map path. Empty files and folders are refused with a message in err. */
int mapfile_open(MappedFile *f, const char *path, char *err, size_t errlen);
/* Wrap memory the caller keeps alive (fuzzing, tests); name is copied. */
int mapfile_wrap(MappedFile *f, const char *name, const void *p, size_t n);
/* Unmap and release. */
void mapfile_close(MappedFile *f);

#endif
