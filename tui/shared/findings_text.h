#ifndef ROPEFOLD_TUI_SHARED_FINDINGS_TEXT_H
#define ROPEFOLD_TUI_SHARED_FINDINGS_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/finding.h"
#include "core/verify.h"

/* The one place where core's findings become English: check's explanation
 * and verify's relation and first break, for the CLI's table and JSON, the
 * explorer and the tests alike. Every function writes a NUL-terminated sentence into buf
 * (len bytes, truncated to fit); the sizes below hold the longest. */

#define FINDINGS_EXPLAIN_MAX 2048  /* findings_explain */
#define FINDINGS_RELATION_MAX 512  /* findings_verify_relation */
#define FINDINGS_WHY_MAX 1024      /* findings_verify_why */
#define FINDINGS_TOLERANCE_MAX 160 /* findings_verify_tolerance */

/* One finding of check's explanation as a sentence ("Scores break worst
 * at head 2, (m, n) = (29, 13), offset 16."). */
void findings_sentence(const Finding *f, char *buf, size_t len);

/* check's explanation: rep's findings in order, one space apart. */
void findings_explain(const InvReport *rep, char *buf, size_t len);

/* How B relates to A: "identical", "equal up to bf16 rounding",
 * "commuting fold with heads permuted as [1 0]", ..., "not equivalent". */
void findings_verify_relation(const VerifyVerdict *v, char *buf, size_t len);

/* The tolerance the weight checks were judged at: "tolerance 0.0117", or
 * "tolerance 1.79e-07 plus the quantization bound: W_q 0.14, W_k 0.073,
 * W_v 0.074, W_o 0.14" when a part's stored blocks widen it; verify's
 * layers and compare mode print it. */
void findings_verify_tolerance(const VerifyVerdict *v, char *buf, size_t len);

/* Where and why B first breaks (v->brk, with the verdict's shapes,
 * layouts, pair frequencies and mixed pairs); "" when it does not. */
void findings_verify_why(const VerifyVerdict *v, char *buf, size_t len);

/* A residual-frame break (FIND_RES_*, core/verify_residual.h) as a
 * sentence; false (buf untouched) for any other code. */
bool findings_residual_sentence(const Finding *f, char *buf, size_t len);

#endif
