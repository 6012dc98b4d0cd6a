#include "config.h"

#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "core/finding.h"
#include "data/mla_model.h"
#include "data/mla_pair.h"
#include "data/model_tensors.h"

int mla_pair_options(Model *ma, Model *mb, size_t i, double tol, VerifyOptions *vo, char *err,
		     size_t errlen)
{
	double ua = dtype_unit_roundoff(model_info(ma)->dtype);
	double ub = dtype_unit_roundoff(model_info(mb)->dtype);
	memset(vo, 0, sizeof *vo);
	vo->unit_roundoff = ua > ub ? ua : ub;
	vo->tol = tol;
	vo->finite = true;
	for (int s = 0; s < 2; s++) {
		Model *m = s ? mb : ma;
		MlaLayerTensors lt;
		if (mla_layer_tensors(model_tensor_table(m), model_mla(m), i, &lt, err, errlen))
			return -1;
		vo->unit_roundoff = fmax(vo->unit_roundoff,
					 mla_rewritten_roundoff(&lt, &vo->quant_types));
	}
	return 0;
}

void mla_pair_shape_verdict(const ModelInfo *ia, const ModelInfo *ib, double tol,
			    VerifyVerdict *v, Layer *hdr)
{
	double ua = dtype_unit_roundoff(ia->dtype), ub = dtype_unit_roundoff(ib->dtype);
	memset(v, 0, sizeof *v);
	v->relation = VERIFY_REL_NONE;
	v->why = VERIFY_WHY_SHAPE;
	v->brk = finding_make(FIND_SHAPES_DIFFER);
	v->shape_a = ia->shape;
	v->shape_b = ib->shape;
	v->rope_a = ia->rope;
	v->rope_b = ib->rope;
	v->tol = tol;
	v->unit_roundoff = ua > ub ? ua : ub;
	memset(hdr, 0, sizeof *hdr);
	hdr->shape = ia->shape;
	hdr->rope = ia->rope;
}
