#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "data/infile.h"
#include "data/jsonfile.h"

int jsonfile_load(const char *path, size_t max, size_t flags, json_t **out, char *err,
		  size_t errlen)
{
	*out = NULL;
	char *text;
	size_t len;
	if (infile_slurp(path, max, &text, &len, err, errlen))
		return -1;
	json_error_t je;
	*out = json_loadb(text, len, flags, &je);
	free(text);
	if (!*out) {
		snprintf(err, errlen, "%s: line %d, column %d: not valid JSON: %s", path, je.line,
			 je.column, je.text);
		return -1;
	}
	return 0;
}
