#ifndef ROPEFOLD_TUI_SHARED_FINDINGS_RESIDUAL_H
#define ROPEFOLD_TUI_SHARED_FINDINGS_RESIDUAL_H

#include <stddef.h>

#include "core/verify_residual.h"

/* verify's residual-frame verdict in words (the companion of
 * findings_text.h): the relation in one sentence ("same model up to a
 * residual rotation R1 (Hadamard) with norms fused, per-group V/O
 * rotations and commuting Q/K rotations") and the first break. */

/* "" when no residual rotation was found and nothing broke. */
void findings_residual_relation(const VerifyResidual *r, char *buf, size_t len);
/* Where and why the residual frame breaks; "" when it does not. */
void findings_residual_why(const VerifyResidual *r, char *buf, size_t len);

#endif
