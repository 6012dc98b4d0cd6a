#ifndef ROPEFOLD_CORE_STATUS_H
#define ROPEFOLD_CORE_STATUS_H

/* Every fallible function in core/ returns one of these; none prints. */
typedef enum {
	RF_OK = 0,
	RF_ERR_ARG,     /* an argument is out of range or inconsistent */
	RF_ERR_NOMEM,   /* an allocation failed */
	RF_ERR_LAPACK,  /* a LAPACK routine reported failure */
	RF_ERR_NUMERIC, /* NaN or Inf where finite numbers are required */
	RF_ERR_SOURCE   /* a caller's source of weights failed (it says why) */
} RfStatus;

/* A short English phrase for a status. */
const char *rf_status_str(RfStatus st);

#endif
