#include "config.h"

#include <stdio.h>
#include <sys/stat.h>

#include "data/default_model.h"
#include "data/model.h"

#define DEFAULT_MODEL_DIR "default-model"

static int try_dir(const char *base, char *buf, size_t len)
{
	struct stat st;
	if (!base || !*base)
		return -1;
	snprintf(buf, len, "%s/%s/config.json", base, DEFAULT_MODEL_DIR);
	if (stat(buf, &st) != 0 || !S_ISREG(st.st_mode))
		return -1;
	snprintf(buf, len, "%s/%s", base, DEFAULT_MODEL_DIR);
	return 0;
}

int default_model_path(const char *datadir, char *buf, size_t len, char *err, size_t errlen)
{
	const char *env = datadir;
	if (!try_dir(env, buf, len) || !try_dir(PKGDATADIR, buf, len) ||
	    !try_dir(ABS_TOP_SRCDIR "/data", buf, len))
		return 0;
	snprintf(err, errlen, "the built-in default model (%s/) is missing: looked in "
		 "$ROPEFOLD_DATADIR%s%s, %s and %s/data (reinstall, or run 'make default-model')",
		 DEFAULT_MODEL_DIR, env ? "=" : "", env ? env : "", PKGDATADIR, ABS_TOP_SRCDIR);
	return -1;
}

int default_model_load(const char *datadir, Layer *l, char *err, size_t errlen)
{
	char path[4096];
	Model *m;
	if (default_model_path(datadir, path, sizeof path, err, errlen) ||
	    model_open(path, &m, err, errlen))
		return -1;
	int rc = model_load_layer(m, 0, l, err, errlen);
	model_close(m);
	return rc;
}
