#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "core/rng.h"
#include "data/model_tensors.h"
#include "data/model_weights.h"

/* Head rows converted per block: 4096 rows of an 8B model's D = 4096 are
 * 64 MB in float32, a small part of one layer. */
#define HEAD_BLOCK_ROWS ((size_t)4096)

/* The next layer is read and converted while the current one computes:
 * two weight sources, layer i in slot i % 2, and the reading overlaps the
 * arithmetic. A dense layer's MLP matrices, 80% of an 8B layer, are not
 * held twice: the slots hold the rest, and the matrices come one at a time
 * through a ring of PART_RING buffers, read in the order the pass asks
 * for them (up, gate, down), so memory holds about one layer. */
enum { PART_RING = 2 };

typedef struct {
	ModelWeights *w[2];
	FwdLayer fl[2];
	bool deferred[2];   /* slot's layer has its MLP matrices in the ring */
	bool gated[2];      /* ... a gate among them */
	size_t L;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t loaded;      /* layers converted so far */
	size_t used;        /* layers the compute side is done with */
	bool failed, stop;
	char err[1024];
	/* the ring, under mu: part k in buf[k % PART_RING] */
	void *buf[PART_RING];
	size_t buf_bytes[PART_RING];
	FwdPart part[PART_RING];
	size_t read, taken, freed;   /* parts read, handed to the pass, given back */
	FwdParts fp;                 /* the pass's side */
	size_t es;                   /* bytes per value */
} Prefetch;

/* Under mu: stop on e (the first failure is kept). */
static void prefetch_fail(Prefetch *p, const char *e)
{
	if (!p->failed)
		snprintf(p->err, sizeof p->err, "%s", e);
	p->failed = true;
	pthread_cond_broadcast(&p->cv);
}

/* Read the deferred matrices of the layer in slot w into the ring, each
 * once a buffer is free; false when stopped or failed. */
static bool read_parts(Prefetch *p, ModelWeights *w)
{
	for (FwdPart q = FWD_PART_UP; q <= FWD_PART_DOWN; q++) {
		size_t n = model_weights_part_size(w, q);
		if (!n)
			continue;
		pthread_mutex_lock(&p->mu);
		while (!p->stop && !p->failed && p->read >= p->freed + PART_RING)
			pthread_cond_wait(&p->cv, &p->mu);
		bool go = !p->stop && !p->failed;
		size_t k = p->read % PART_RING;
		pthread_mutex_unlock(&p->mu);
		if (!go)
			return false;
		char e[1024];
		if (p->buf_bytes[k] < n * p->es) {
			free(p->buf[k]);
			p->buf[k] = malloc(n * p->es);
			p->buf_bytes[k] = p->buf[k] ? n * p->es : 0;
		}
		int rc = -1;
		if (!p->buf[k])
			snprintf(e, sizeof e, "out of memory for an MLP matrix");
		else
			rc = model_weights_read_part(w, q, p->buf[k], e, sizeof e);
		pthread_mutex_lock(&p->mu);
		if (rc)
			prefetch_fail(p, e);
		else {
			p->part[k] = q;
			p->read++;
			pthread_cond_broadcast(&p->cv);
		}
		pthread_mutex_unlock(&p->mu);
		if (rc)
			return false;
	}
	return true;
}

static void *prefetch_run(void *arg)
{
	Prefetch *p = arg;
	for (size_t i = 0; i < p->L; i++) {
		pthread_mutex_lock(&p->mu);
		while (!p->stop && i >= p->used + 2)
			pthread_cond_wait(&p->cv, &p->mu);
		bool stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		char e[1024];
		FwdLayer fl;
		ModelWeights *w = p->w[i % 2];
		int rc = model_weights_layer(w, i, &fl, e, sizeof e);
		pthread_mutex_lock(&p->mu);
		if (rc) {
			prefetch_fail(p, e);
		} else {
			p->fl[i % 2] = fl;
			p->deferred[i % 2] = model_weights_part_size(w, FWD_PART_UP) > 0;
			p->gated[i % 2] = model_weights_part_size(w, FWD_PART_GATE) > 0;
			p->loaded = i + 1;
		}
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		if (rc || !read_parts(p, w))
			break;
	}
	return NULL;
}

/* FwdParts' side: the next part read, in the order asked for. */
static const void *part_need(void *ctx, FwdPart q)
{
	Prefetch *p = ctx;
	pthread_mutex_lock(&p->mu);
	while (!p->failed && p->taken >= p->read)
		pthread_cond_wait(&p->cv, &p->mu);
	const void *v = NULL;
	if (p->taken < p->read) {
		size_t k = p->taken % PART_RING;
		if (p->part[k] == q) {
			v = p->buf[k];
			p->taken++;
		} else {
			prefetch_fail(p, "the forward pass asked for the MLP matrices out of order");
		}
	}
	pthread_mutex_unlock(&p->mu);
	return v;
}

