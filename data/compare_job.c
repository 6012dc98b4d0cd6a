#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/finding.h"
#include "data/compare_job.h"
#include "data/layer_tolerance.h"
#include "data/mla_model.h"
#include "data/mla_pair.h"
#include "data/model.h"
#include "data/verify_job.h"
#include "data/verify_residual_job.h"

/* st of an evaluation of layer i as err's words; 0 for RF_OK. */
static int eval_error(RfStatus st, size_t i, char *err, size_t errlen)
{
	if (st == RF_ERR_NUMERIC)
		snprintf(err, errlen, "layer %zu: the weights are too large to compare: their "
			 "products overflow float64", i);
	else if (st != RF_OK)
		snprintf(err, errlen, "layer %zu: cannot compare: %s", i, rf_status_str(st));
	return st == RF_OK ? 0 : -1;
}

/* A pair of which one side at least is DeepSeek MLA: the verdict and
 * levels verify reaches on the layer (data/mla_pair.h, at its
 * tolerances; core/compare.h's compare_mla_layers), on the job's input. */
static int run_mla(const CompareJob *j, Model *ma, Model *mb, CompareOutcome *out, char *err,
		   size_t errlen)
{
	if (!model_mla(ma) || !model_mla(mb)) {
		/* two valid checkpoints, one MLA and one not: not a fold */
		Layer hdr;
		mla_pair_shape_verdict(model_info(ma), model_info(mb), 0, &out->cmp.verdict, &hdr);
		return 0;
	}
	VerifyOptions vo;
	if (mla_pair_options(ma, mb, j->layer, 0, &vo, err, errlen))
		return -1;
	MlaLayer a, b;
	if (model_load_mla_layer(ma, j->layer, &a, err, errlen))
		return -1;
	if (model_load_mla_layer(mb, j->layer, &b, err, errlen)) {
		mla_free(&a);
		return -1;
	}
	RfStatus st = compare_mla_layers(&a, &b, &vo, j->x, j->seq, j->precision, j->tol,
					 &out->cmp);
	mla_free(&a);
	mla_free(&b);
	if (eval_error(st, j->layer, err, errlen)) {
		compare_done(&out->cmp);
		return -1;
	}
	return 0;
}

/* The (device, inode, size, mtime) of path, or zeros when it cannot be
 * stat'ed: a checkpoint replaced on disk (fold publishes by rename) reads
 * as another one. */
static void path_stamp(const char *path, unsigned long long st4[4])
{
	struct stat st;
	memset(st4, 0, 4 * sizeof *st4);
	if (stat(path, &st) == 0) {
		st4[0] = (unsigned long long)st.st_dev;
		st4[1] = (unsigned long long)st.st_ino;
		st4[2] = (unsigned long long)st.st_size;
		st4[3] = (unsigned long long)st.st_mtime;
	}
}

struct ComparePair {
	char *path[2];                /* A, B */
	unsigned long long stamp[2][4];  /* path_stamp of each at open */
	Model *m[2];
	LayerTolerance tl;            /* the sidecars, read once */
	bool framed;                  /* rj holds the residual frame (found by the
				       * first run on a standard layer) */
	VerifyResidualJob rj;
};

int compare_pair_open(const char *a, const char *b, ComparePair **out, char *err,
		      size_t errlen)
{
	*out = NULL;
	ComparePair *p = calloc(1, sizeof *p);
	if (!p || !(p->path[0] = strdup(a)) || !(p->path[1] = strdup(b))) {
		snprintf(err, errlen, "out of memory");
		compare_pair_close(p);
		return -1;
	}
	for (int s = 0; s < 2; s++)
		path_stamp(p->path[s], p->stamp[s]);
	if (model_open(a, &p->m[0], err, errlen) || model_open(b, &p->m[1], err, errlen)) {
		compare_pair_close(p);
		return -1;
	}
	layer_tolerance_open(&p->tl, a, p->m[0], b, p->m[1]);
	*out = p;
	return 0;
}

bool compare_pair_is(const ComparePair *p, const char *a, const char *b)
{
	if (!p || strcmp(p->path[0], a) || strcmp(p->path[1], b))
		return false;
	for (int s = 0; s < 2; s++) {
		unsigned long long now[4];
		path_stamp(p->path[s], now);
		if (memcmp(now, p->stamp[s], sizeof now))
			return false;
	}
	return true;
}

void compare_pair_close(ComparePair *p)
{
	if (!p)
		return;
	if (p->framed)
		verify_residual_job_free(&p->rj);
	layer_tolerance_done(&p->tl);
	for (int s = 0; s < 2; s++) {
		if (p->m[s])
			model_close(p->m[s]);
		free(p->path[s]);
	}
	free(p);
}

/* The pair's residual frame, found the first time it is asked for. */
static int pair_frame(ComparePair *p, char *err, size_t errlen)
{
	if (p->framed)
		return 0;
	VerifyOptions rvo = {.unit_roundoff = 0x1p-53, .tol = 0, .finite = true};
	if (verify_residual_begin(p->m[0], p->m[1], &rvo, &p->rj, err, errlen)) {
		verify_residual_job_free(&p->rj);
		return -1;
	}
	p->framed = true;
	return 0;
}

