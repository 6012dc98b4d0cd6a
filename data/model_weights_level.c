#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "data/model_weights.h"

/* The coarsest stored dtype of every tensor of a checkpoint: its roundoff. */
static double coarsest_roundoff(const ModelInfo *in)
{
	double u = 0;
	for (size_t i = 0; i < in->dtypes.n; i++) {
		StoreDtype t;
		if (dtype_parse(in->dtypes.v[i].name, &t) == 0 && dtype_unit_roundoff(t) > u)
			u = dtype_unit_roundoff(t);
	}
	return u;
}

/* A model's logits as float64 (T x V). */
static int run_one(Model *m, FwdPrecision prec, double perturb, const size_t *ids, size_t T,
		   double **out, size_t *V, char *err, size_t errlen)
{
	ModelForwardOpts o = {prec, NULL, perturb, 0x0f0f, 0, NULL, NULL};
	void *z;
	*out = NULL;
	if (model_forward(m, &o, ids, T, &z, V, err, errlen))
		return -1;
	double *d = malloc(T * *V * sizeof *d);
	if (!d) {
		free(z);
		snprintf(err, errlen, "%s: out of memory", model_info(m)->arch);
		return -1;
	}
	for (size_t i = 0; i < T * *V; i++)
		d[i] = prec == FWD_F32 ? ((float *)z)[i] : ((double *)z)[i];
	free(z);
	*out = d;
	return 0;
}

int model_level_run(const char *a, const char *b, const size_t *tokens, size_t T,
		    uint64_t seed, FwdPrecision prec, ModelLevel *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	Model *ma = NULL, *mb = NULL;
	double *za = NULL, *zb = NULL, *zp = NULL;
	size_t *ids = NULL;
	int rc = -1;
	if (model_open(a, &ma, err, errlen) || model_open(b, &mb, err, errlen))
		goto done;
	ModelWeights *w;
	if (model_weights_open(ma, prec, &w, err, errlen))
		goto done;
	size_t V = model_weights_vocab(w), Vb, Vp;
	model_weights_close(w);
	if (!(ids = malloc((T ? T : 1) * sizeof *ids))) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	if (tokens)
		memcpy(ids, tokens, T * sizeof *ids);
	else
		model_random_tokens(seed, V, T, ids);
	for (size_t t = 0; t < T; t++)
		if (ids[t] >= V) {
			snprintf(err, errlen, "--tokens: id %zu (position %zu) is out of range: %s has a "
				 "vocabulary of %zu", ids[t], t, a, V);
			goto done;
		}
	if (run_one(ma, prec, 0, ids, T, &za, &V, err, errlen) ||
	    run_one(mb, prec, 0, ids, T, &zb, &Vb, err, errlen))
		goto done;
	if (Vb != V) {
		snprintf(err, errlen, "%s has a vocabulary of %zu, %s of %zu: their logits do not "
			 "compare", a, V, b, Vb);
		goto done;
	}
	double ua = coarsest_roundoff(model_info(ma)), ub = coarsest_roundoff(model_info(mb));
	out->unit_roundoff = ua > ub ? ua : ub;
	if (run_one(ma, prec, out->unit_roundoff, ids, T, &zp, &Vp, err, errlen))
		goto done;
	out->T = T;
	out->V = V;
	logits_compare(za, zb, T, V, &out->ab);
	logits_compare(za, zp, T, V, &out->floor);
	/* the compute precision's own floor: a few units of roundoff */
	double eps = prec == FWD_F32 ? 1e-6 : 1e-13;
	out->tol_rel = 4 * out->floor.max_rel_logit_err;
	out->tol_rel = out->tol_rel > eps ? out->tol_rel : eps;
	out->tol_kl = 16 * out->floor.max_kl;
	out->tol_kl = out->tol_kl > eps * eps ? out->tol_kl : eps * eps;
	out->holds = out->ab.max_rel_logit_err <= out->tol_rel && out->ab.max_kl <= out->tol_kl;
	rc = 0;
done:
	free(za);
	free(zb);
	free(zp);
	free(ids);
	if (ma)
		model_close(ma);
	if (mb)
		model_close(mb);
	return rc;
}
