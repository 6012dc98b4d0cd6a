#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/logits.h"
#include "core/timer.h"
#include "data/model.h"
#include "data/model_weights.h"
#include "data/npy.h"
#include "data/vocab.h"
#include "tui/cli/info.h"
#include "tui/cli/logits.h"
#include "tui/shared/options.h"
#include "tui/shared/testhook.h"

#define LOGITS_ACCEPT (OPT_MODEL | OPT_LOGITS | OPT_RUN_INPUT | OPT_JSON)

static void logits_help(void)
{
	printf("usage: ropefold logits --model M [--tokens IDS | --seq N --seed S]\n"
	       "                      [--precision f64|f32] [--top K] [--generate N]\n"
	       "                      [--out FILE.npy] [--json]\n\n"
	       "The whole model's forward pass, teacher-forced on the token ids: the\n"
	       "embeddings, every layer (input norm, attention with the checkpoint's RoPE,\n"
	       "causal mask and sliding windows, GQA, biases, QK-norm, the MLP or experts,\n"
	       "the residual adds and the family's norms), the final norm and the output\n"
	       "head. Prints the K most likely next tokens per position with their\n"
	       "probabilities, and their text where the checkpoint carries a vocabulary\n"
	       "(GGUF tokenizer.ggml.tokens, tokenizer.json beside an HF folder's config,\n"
	       "tok512.bin or tokenizer.bin beside a llama2.c .bin). --generate N then\n"
	       "continues greedily (each step a full pass over the sequence) and prints\n"
	       "the text; it needs a vocabulary. Layers are converted one at a time, in\n"
	       "float32 unless --precision f64. The RoPE flags put other settings over\n"
	       "the checkpoint's own (the wrong pairing of a broken conversion).\n"
	       "Exit 0, or 2 on bad input (a token id past the vocabulary, a family whose\n"
	       "forward pass is not implemented).\n\n");
	opts_print_help(stdout, LOGITS_ACCEPT);
}

/* Progress on a terminal. */
typedef struct {
	bool tty;
	double t0;
	const char *what;
} Progress;

static void on_progress(void *ctx, size_t done, size_t n)
{
	Progress *p = ctx;
	if (!p->tty)
		return;
	fprintf(stderr, "\rlogits: %s layer %zu of %zu, %.1fs   ", p->what, done, n,
		timer_now() - p->t0);
	if (done == n)
		fputs("\r\033[K", stderr);
	fflush(stderr);
}

/* The ids of --tokens, or N seeded ids below V. */
static size_t *make_tokens(const RunOptions *o, size_t V, size_t *T)
{
	size_t n = o->seq, cap = n + o->generate + 1;
	size_t *ids = malloc(cap * sizeof *ids);
	if (!ids)
		return NULL;
	if (o->tokens) {
		n = 0;
		for (const char *p = o->tokens; *p;) {
			ids[n++] = (size_t)strtoull(p, NULL, 10);
			p += strcspn(p, ",");
			if (*p)
				p++;
		}
	} else {
		model_random_tokens(o->seed, V, n, ids);
	}
	*T = n;
	return ids;
}

/* The logits as float64 (T x V). */
static double *as_double(const void *z, FwdPrecision prec, size_t n)
{
	double *d = malloc(n * sizeof *d);
	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++)
		d[i] = prec == FWD_F32 ? ((const float *)z)[i] : ((const double *)z)[i];
	return d;
}

static int write_npy(const char *path, const double *z, size_t T, size_t V, char *err,
		     size_t errlen)
{
	float *f = malloc(T * V * sizeof *f);
	if (!f) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	for (size_t i = 0; i < T * V; i++)
		f[i] = (float)z[i];
	int rc = npy_write_f32(path, f, T, V, err, errlen);
	free(f);
	return rc;
}

/* The greedy continuation: n more ids after ids[0..T), each from a full
 * pass; a llama2.c vocabulary stops at BOS as run.c does. */
