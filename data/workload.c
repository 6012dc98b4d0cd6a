#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rng.h"
#include "core/session.h"
#include "data/mla_model.h"
#include "data/model.h"
#include "data/residual_tensors.h"
#include "data/workload.h"
#include "data/mla_workload.h"

/* The token ids of --input embed: --tokens, or a seeded sequence of
 * o->seq ids below vocab. tokens has room for LAYER_MAX_SEQ ids. */
static int embed_tokens(const WorkloadSpec *o, size_t vocab, size_t *tokens, size_t *n,
			char *err, size_t errlen)
{
	*n = 0;
	if (!o->tokens) {
		Rng rng;
		rng_seed(&rng, o->seed, 3);
		for (size_t t = 0; t < o->seq; t++)
			tokens[(*n)++] = (size_t)(rng_next(&rng) % vocab);
		return 0;
	}
	for (const char *p = o->tokens; *p;) {
		char *end;
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p || *n >= LAYER_MAX_SEQ) {
			snprintf(err, errlen, "--tokens: '%s' is not a list of up to %zu token ids",
				 o->tokens, LAYER_MAX_SEQ);
			return -1;
		}
		if (v >= vocab) {
			snprintf(err, errlen, "--tokens: token id %llu is out of range (vocab %zu)", v,
				 vocab);
			return -1;
		}
		tokens[(*n)++] = (size_t)v;
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

/* Refuse, before anything is allocated, an evaluation this machine cannot
 * hold: past physical memory the kernel would kill the process midway. The
 * flag named is --seq when the T x T buffers are most of it. */
static int check_fits(const WorkloadSpec *o, const LayerShape *s, size_t T,
		      const char *what, char *err, size_t errlen)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	if (pages <= 0 || page <= 0)
		return 0;
	double have = (double)pages * (double)page;
	double need = inv_session_bytes(s, T, o->precision, 0);
	if (need <= 0.9 * have)
		return 0;
	bool by_seq = inv_session_bytes_quadratic(s, T, o->precision, 0) > need / 2;
	snprintf(err, errlen,
		 "%s: an evaluation of %s with T = %zu needs about %.1f GiB, more "
		 "than this machine's %.1f GiB of memory", by_seq ? "--seq" : what,
		 by_seq ? "this layer" : "a layer this size", T, need / 1073741824.0,
		 have / 1073741824.0);
	return -1;
}

/* Load layer o->layer of a checkpoint, and with --input embed its token
 * embeddings through the layer's input norm into w->x. */
static int workload_load(const WorkloadSpec *o, const char *path, Workload *w,
			 char *err, size_t errlen)
{
	Model *m;
	if (model_open(path, &m, err, errlen))
		return -1;
	const ModelInfo *in = model_info(m);
	snprintf(w->note, sizeof w->note, "%s", in->note);
	memcpy(w->mrope_section, in->mrope_section, sizeof w->mrope_section);
	if (!residual_family_refusal(m, w->r1_refusal, sizeof w->r1_refusal))
		w->r1_refusal[0] = '\0';
	int rc = -1;
	size_t *tokens = NULL;
	double *emb = NULL;
	if (o->layer >= in->n_layers) {
		/* the point first: the explorer's status line may cut the path */
		snprintf(err, errlen, "--layer: layer %zu is out of range: %s has %zu layers (0..%zu)",
			 o->layer, path, in->n_layers, in->n_layers - 1);
		goto out;
	}
	if (check_fits(o, &in->shape, o->embed && o->tokens ? 1 : o->seq,
		       "--model", err, errlen))
		goto out;
	if (o->opened)
		o->opened(o->ctx);
	if (model_mla(m) ? workload_load_mla(o, m, w, err, errlen)
			 : model_load_layer(m, o->layer, &w->layer, err, errlen))
		goto out;
	/* The checkpoint's layout is what its runtime applies: --rope does not
	 * change it but says which layout to build the fold for. */
	RopeLayout own = w->layer.rope.layout;
	rope_override_apply(&o->rope, &w->layer.rope);
	w->layer.rope.layout = own;
	if (o->rope.layout && o->rope.spec.layout != own) {
		w->fold_layout_set = true;
		w->fold_layout = o->rope.spec.layout;
	}
	if (w->is_mla)
		w->mla.rope = w->layer.rope;   /* its rope part's, as overridden */
	if (o->embed) {
		size_t D = in->shape.d_model, n;
		if (!in->vocab) {
			snprintf(err, errlen, "--input: %s has no token embeddings", path);
			goto out;
		}
		tokens = malloc(LAYER_MAX_SEQ * sizeof *tokens);
		if (!tokens || embed_tokens(o, in->vocab, tokens, &n, err, errlen))
			goto out;
		emb = malloc(n * D * sizeof(double));
		w->x = malloc(n * D * sizeof(double));
		if (!emb || !w->x) {
			snprintf(err, errlen, "--seq: cannot allocate %zu x %zu activations", n, D);
			goto out;
		}
		if (model_load_embeddings(m, tokens, n, emb, err, errlen))
			goto out;
		/* an MLA header has no weights: its input norm is the layer's */
		if (w->is_mla)
			w->layer.attn_norm = w->mla.attn_norm;
		layer_input_norm(&w->layer, emb, n, w->x);
		if (w->is_mla)
			w->layer.attn_norm = NULL;
		w->seq = n;
		if (check_fits(o, &in->shape, n, "--tokens", err, errlen))
			goto out;
	}
	rc = 0;
out:
	free(tokens);
	free(emb);
	model_close(m);
	return rc;
}