int compare_pair_run(ComparePair *p, const CompareJob *j, CompareOutcome *out, char *err,
		     size_t errlen)
{
	memset(out, 0, sizeof *out);
	Model *ma = p->m[0], *mb = p->m[1];
	Layer a, b;
	bool have_a = false, have_b = false;
	int rc = -1;
	const ModelInfo *ia = model_info(ma), *ib = model_info(mb);
	out->dtype_a = ia->dtype;
	out->dtype_b = ib->dtype;
	out->layers_a = ia->n_layers;
	out->layers_b = ib->n_layers;
	if (j->layer >= ib->n_layers) {
		snprintf(err, errlen, "%s: has %zu layers, no layer %zu to compare with",
			 p->path[1], ib->n_layers, j->layer);
		return -1;
	}
	if (model_mla(ma) || model_mla(mb))
		return run_mla(j, ma, mb, out, err, errlen);
	/* as verify does: B a residual rotation R1 of A (norms fused) has
	 * this layer's attention brought into A's frame first (a and b are
	 * changed: the caller's A is copied then); R1 is found once for the
	 * pair */
	if (pair_frame(p, err, errlen))
		goto out;
	out->residual_frame = p->rj.r.active;
	const Layer *la = &a;
	if (j->layer_a && !p->rj.r.active)
		la = j->layer_a;
	else if (j->layer_a ? layer_copy(&a, j->layer_a) != RF_OK
			    : model_load_layer(ma, j->layer, &a, err, errlen)) {
		if (j->layer_a)
			snprintf(err, errlen, "layer %zu: out of memory", j->layer);
		goto out;
	} else {
		have_a = true;
	}
	if (model_load_layer(mb, j->layer, &b, err, errlen))
		goto out;
	have_b = true;
	if (p->rj.r.active && verify_residual_layer(&p->rj, j->layer, &a, &b, err, errlen))
		goto out;
	/* verify's tolerances (data/layer_tolerance.h): the same verdict as
	 * `verify A B` on this layer; model_load_layer refuses NaN and Inf */
	VerifyOptions vo = {.tol = 0, .finite = true};
	double *qg = NULL;   /* vo.quant_group's storage */
	if (layer_tolerance_layer(&p->tl, j->layer, &vo, &qg, err, errlen)) {
		free(qg);
		goto out;
	}
	RfStatus st = compare_layers(la, &b, &vo, j->x, j->seq, j->precision, j->kernel, j->tol,
				     &out->cmp);
	free(qg);
	if (eval_error(st, j->layer, err, errlen))
		compare_done(&out->cmp);
	else
		rc = 0;
out:
	if (have_a)
		layer_free(&a);
	if (have_b)
		layer_free(&b);
	return rc;
}

int compare_job_run(const CompareJob *j, CompareOutcome *out, char *err, size_t errlen)
{
	ComparePair *p;
	memset(out, 0, sizeof *out);
	if (compare_pair_open(j->a, j->b, &p, err, errlen))
		return -1;
	int rc = compare_pair_run(p, j, out, err, errlen);
	compare_pair_close(p);
	return rc;
}

void compare_outcome_done(CompareOutcome *out)
{
	compare_done(&out->cmp);
}

/* The rows as the scan collects them. */
typedef struct {
	CompareLayerRow *rows;
	size_t n, cap;
	bool nomem;
} Scan;

static int on_layer(void *ctx, const VerifyLayerResult *r)
{
	Scan *s = ctx;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		CompareLayerRow *p = realloc(s->rows, cap * sizeof *p);
		if (!p) {
			s->nomem = true;
			return 1;
		}
		s->rows = p;
		s->cap = cap;
	}
	const VerifyVerdict *v = r->verdict;
	CompareLayerRow *row = &s->rows[s->n++];
	memset(row, 0, sizeof *row);
	row->layer = r->layer;
	row->equivalent = v->equivalent;
	row->relation = v->relation;
	row->why = v->why;
	row->level = v->brk.level;
	row->group = v->brk.group;
	row->head = v->brk.head;
	snprintf(row->tensor, sizeof row->tensor, "%s", v->brk.tensor);
	row->max_err = v->max_err;
	row->within = verify_verdict_within(v);
	size_t G = v->plan.n_kv_heads;
	row->n_groups = G < COMPARE_MAX_GROUPS ? G : COMPARE_MAX_GROUPS;
	for (size_t g = 0; g < row->n_groups; g++) {
		row->commuting[g] = v->commuting && v->commuting[g];
		row->perm[g] = v->plan.perm ? v->plan.perm[g] : g;
	}
	return 0;
}

int compare_scan_run(const char *a, const char *b, CompareLayerRow **rows, size_t *n,
		     char *err, size_t errlen)
{
	Scan s = {0};
	VerifyJob j = {a, b, NULL, NULL, 0, false, PREC_F64, 1, 1, &s, NULL, on_layer, 0};
	VerifyOutcome res;
	*rows = NULL;
	*n = 0;
	if (verify_job_run(&j, &res, err, errlen)) {
		free(s.rows);
		return -1;
	}
	if (s.nomem) {
		free(s.rows);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (res.layer_counts_differ) {
		free(s.rows);
		snprintf(err, errlen, "%s has %zu layers, %s has %zu", a, res.layers_a, b,
			 res.layers_b);
		return -1;
	}
	*rows = s.rows;
	*n = s.n;
	return 0;
}
