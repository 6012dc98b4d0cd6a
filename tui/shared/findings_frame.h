#ifndef ROPEFOLD_TUI_SHARED_FINDINGS_FRAME_H
#define ROPEFOLD_TUI_SHARED_FINDINGS_FRAME_H

#include <stddef.h>

#include "core/frame.h"

/* What core/frame found about R1 and R3 in words (the companion of
 * findings_text.h), for check's text and JSON and the explorer alike:
 * why fused R1 holds and unfused breaks (diag(w) does not commute with
 * R1, rms does), why R3 holds online and breaks folded (a Hadamard does
 * not commute with RoPE). */

/* Room the explanation needs. */
#define FINDINGS_FRAME_MAX 2048

/* The sentences of R1, then R3 ("" when both are none). */
void findings_frame_explain(const FrameReport *rep, char *buf, size_t len);
/* One of them alone. */
void findings_frame_r1(const FrameR1Result *r, char *buf, size_t len);
void findings_frame_r3(const FrameR3Result *r, double tol, char *buf, size_t len);

#endif
