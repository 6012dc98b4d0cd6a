#include "config.h"

#include <stdio.h>

#include "data/mla_model.h"
#include "data/mla_workload.h"

int workload_random_mla(const WorkloadSpec *o, Workload *w, char *err, size_t errlen)
{
	const MlaShape *s = &o->mla_shape;
	const char *why;
	if (mla_shape_check(s, &why) != RF_OK) {
		snprintf(err, errlen, "--kv-lora-rank: a random MLA layer of this shape is refused: %s",
			 why);
		return -1;
	}
	/* the scores of both sides, H x T x T each, are the largest buffers */
	double need = 2.0 * (double)s->n_heads * (double)o->seq * (double)o->seq * 8.0;
	if (need > 8.0 * 1073741824.0) {
		snprintf(err, errlen, "--seq: an MLA evaluation with T = %zu and %zu heads needs "
			 "about %.1f GiB", o->seq, s->n_heads, need / 1073741824.0);
		return -1;
	}
	RopeSpec rope = o->rope.spec;
	rope.rotary_dim = s->qk_rope_dim;
	if (mla_random(&w->mla, s, &rope, o->seed) != RF_OK) {
		snprintf(err, errlen, "--kv-lora-rank: cannot allocate an MLA layer of this size");
		return -1;
	}
	w->is_mla = true;
	mla_header(&w->mla, &w->layer);
	snprintf(w->source, sizeof w->source, "random");
	return 0;
}

int workload_load_mla(const WorkloadSpec *o, Model *m, Workload *w, char *err, size_t errlen)
{
	const ModelInfo *in = model_info(m);
	if (o->rope.rotary_dim) {
		snprintf(err, errlen, "--rotary-dim: the rope part of this DeepSeek MLA layer is "
			 "qk_rope_head_dim = %zu wide; leave --rotary-dim out", in->mla_shape.qk_rope_dim);
		return -1;
	}
	if (model_load_mla_layer(m, o->layer, &w->mla, err, errlen))
		return -1;
	w->is_mla = true;
	mla_header(&w->mla, &w->layer);
	return 0;
}
