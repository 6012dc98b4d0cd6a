#include "config.h"

#include <stdio.h>

#include "tui/shared/findings_residual.h"
#include "tui/shared/findings_text.h"

void findings_residual_relation(const VerifyResidual *r, char *buf, size_t len)
{
	buf[0] = '\0';
	if (!r->active)
		return;
	const char *kind = r->hadamard ? "a randomised Hadamard" : "not a Hadamard";
	if (!r->equivalent) {
		snprintf(buf, len, "a residual rotation R1 (%s) explains the embeddings, but "
			 "the rewrite breaks", kind);
		return;
	}
	const char *extra = r->vo_rotated && r->qk_rotated
				    ? ", per-group V/O rotations and commuting Q/K rotations"
			    : r->vo_rotated ? " and per-group V/O rotations"
			    : r->qk_rotated ? " and commuting Q/K rotations"
					    : "";
	snprintf(buf, len, "same model up to a residual rotation R1 (%s) with norms fused%s",
		 r->hadamard ? "Hadamard" : "orthogonal, not a Hadamard", extra);
}

static int where(const VerifyResidual *r, char *buf, size_t len)
{
	if (r->layer == VRES_MODEL)
		return snprintf(buf, len, "model level: ");
	return snprintf(buf, len, "layer %zu: ", r->layer);
}

void findings_residual_why(const VerifyResidual *r, char *buf, size_t len)
{
	const Finding *f = &r->brk;
	buf[0] = '\0';
	if (f->code == FIND_NONE || len == 0)
		return;
	int n = where(r, buf, len);
	if (n < 0 || (size_t)n >= len)
		return;
	buf += n;
	len -= (size_t)n;
	findings_residual_sentence(f, buf, len);
}
