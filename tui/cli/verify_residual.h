#ifndef ROPEFOLD_TUI_CLI_VERIFY_RESIDUAL_H
#define ROPEFOLD_TUI_CLI_VERIFY_RESIDUAL_H

#include <jansson.h>

#include "core/verify_residual.h"

/* verify's residual-frame verdict: the "residual" object of --json (null
 * when the checkpoints could not be compared on the stream) and its text
 * line (nothing when there is nothing to say). */
json_t *verify_residual_json(const VerifyResidual *r);
void verify_residual_text(const VerifyResidual *r);

#endif