int workload_check_rope(const RopeOverride *rope, size_t head_dim, const char *source,
			char *err, size_t errlen)
{
	if (rope->rotary_dim && rope->spec.rotary_dim > head_dim) {
		snprintf(err, errlen, "--rotary-dim: %zu exceeds the head dim %zu of %s",
			 rope->spec.rotary_dim, head_dim, source);
		return -1;
	}
	return 0;
}

int workload_build(const WorkloadSpec *o, Workload *w, char *err, size_t errlen)
{
	memset(w, 0, sizeof *w);
	w->seq = o->seq;
	w->layer_index = o->layer;
	if (o->model_path) {
		if (workload_load(o, o->model_path, w, err, errlen)) {
			workload_done(w);
			return -1;
		}
		snprintf(w->source, sizeof w->source, "%s",
			 o->default_model ? "default" : o->model_path);
		w->default_model = o->default_model;
	} else if (o->mla) {
		if (workload_random_mla(o, w, err, errlen))
			return -1;
	} else {
		RopeSpec rope = o->rope.spec;
		if (check_fits(o, &o->shape, o->seq, "--d-model", err, errlen))
			return -1;
		if (layer_random(&w->layer, &o->shape, &rope, o->with_bias, o->seed) != RF_OK) {
			snprintf(err, errlen, "--d-model: cannot allocate a layer of this size");
			return -1;
		}
		snprintf(w->source, sizeof w->source, "random");
	}
	const char *why;
	if (rope_spec_check(&w->layer.rope, w->layer.shape.head_dim, &why) != RF_OK) {
		/* the flags were checked one by one: what is left is how
		 * --rotary-dim meets the checkpoint's head dim */
		const RopeScaling *sc = &w->layer.rope.scaling;
		if (!workload_check_rope(&o->rope, w->layer.shape.head_dim, w->source, err, errlen)) {
			if (o->rope.rotary_dim && sc->n_pairs &&
			    sc->n_pairs != w->layer.rope.rotary_dim / 2)
				snprintf(err, errlen, "--rotary-dim: %zu does not fit %s's RoPE factor "
					 "table (%zu factors, for rotary dim %zu)",
					 o->rope.spec.rotary_dim, w->source, sc->n_pairs,
					 2 * sc->n_pairs);
			else
				snprintf(err, errlen, "%s: %s", w->source, why);
		}
		workload_done(w);
		return -1;
	}
	if (o->embed && !w->x) {
		snprintf(err, errlen, "--input: 'embed' needs --model with token embeddings");
		workload_done(w);
		return -1;
	}
	if (w->x)
		return 0;
	size_t D = w->layer.shape.d_model;
	w->x = malloc(w->seq * D * sizeof(double));
	if (!w->x) {
		snprintf(err, errlen, "--seq: cannot allocate %zu x %zu activations", w->seq, D);
		workload_done(w);
		return -1;
	}
	layer_random_input(o->seed, w->seq, D, w->x);
	return 0;
}

void workload_done(Workload *w)
{
	layer_free(&w->layer);
	mla_free(&w->mla);
	w->is_mla = false;
	free(w->x);
	w->x = NULL;
}

void workload_fold_config(const Workload *w, FoldConfig *cfg)
{
	cfg->layout_set = w->fold_layout_set;
	if (w->fold_layout_set)
		cfg->layout = w->fold_layout;
}
