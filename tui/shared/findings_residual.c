#include "config.h"

#include <stdio.h>

#include "tui/shared/findings_residual.h"

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

static const char *norm_name(char part)
{
	return part == 'a' ? "the attention input norm"
	       : part == 'm' ? "the MLP input norm"
			     : "the final norm";
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
	switch (f->code) {
	case FIND_RES_EMBED_UNEXPLAINED:
		snprintf(buf, len, "the embeddings differ in a way no orthogonal rotation of the "
			 "residual stream explains (relative residual %.3g, tolerance %.3g)",
			 f->err, f->tol);
		break;
	case FIND_RES_NORM_NOT_FUSED:
		snprintf(buf, len, "norm weights not fused before R1: %s of B is not one "
			 "(max |w - 1| = %.3g), and a learned norm weight does not commute with a "
			 "rotation of the residual stream", norm_name(f->part), f->err);
		break;
	case FIND_RES_HEAD_TWICE:
		snprintf(buf, len, "the head is rotated twice (it carries R1^2, as when tied "
			 "embeddings are rotated once as embeddings and once as the head; "
			 "relative residual %.3g)", f->err);
		break;
	case FIND_RES_TIED_HEAD:
		snprintf(buf, len, "B ties the head to the rotated embeddings, so the final "
			 "norm's weight cannot be fused into the head (relative residual %.3g); "
			 "the head must be untied", f->err);
		break;
	case FIND_RES_READER:
		snprintf(buf, len, "%s reads the residual stream but R1 (with the norm "
			 "fused) does not explain it (relative residual %.3g, tolerance %.3g)",
			 f->tensor, f->err, f->tol);
		break;
	case FIND_RES_WRITER:
		snprintf(buf, len, "%s writes the residual stream but R1 does not explain it "
			 "(relative residual %.3g, tolerance %.3g)", f->tensor, f->err, f->tol);
		break;
	case FIND_RES_ONLINE_R4:
		snprintf(buf, len, "%s's input columns carry an extra orthogonal matrix (%s) "
			 "that no weight absorbs: an online R4 must run before it (relative "
			 "residual after it %.3g)", f->tensor,
			 f->flag ? "a Hadamard" : "not a Hadamard", f->err);
		break;
	case FIND_RES_ONLINE_R3:
		snprintf(buf, len, "Q/K of kv group %zu carry a rotation (%s) that does not "
			 "commute with RoPE: it needs an online R3 after RoPE, or it is a bug",
			 f->group, f->flag ? "a Hadamard" : "not a Hadamard");
		break;
	default:
		snprintf(buf, len, "%s", finding_code_name(f->code));
		break;
	}
}
