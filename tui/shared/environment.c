#include "config.h"

#include <stdlib.h>

#include "data/default_model.h"
#include "tui/shared/environment.h"
#include "tui/shared/testhook.h"

int env_default_model_path(char *buf, size_t len, char *err, size_t errlen)
{
	return default_model_path(getenv("ROPEFOLD_DATADIR"), buf, len, err, errlen);
}

int env_workload(const RunOptions *o, bool use_default, Workload *w, char *err,
		 size_t errlen)
{
	WorkloadSpec spec;
	char dpath[4096];
	opts_workload_spec(o, &spec);
	if (!o->model_path && use_default) {
		if (env_default_model_path(dpath, sizeof dpath, err, errlen))
			return -1;
		spec.model_path = dpath;
		spec.default_model = true;
	}
	spec.opened = testhook_open;
	return workload_build(&spec, w, err, errlen);
}
