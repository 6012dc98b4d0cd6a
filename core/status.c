#include "config.h"

#include "core/status.h"

const char *rf_status_str(RfStatus st)
{
	switch (st) {
	case RF_OK: return "ok";
	case RF_ERR_ARG: return "invalid argument";
	case RF_ERR_NOMEM: return "out of memory";
	case RF_ERR_LAPACK: return "LAPACK routine failed";
	case RF_ERR_NUMERIC: return "non-finite number";
	case RF_ERR_SOURCE: return "the weights could not be read";
	}
	return "unknown error";
}