static int generate(Model *m, const ModelForwardOpts *fo, size_t *ids, size_t T, size_t n,
		    const Vocab *vocab, size_t *got, char *err, size_t errlen)
{
	size_t len = T;
	*got = 0;
	for (size_t k = 0; k < n; k++) {
		void *z;
		size_t V;
		if (model_forward(m, fo, ids, len, &z, &V, err, errlen))
			return -1;
		double *last = as_double((char *)z + (len - 1) * V * fwd_elem_size(fo->prec),
					 fo->prec, V);
		free(z);
		if (!last) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		size_t next = logits_argmax(last, V);
		free(last);
		if (vocab->style == VOCAB_RAW && next == 1)
			break;
		ids[len++] = next;
		(*got)++;
	}
	return 0;
}

static char *decode_text(const Vocab *v, const size_t *ids, size_t T, size_t n)
{
	size_t cap = 64 * (n + 1);
	char *raw = malloc(cap), *out = malloc(4 * cap + 1);
	if (!raw || !out) {
		free(raw);
		free(out);
		return NULL;
	}
	size_t at = 0;
	raw[0] = '\0';
	for (size_t k = 0; k < n; k++)
		at = vocab_decode(v, ids[T + k - 1], ids[T + k], raw, at, cap);
	vocab_printable(raw, at, true, out, 4 * cap + 1);
	free(raw);
	return out;
}

static json_t *top_json(const LogitsTop *top, size_t k, const Vocab *v)
{
	json_t *a = json_array();
	for (size_t j = 0; j < k; j++) {
		json_t *e = json_pack("{s:I, s:f, s:f}", "id", (json_int_t)top[j].id, "logit",
				      top[j].logit, "p", top[j].p);
		if (v->n) {
			char t[256];
			vocab_token_text(v, top[j].id, t, sizeof t);
			json_object_set_new(e, "text", json_string(t));
		} else {
			json_object_set_new(e, "text", json_null());
		}
		json_array_append_new(a, e);
	}
	return a;
}

static void print_text(const ModelInfo *in, const char *family, FwdPrecision prec,
		       const size_t *ids, size_t T, size_t V, const double *z, size_t K,
		       const Vocab *v, LogitsTop *top)
{
	printf("model   %s, %zu layers, D=%zu, vocab %zu, %s\n", family, in->n_layers,
	       in->shape.d_model, V, prec == FWD_F32 ? "float32" : "float64");
	printf("tokens  %zu%s%s\n", T, v->n ? ", vocabulary from " : ", no vocabulary",
	       v->n ? v->source : "");
	for (size_t t = 0; t < T; t++) {
		logits_top(z + t * V, V, K, top);
		char cur[256] = "";
		if (v->n)
			vocab_token_text(v, ids[t], cur, sizeof cur);
		printf("%5zu %6zu %-14s ->", t, ids[t], cur);
		for (size_t j = 0; j < K; j++) {
			char tt[256] = "";
			if (v->n)
				vocab_token_text(v, top[j].id, tt, sizeof tt);
			printf(" %zu%s%s%s (%.3f)", top[j].id, v->n ? " '" : "", tt, v->n ? "'" : "",
			       top[j].p);
		}
		printf("\n");
	}
}

