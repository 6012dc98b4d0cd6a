#ifndef ROPEFOLD_DATA_JSONFILE_H
#define ROPEFOLD_DATA_JSONFILE_H

#include <jansson.h>
#include <stddef.h>

/* Size limits of the JSON files beside a checkpoint: far above real ones
 * (a config.json is a few KB, the index of a 600B-parameter model about
 * 10 MB, a sidecar of an 80-layer fold a few MB), far below what would
 * exhaust memory while parsing. */
#define JSONFILE_CONFIG_MAX ((size_t)16 << 20)
#define JSONFILE_INDEX_MAX ((size_t)256 << 20)
#define JSONFILE_SIDECAR_MAX ((size_t)1 << 30)

/* A JSON document from a path: a regular file only (infile_open_fd: a
 * FIFO, folder, device or symlink loop is refused saying what it is), at
 * most max bytes, parsed with the jansson flags. Returns 0 with *out (the
 * caller decrefs it), or -1 with one line in err: "PATH: cannot be read
 * ...", "PATH: line L, column C: not valid JSON: ...". */
int jsonfile_load(const char *path, size_t max, size_t flags, json_t **out, char *err,
		  size_t errlen);

#endif