static void part_done(void *ctx, FwdPart q)
{
	(void)q;
	Prefetch *p = ctx;
	pthread_mutex_lock(&p->mu);
	p->freed++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* Every layer through the state, the next one converted meanwhile. */
static int run_layers(Model *m, const ModelForwardOpts *o, ModelWeights *w0,
		      ModelWeights *w1, FwdState *st, char *err, size_t errlen)
{
	Prefetch p;
	memset(&p, 0, sizeof p);
	p.w[0] = w0;
	p.w[1] = w1;
	p.L = model_info(m)->n_layers;
	p.es = fwd_elem_size(o->prec);
	p.fp = (FwdParts){part_need, part_done, &p, false};
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	/* the what-if draws in reading order: whole layers then */
	bool defer = o->perturb <= 0;
	model_weights_defer_mlp(w0, defer);
	model_weights_defer_mlp(w1, defer);
	pthread_t th;
	bool threaded = pthread_create(&th, NULL, prefetch_run, &p) == 0;
	if (!threaded) {
		model_weights_defer_mlp(w0, false);
		model_weights_defer_mlp(w1, false);
	}
	int rc = 0;
	for (size_t i = 0; i < p.L && !rc; i++) {
		FwdLayer fl;
		if (!threaded) {
			/* no thread: one layer after the other */
			if (model_weights_layer(w0, i, &fl, err, errlen)) {
				rc = -1;
				break;
			}
		} else {
			pthread_mutex_lock(&p.mu);
			while (p.loaded <= i && !p.failed)
				pthread_cond_wait(&p.cv, &p.mu);
			bool ok = p.loaded > i;
			fl = p.fl[i % 2];
			if (p.deferred[i % 2]) {
				p.fp.gated = p.gated[i % 2];
				fl.parts = &p.fp;
			}
			if (!ok)
				snprintf(err, errlen, "%s", p.err);
			pthread_mutex_unlock(&p.mu);
			if (!ok) {
				rc = -1;
				break;
			}
		}
		RfStatus s = fwd_layer_apply(st, &fl);
		if (s != RF_OK) {
			pthread_mutex_lock(&p.mu);
			if (s == RF_ERR_SOURCE && p.failed)
				snprintf(err, errlen, "%s", p.err);
			else
				snprintf(err, errlen, "%s: layer %zu: %s", model_path(m), i,
					 rf_status_str(s));
			pthread_mutex_unlock(&p.mu);
			rc = -1;
		}
		if (threaded) {
			pthread_mutex_lock(&p.mu);
			p.used = i + 1;
			p.stop = rc != 0;
			pthread_cond_broadcast(&p.cv);
			pthread_mutex_unlock(&p.mu);
		}
		if (!rc && o->progress)
			o->progress(o->progress_ctx, i + 1, p.L);
	}
	if (threaded)
		pthread_join(th, NULL);
	for (int k = 0; k < PART_RING; k++)
		free(p.buf[k]);
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mu);
	return rc;
}

int model_forward(Model *m, const ModelForwardOpts *o, const size_t *tokens, size_t T,
		  void **logits, size_t *vocab, char *err, size_t errlen)
{
	*logits = NULL;
	*vocab = 0;
	const ModelInfo *info = model_info(m);
	size_t D = info->shape.d_model;
	if (!T || T > LAYER_MAX_SEQ) {
		snprintf(err, errlen, "%s: %zu tokens: the forward pass takes 1 to %zu",
			 model_path(m), T, (size_t)LAYER_MAX_SEQ);
		return -1;
	}
	ModelWeights *w, *w1 = NULL;
	if (model_weights_open(m, o->prec, &w, err, errlen))
		return -1;
	if (model_weights_open(m, o->prec, &w1, err, errlen)) {
		model_weights_close(w);
		return -1;
	}
	if (o->rope) {
		model_weights_set_rope(w, o->rope);
		model_weights_set_rope(w1, o->rope);
	}
	if (o->perturb > 0) {
		model_weights_set_perturb(w, o->perturb, o->perturb_seed);
		model_weights_set_perturb(w1, o->perturb, o->perturb_seed + 1);
	}
	size_t V = model_weights_vocab(w), es = fwd_elem_size(o->prec);
	size_t nt = o->nthreads ? o->nthreads : parallel_default_threads();
	FwdState st;
	double *emb = malloc(T * D * sizeof(double));
	void *out = malloc(T * V * es);
	void *rows = NULL;
	int rc = -1;
	memset(&st, 0, sizeof st);
	if (!emb || !out || fwd_state_init(&st, o->prec, T, D, nt) != RF_OK) {
		snprintf(err, errlen, "%s: out of memory for %zu tokens", model_path(m), T);
		goto done;
	}
	if (model_weights_embed(w, tokens, T, emb, err, errlen))
		goto done;
	fwd_state_embed(&st, emb);
	if (run_layers(m, o, w, w1, &st, err, errlen))
		goto done;
	model_weights_close(w1);   /* the next layer's buffers, no longer needed */
	w1 = NULL;
	FwdNorm fn;
	if (model_weights_final_norm(w, &fn, err, errlen))
		goto done;
	fwd_final_norm(&st, &fn);
	size_t blk = V < HEAD_BLOCK_ROWS ? V : HEAD_BLOCK_ROWS;
	if (!(rows = malloc(blk * D * es))) {
		snprintf(err, errlen, "%s: out of memory", model_path(m));
		goto done;
	}
	double cap = model_weights_final_softcap(w);
	for (size_t first = 0; first < V; first += blk) {
		size_t n = V - first < blk ? V - first : blk;
		if (model_weights_head(w, first, n, rows, err, errlen))
			goto done;
		fwd_head_rows(&st, rows, n, cap, out, first, V);
	}
	*logits = out;
	*vocab = V;
	out = NULL;
	rc = 0;
done:
	free(rows);
	free(out);
	free(emb);
	fwd_state_done(&st);
	model_weights_close(w);
	model_weights_close(w1);
	return rc;
}

void model_random_tokens(uint64_t seed, size_t V, size_t n, size_t *ids)
{
	Rng r;
	rng_seed(&r, seed, 0x70c3u);
	for (size_t t = 0; t < n; t++)
		ids[t] = (size_t)(rng_next(&r) % V);
}