int cli_logits(int argc, char **argv)
{
	RunOptions o;
	char err[1024];
	opts_defaults(&o);
	if (opts_parse(argc, argv, LOGITS_ACCEPT, &o, err, sizeof err)) {
		fprintf(stderr, "ropefold logits: %s\n", err);
		return 2;
	}
	if (o.help) {
		logits_help();
		return 0;
	}
	if (o.n_positional) {
		fprintf(stderr, "ropefold logits: %s: give the checkpoint as --model PATH\n",
			o.positional[0]);
		return 2;
	}
	if (!o.model_path) {
		fprintf(stderr, "ropefold logits: --model: the checkpoint to run is required\n");
		return 2;
	}
	Model *m;
	if (model_open(o.model_path, &m, err, sizeof err)) {
		fprintf(stderr, "ropefold logits: %s\n", err);
		return 2;
	}
	testhook_stop("open");
	int rc = 2;
	Vocab vocab;
	memset(&vocab, 0, sizeof vocab);
	size_t *ids = NULL, T = 0, V = 0, got = 0;
	void *z = NULL;
	double *zd = NULL;
	LogitsTop *top = NULL;
	json_t *doc = NULL;
	const ModelInfo *in = model_info(m);
	cli_model_note("logits", in->note);
	FwdPrecision prec = opts_given(&o, "--precision") && o.precision == PREC_F64 ? FWD_F64
										     : FWD_F32;
	RopeOverride ro = opts_rope_override(&o);
	Progress pr = {isatty(2), timer_now(), "forward"};
	ModelForwardOpts fo = {prec, &ro, 0, 0, 0, on_progress, &pr};
	ModelWeights *w;
	if (model_weights_open(m, prec, &w, err, sizeof err))
		goto fail;
	V = model_weights_vocab(w);
	const char *family = model_weights_family(w);
	model_weights_close(w);
	if (vocab_load(o.model_path, in->format, &vocab, err, sizeof err))
		goto fail;
	if (o.generate && !vocab.n) {
		snprintf(err, sizeof err, "--generate: %s carries no vocabulary to print the text with "
			 "(GGUF tokenizer.ggml.tokens, tokenizer.json, or tok512.bin beside a .bin)",
			 o.model_path);
		goto fail;
	}
	if (!(ids = make_tokens(&o, V, &T)))
		goto nomem;
	for (size_t t = 0; t < T; t++)
		if (ids[t] >= V) {
			snprintf(err, sizeof err, "--tokens: id %zu (position %zu) is out of range: %s "
				 "has a vocabulary of %zu", ids[t], t, o.model_path, V);
			goto fail;
		}
	if (model_forward(m, &fo, ids, T, &z, &V, err, sizeof err))
		goto fail;
	if (!(zd = as_double(z, prec, T * V)))
		goto nomem;
	free(z);
	z = NULL;
	if (o.out && write_npy(o.out, zd, T, V, err, sizeof err))
		goto fail;
	size_t K = o.top < V ? o.top : V;
	if (!(top = malloc(K * sizeof *top)))
		goto nomem;
	pr.what = "generate";
	if (o.generate && generate(m, &fo, ids, T, o.generate, &vocab, &got, err, sizeof err))
		goto fail;
	if (o.json) {
		doc = json_object();
		json_t *tok = json_array(), *tops = json_array();
		for (size_t t = 0; t < T; t++) {
			json_array_append_new(tok, json_integer((json_int_t)ids[t]));
			logits_top(zd + t * V, V, K, top);
			json_array_append_new(tops, top_json(top, K, &vocab));
		}
		json_object_set_new(doc, "model", json_string(o.model_path));
		json_object_set_new(doc, "family", json_string(family));
		json_object_set_new(doc, "precision", json_string(prec == FWD_F32 ? "f32" : "f64"));
		json_object_set_new(doc, "tokens", tok);
		json_object_set_new(doc, "vocab", json_integer((json_int_t)V));
		json_object_set_new(doc, "vocab_source", vocab.n ? json_string(vocab.source)
								 : json_null());
		json_object_set_new(doc, "top", tops);
		if (o.generate) {
			json_t *g = json_array();
			for (size_t k = 0; k < got; k++)
				json_array_append_new(g, json_integer((json_int_t)ids[T + k]));
			char *text = decode_text(&vocab, ids, T, got);
			json_object_set_new(doc, "generated", json_pack("{s:o, s:s}", "ids", g, "text",
									 text ? text : ""));
			free(text);
		} else {
			json_object_set_new(doc, "generated", json_null());
		}
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
		fputc('\n', stdout);
	} else {
		print_text(in, family, prec, ids, T, V, zd, K, &vocab, top);
		if (o.generate) {
			char *text = decode_text(&vocab, ids, T, got);
			printf("generated %zu tokens:", got);
			for (size_t k = 0; k < got; k++)
				printf(" %zu", ids[T + k]);
			printf("\n%s\n", text ? text : "");
			free(text);
		}
	}
	if (o.out && !o.json)
		printf("wrote %s (%zu x %zu float32)\n", o.out, T, V);
	rc = 0;
	goto done;
nomem:
	snprintf(err, sizeof err, "%s: out of memory", o.model_path);
fail:
	fprintf(stderr, "ropefold logits: %s\n", err);
done:
	json_decref(doc);
	free(top);
	free(zd);
	free(z);
	free(ids);
	vocab_free(&vocab);
	model_close(m);
	return rc;
}
