#ifndef ROPEFOLD_DATA_MODEL_WEIGHTS_H
#define ROPEFOLD_DATA_MODEL_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/forward.h"
#include "core/logits.h"
#include "core/rope.h"
#include "data/model.h"

/* A model-weights source for the whole-model forward pass: what the
 * family's decoder is (block style, norms, MLP, head), and each layer's
 * weights converted to the compute precision on request, one layer at a
 * time (a layer's buffers live until the next layer is loaded or the
 * source is closed).
 *
 * Call sequence: model_weights_open (after model_open), then
 * model_weights_embed, model_weights_layer for each layer in order,
 * model_weights_final_norm, model_weights_head for every block of head
 * rows, then model_weights_close (before model_close). Failures return
 * -1 with one line in err naming the file, tensor or token. */

typedef struct ModelWeights ModelWeights;

/* Resolve the family's decoder; a family whose forward is not
 * implemented is refused naming what is missing. */
int model_weights_open(Model *m, FwdPrecision prec, ModelWeights **out, char *err,
		       size_t errlen);
/* The vocabulary size (rows of the head). */
size_t model_weights_vocab(const ModelWeights *w);
/* The family's name as the forward pass reads it ("llama", "gemma2", ...). */
const char *model_weights_family(const ModelWeights *w);
/* The scaled token embeddings of n ids (out: n x D float64); an id past
 * the vocabulary is refused. */
int model_weights_embed(ModelWeights *w, const size_t *tokens, size_t n, double *out,
			char *err, size_t errlen);
/* Put the given RoPE fields over every layer's own (a what-if: the wrong
 * pairing of a broken conversion). */
void model_weights_set_rope(ModelWeights *w, const RopeOverride *o);
/* Move every weight read from now on by up to u of itself, w (1 + u r)
 * with r uniform in [-1, 1] from seed: the error a storage rounding of
 * unit roundoff u alone causes (verify's model level). */
void model_weights_set_perturb(ModelWeights *w, double u, uint64_t seed);
/* From now on (on: true) a dense layer's three MLP matrices are left
 * unread by model_weights_layer (its FwdMlp's gate, up and down NULL),
 * for model_weights_read_part to read one at a time. Not under the
 * rounding what-if, whose draws go in the order of the reads. */
void model_weights_defer_mlp(ModelWeights *w, bool on);
/* Values of MLP matrix p the last model_weights_layer left unread (0: it
 * read them all, or the layer has none such: experts, MLA). */
size_t model_weights_part_size(const ModelWeights *w, FwdPart p);
/* Read it into buf (that many values of the compute precision); it may
 * run on another thread than the layer's, until the next layer. */
int model_weights_read_part(const ModelWeights *w, FwdPart p, void *buf, char *err,
			    size_t errlen);
/* Layer i's weights, valid until the next call. */
int model_weights_layer(ModelWeights *w, size_t i, FwdLayer *out, char *err, size_t errlen);
/* The final norm (valid until the next call). */
int model_weights_final_norm(ModelWeights *w, FwdNorm *out, char *err, size_t errlen);
/* Head rows [first, first + n) into rows (n x D, compute precision). */
int model_weights_head(ModelWeights *w, size_t first, size_t n, void *rows, char *err,
		       size_t errlen);
/* The final soft-cap of the logits (Gemma 2), 0 = none. */
double model_weights_final_softcap(const ModelWeights *w);
/* Release the buffers. */
void model_weights_close(ModelWeights *w);

/* ---- the whole pass (data/model_weights_run.c) ---- */

/* Called after each layer: layers done out of n. */
typedef void (*ModelForwardProgress)(void *ctx, size_t done, size_t n);

typedef struct {
	FwdPrecision prec;
	const RopeOverride *rope;      /* RoPE fields put over every layer's, or NULL */
	double perturb;                /* model_weights_set_perturb's u (0: none) */
	uint64_t perturb_seed;
	size_t nthreads;               /* 0: parallel_default_threads() */
	ModelForwardProgress progress; /* or NULL */
	void *progress_ctx;
} ModelForwardOpts;

/* The teacher-forced logits of T tokens: *logits (T x V row-major, of the
 * precision: float or double) allocated here (free it), *vocab = V. The
 * next layer is read and converted on a thread while the current one
 * computes (two layers in memory). */
int model_forward(Model *m, const ModelForwardOpts *o, const size_t *tokens, size_t T,
		  void **logits, size_t *vocab, char *err, size_t errlen);
/* n seeded token ids below V into ids (--seq N --seed S). */
void model_random_tokens(uint64_t seed, size_t V, size_t n, size_t *ids);

/* ---- the model level of verify (data/model_weights_level.c) ---- */

/* A and B's logits on the same tokens, judged against what the storage
 * rounding alone does to A's. */
typedef struct {
	size_t T, V;
	LogitsCompare ab;         /* A against B */
	LogitsCompare floor;      /* A against A with every weight moved by up to
				   * the unit roundoff of the coarsest stored dtype */
	double unit_roundoff;     /* that roundoff */
	double tol_rel;           /* max_rel_logit_err allowed: 4 x the floor's */
	double tol_kl;            /* max_kl allowed: 16 x the floor's (KL grows
				   * with the square of a small error) */
	bool holds;               /* ab within both tolerances */
} ModelLevel;

/* Run A and B (paths) on T tokens (NULL: T seeded ids from seed) at prec,
 * and A again with its weights moved by the rounding; 0, or -1 with err
 * (a checkpoint that cannot be run, different vocabularies, an id past
 * the vocabulary). */
int model_level_run(const char *a, const char *b, const size_t *tokens, size_t T,
		    uint64_t seed, FwdPrecision prec, ModelLevel *out, char *err, size_t errlen);

#endif
