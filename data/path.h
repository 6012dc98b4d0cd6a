#ifndef ROPEFOLD_DATA_PATH_H
#define ROPEFOLD_DATA_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* The folder part of a path: "." for a bare name, "/" for a root entry. */
void path_dirname(const char *path, char *dir, size_t len);

/* True when s ends with suffix. */
bool path_has_suffix(const char *s, const char *suffix);

#endif
