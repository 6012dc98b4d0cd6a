#include "config.h"

#include <math.h>
#include <stdio.h>

#include "tui/cli/verify_residual.h"
#include "tui/shared/findings_residual.h"

json_t *verify_residual_json(const VerifyResidual *r)
{
	if (!r->checked)
		return json_null();
	char rel[512], why[1024];
	findings_residual_relation(r, rel, sizeof rel);
	findings_residual_why(r, why, sizeof why);
	json_t *o = json_pack("{s:b, s:b, s:b, s:b, s:b, s:b, s:s, s:f, s:f}", "rotated",
			      r->active, "hadamard", r->active && r->hadamard, "norms_fused",
			      r->active && r->norms_fused, "vo_rotated", r->vo_rotated,
			      "qk_rotated", r->qk_rotated, "equivalent", r->equivalent,
			      "description", rel, "max_rel_err",
			      isfinite(r->max_err) ? r->max_err : -1.0, "tol", r->tol);
	if (r->brk.code == FIND_NONE) {
		json_object_set_new(o, "break", json_null());
		return o;
	}
	json_t *b = json_pack("{s:s, s:s, s:s}", "code", finding_code_name(r->brk.code),
			      "tensor", r->brk.tensor, "explanation", why);
	json_object_set_new(b, "layer", r->layer == VRES_MODEL
						? json_null()
						: json_integer((json_int_t)r->layer));
	if (r->brk.code == FIND_RES_ONLINE_R3 || r->brk.code == FIND_RES_ONLINE_R4)
		json_object_set_new(b, "hadamard", json_boolean(r->brk.flag));
	if (r->brk.code == FIND_RES_ONLINE_R3)
		json_object_set_new(b, "group", json_integer((json_int_t)r->brk.group));
	json_object_set_new(o, "break", b);
	return o;
}

void verify_residual_text(const VerifyResidual *r)
{
	if (!r->checked || (!r->active && r->brk.code == FIND_NONE))
		return;
	char buf[1024];
	if (r->brk.code == FIND_NONE) {
		findings_residual_relation(r, buf, sizeof buf);
		printf("residual frame: %s (max relative error %.3g, tolerance %.3g)\n", buf,
		       r->max_err, r->tol);
		return;
	}
	findings_residual_why(r, buf, sizeof buf);
	printf("residual frame: NOT equivalent: %s\n", buf);
}
