#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/mapfile.h"

int mapfile_open(MappedFile *f, const char *path, char *err, size_t errlen)
{
	memset(f, 0, sizeof *f);
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_size == 0) {
		snprintf(err, errlen, "%s: empty file", path);
		close(fd);
		return -1;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "%s: cannot map: %s", path, strerror(errno));
		return -1;
	}
	f->path = strdup(path);
	if (!f->path) {
		munmap(p, (size_t)st.st_size);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	f->p = p;
	f->n = (size_t)st.st_size;
	f->mapped = 1;
	return 0;
}

int mapfile_wrap(MappedFile *f, const char *name, const void *p, size_t n)
{
	memset(f, 0, sizeof *f);
	f->path = strdup(name);
	if (!f->path)
		return -1;
	f->p = p;
	f->n = n;
	return 0;
}

void mapfile_close(MappedFile *f)
{
	if (f->mapped && f->p)
		munmap((void *)f->p, f->n);
	free(f->path);
	memset(f, 0, sizeof *f);
}
