#ifndef ROPEFOLD_TUI_CLI_VERIFY_H
#define ROPEFOLD_TUI_CLI_VERIFY_H

#include <jansson.h>
#include <stddef.h>

#include "core/report.h"
#include "core/verify.h"

/* `ropefold verify A B [--layers all|N|N..M] [--json]`: is B an exact fold
 * of A, layer by layer? Returns the exit status: 0 equivalent in every
 * chosen layer, 1 not, 2 bad usage or input. */
int cli_verify(int argc, char **argv);

/* One layer's verdict as `verify --json` lists it (rep: the confirming
 * levels, or NULL); `check --against --json` carries it as its relation. */
json_t *verify_layer_json(size_t i, const VerifyVerdict *v, const InvReport *rep);

#endif
