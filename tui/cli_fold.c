#include "config.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/fold.h"
#include "core/fold_inverse.h"
#include "core/timer.h"
#include "core/undo_proof.h"
#include "data/checksum.h"
#include "data/model.h"
#include "data/model_tensors.h"
#include "data/sidecar.h"
#include "data/writer.h"
#include "tui/cli_fold.h"
#include "tui/cli_info.h"
#include "tui/cli_verify.h"
#include "tui/options.h"
#include "tui/shared/testhook.h"

static void fold_help(void)
{
	printf("usage: ropefold fold --model IN --out OUT [fold options] [--layers all|N|N..M]\n"
	       "                     [--layer N] [--dtype keep|f32|f64] [--force] [--json]\n"
	       "       ropefold fold --model FOLDED --out OUT --undo SIDECAR [--force]\n\n"
	       "Write a copy of checkpoint IN (same format: an HF folder, a safetensors\n"
	       "file with its config.json, GGUF, llama2.c) with the fold of the fold\n"
	       "options baked into every chosen layer; every other byte is copied. The\n"
	       "default is the commuting per-kv-group fold with every assumption held,\n"
	       "drawn from --seed (layer i uses a seed derived from it, recorded).\n"
	       "Where a layer's learned QK-norm weight (Qwen3, OLMo2) differs within a\n"
	       "RoPE pair, R_q and R_k turn that pair by 0 or pi only, the angles that\n"
	       "commute with the norm, so the rewrite stays exact; one line on stderr\n"
	       "says how many pairs. With --permute-heads, QK-norm weights over all\n"
	       "heads (OLMo2) are written in the new head order (and put back by --undo).\n"
	       "Rotated tensors are stored in their own dtype (rounded; the relative\n"
	       "error is reported), or as F32 / F64 with --dtype f32 / f64 (GGUF and\n"
	       "safetensors; llama2.c holds F32 only). Runtimes cannot run F64 GGUF\n"
	       "weights (llama.cpp has no F64 matrix product): F64 is for an exact undo.\n"
	       "A sidecar JSON (OUT.fold.json, or fold.json inside an output folder)\n"
	       "records the seed, every rotation and checksums (SipHash-2-4) of each\n"
	       "rewritten tensor's bytes before and after. --undo SIDECAR refuses a\n"
	       "file the sidecar does not describe, applies the inverse and stores\n"
	       "each tensor back in the dtype it had before the fold: as a\n"
	       "rule bit for bit when the fold was stored wider than the original (bf16\n"
	       "with --dtype f32, f32 with --dtype f64); a fold re-stored in the\n"
	       "original's own dtype comes back within a unit of roundoff, not bit for\n"
	       "bit (rounding the rotated weights loses information). An undo reports\n"
	       "each layer with the seed its sidecar recorded, \"bit for bit\" where the\n"
	       "restored bytes have the original's checksums, else \"within the stored\n"
	       "dtype's rounding\"; it writes no sidecar (its output is the original\n"
	       "checkpoint) and, over an earlier OUT, removes that OUT's OUT.fold.json.\n"
	       "Writing is atomic (a temporary in OUT's folder, fsync, rename). OUT may\n"
	       "not be any file the run reads (by any path); an existing OUT is refused\n"
	       "unless --force, also one another run creates meanwhile. OUT with a\n"
	       "trailing slash names a folder: only for an HF folder checkpoint.\n"
	       "Exit 0 on success, 2 on bad usage or input.\n\n");
	opts_print_help(stdout, OPT_MODEL | OPT_FOLD | OPT_FOLDIO | OPT_JSON);
}

/* ---- signals: no temporaries left behind ----------------------------------- */

static void on_signal(int sig)
{
	writer_cleanup_signal();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* The signals whose default action ends the process: the temporaries
 * (and anything this commit published) go first, then the signal takes
 * its course. SIGXFSZ (a file size limit) is ignored instead, so that the
 * write fails with EFBIG and the run stops with one line and exit 2.
 * SIGKILL cannot be caught: the next fold to the same OUT removes the
 * temporary it leaves (data/writer.h). */
static const struct {
	int sig;
	bool ignore;
} fold_signals[] = {
	{SIGINT, false},  {SIGTERM, false}, {SIGHUP, false},    {SIGQUIT, false},
	{SIGPIPE, false}, {SIGALRM, false}, {SIGUSR1, false},   {SIGUSR2, false},
	{SIGXCPU, false}, {SIGXFSZ, true},  {SIGVTALRM, false}, {SIGPROF, false},
};

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof fold_signals / sizeof fold_signals[0]; i++)
		sigaddset(&sa.sa_mask, fold_signals[i].sig);
	for (size_t i = 0; i < sizeof fold_signals / sizeof fold_signals[0]; i++) {
		sa.sa_handler = fold_signals[i].ignore ? SIG_IGN : on_signal;
		sigaction(fold_signals[i].sig, &sa, NULL);
	}
}

/* ---- test hooks (ROPEFOLD_TEST_FAIL) ------------------------------------------ */

/* layer:N fails after N layers are written, kill:N kills the process
 * there (nothing cleans up). */
static int test_hook(size_t written, char *err, size_t errlen)
{
	const char *e = getenv("ROPEFOLD_TEST_FAIL");
	if (!e)
		return 0;
	unsigned long n;
	if (sscanf(e, "layer:%lu", &n) == 1 && written == n) {
		snprintf(err, errlen, "test failure injected after %zu layers", written);
		return -1;
	}
	if (sscanf(e, "kill:%lu", &n) == 1 && written == n)
		raise(SIGKILL);
	return 0;
}

/* Once every temporary is written, before anything is published: commit
 * fails there (an interrupted commit); pause:FILE creates FILE.paused and
 * waits until FILE exists (at most a minute), so that a test can run a
 * second fold to the same OUT, or send a signal, at exactly that point. */
static int test_before_publish(void *ctx, char *err, size_t errlen)
{
	const char *e = ctx;
	if (!strcmp(e, "commit")) {
		snprintf(err, errlen, "test failure injected before the rename");
		return -1;
	}
	if (strncmp(e, "pause:", 6))
		return 0;
	char mark[4200];
	snprintf(mark, sizeof mark, "%s.paused", e + 6);
	FILE *f = fopen(mark, "w");
	if (f)
		fclose(f);
	struct timespec tick = {0, 10 * 1000 * 1000};
	for (int i = 0; i < 6000; i++) {
		if (access(e + 6, F_OK) == 0)
			return 0;
		nanosleep(&tick, NULL);
	}
	snprintf(err, errlen, "test pause: %s did not appear", e + 6);
	return -1;
}

static void progress(bool tty, size_t done, size_t total, double t0)
{
	if (!tty)
		return;
	double el = timer_now() - t0, rate = el > 0 ? (double)done / el : 0;
	double left = rate > 0 ? (double)(total - done) / rate : 0;
	fprintf(stderr, "\rfold: layer %zu of %zu, %.1f layers/s, %.0fs left   ", done, total,
		rate, left);
	if (done == total)
		fputs("\r\033[K", stderr);
	fflush(stderr);
}

/* ---- the fold --------------------------------------------------------------- */

/* Everything one run needs. */
typedef struct {
	RunOptions o;
	Model *m;
	Writer *w;
	Sidecar *undo;        /* the sidecar undone, or NULL */
	Sidecar *record;      /* the sidecar written */
	size_t *layers;       /* the layers to rewrite, in order */
	size_t nlayers;
	size_t *undo_index;   /* per layer: its entry in the undone sidecar */
	double *rel;          /* per layer: max relative rounding error */
	uint64_t *seeds;      /* per layer: drawn, or (undo) as recorded */
	bool *exact;          /* undo, per layer: provably bit for bit */
	bool *seed_known;     /* undo, per layer: the sidecar records a seed */
	bool all_exact;       /* undo: every layer provably bit for bit */
	bool stale_removed;   /* undo: an old OUT.fold.json was removed */
	double max_rel, unit;
	bool progress;        /* on stderr when it is a terminal */
	bool seed_as_is;      /* every layer drawn from o.fold.seed itself */
	size_t qk_pairs;      /* RoPE pairs held to 0 or pi for a QK-norm,
			       * summed over layers (o.fold.qk_norm_exact) */
	size_t qk_layers;     /* layers with such pairs or a held tail */
	bool qk_tail;         /* some non-rotary block held to sign flips */
	bool checked;         /* undo: the sidecar has checksums, so it was
			       * checked against the folded file and "bit for
			       * bit" is proven by them */
	const char *replace_hint;  /* how this front end asks for force */
	char err[1024];
} FoldRun;

/* A float dtype's name (the sidecar's dtype_in) into *dt: -1 for any
 * other name, which a fold never records. */
static int parse_float(const char *name, StoreDtype *dt)
{
	return dtype_parse(name, dt) || !dtype_is_float(*dt) ? -1 : 0;
}

/* The dtype tensor t of the k-th layer is stored in. */
static int out_dtype(FoldRun *r, size_t k, const TensorRef *t, StoreDtype *dt)
{
	if (r->undo) {
		const char *in = sidecar_tensor_dtype_in(r->undo, r->undo_index[k], t->name);
		if (in && !parse_float(in, dt))
			return 0;
	}
	if (r->o.dtype && strcmp(r->o.dtype, "keep")) {
		*dt = !strcmp(r->o.dtype, "f64") ? STORE_F64 : STORE_F32;
		return 0;
	}
	*dt = t->dtype;
	if (dtype_is_float(t->dtype))
		return 0;
	snprintf(r->err, sizeof r->err, "%s: tensor %s is %s: rotated weights cannot be "
		 "re-stored in a block quantization; use --dtype f32", t->file, t->name,
		 t->dtype_name);
	return -1;
}

/* Whether the k-th layer's QK-norm weight t (over all heads) is rewritten:
 * it moves with its heads when the fold reorders the kv groups, and an
 * undo moves it back when the fold recorded it (a sidecar that does not
 * name it left it in place). It keeps its own dtype: nothing rounds it. */
static bool norm_moves(const FoldRun *r, size_t k, const LayerTensorRefs *lt,
		       const TensorRef *t, StoreDtype *dt)
{
	if (!t || !lt->qk_norm_all_heads)
		return false;
	const char *in = NULL;
	if (r->undo) {
		in = sidecar_tensor_dtype_in(r->undo, r->undo_index[k], t->name);
		if (!in)
			return false;
	} else if (!r->o.fold.permute_heads || model_info(r->m)->shape.n_kv_heads < 2) {
		return false;
	}
	if (!in || parse_float(in, dt))
		*dt = t->dtype;
	return true;
}

/* A tensor the k-th layer rewrites, and the dtype it is stored in. */
typedef struct {
	const TensorRef *t;
	StoreDtype dt;
	int q_norm;           /* -1 attention tensor, 0 q_norm, 1 k_norm */
} Rewrite;

enum { MAX_REWRITES = ATT_COUNT + 2 };

/* The tensors the k-th layer rewrites: the folded attention tensors, and
 * the QK-norm weights that move with their heads. */
static int layer_rewrites(FoldRun *r, size_t k, const LayerTensorRefs *lt, Rewrite *out,
			  size_t *n)
{
	*n = 0;
	for (int a = 0; a < ATT_COUNT; a++) {
		if (!lt->t[a] || !model_tensor_folded((AttnTensor)a))
			continue;
		out[*n] = (Rewrite){lt->t[a], STORE_F32, -1};
		if (out_dtype(r, k, lt->t[a], &out[*n].dt))
			return -1;
		++*n;
	}
	for (int q = 0; q < 2; q++) {
		const TensorRef *t = q ? lt->k_norm : lt->q_norm;
		StoreDtype dt;
		if (!norm_moves(r, k, lt, t, &dt))
			continue;
		if (!dtype_is_float(dt)) {
			snprintf(r->err, sizeof r->err, "%s: tensor %s is %s: its heads cannot be "
				 "reordered in a block quantization", t->file, t->name, t->dtype_name);
			return -1;
		}
		out[(*n)++] = (Rewrite){t, dt, q};
	}
	return 0;
}

/* Mark every tensor a fold changes in the chosen layers. */
static int mark_tensors(FoldRun *r)
{
	r->unit = 0;
	for (size_t k = 0; k < r->nlayers; k++) {
		LayerTensorRefs lt;
		Rewrite rw[MAX_REWRITES];
		size_t n;
		if (model_layer_tensors(r->m, r->layers[k], &lt, r->err, sizeof r->err) ||
		    layer_rewrites(r, k, &lt, rw, &n))
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (writer_replace(r->w, rw[i].t, rw[i].dt, r->err, sizeof r->err))
				return -1;
			double u = dtype_unit_roundoff(rw[i].dt);
			if (rw[i].q_norm < 0 && u > r->unit)
				r->unit = u;
		}
	}
	return 0;
}

/* ---- undo: does the sidecar describe the folded file? ----------------------- */

/* The k-th layer's rewritten tensors against what the sidecar recorded:
 * each recorded, each holding the bytes the fold wrote (checksum_out),
 * and nothing recorded that the layer does not have. */
static int check_undo_layer(FoldRun *r, size_t k)
{
	LayerTensorRefs lt;
	Rewrite rw[MAX_REWRITES];
	size_t n, li = r->layers[k], idx = r->undo_index[k];
	if (model_layer_tensors(r->m, li, &lt, r->err, sizeof r->err) ||
	    layer_rewrites(r, k, &lt, rw, &n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		SidecarTensor st;
		uint64_t h;
		char got[17], want[17];
		if (sidecar_tensor_find(r->undo, idx, rw[i].t->name, &st)) {
			snprintf(r->err, sizeof r->err, "%s: layer %zu: records no tensor %s, which "
				 "the fold rewrites; not the sidecar of %s", r->o.undo, li,
				 rw[i].t->name, r->o.model_path);
			return -1;
		}
		if (checksum_tensor(rw[i].t, &h, r->err, sizeof r->err))
			return -1;
		if (h != st.sum_out) {
			checksum_format(h, got);
			checksum_format(st.sum_out, want);
			snprintf(r->err, sizeof r->err, "%s: tensor %s (layer %zu) is not what %s "
				 "recorded (checksum %s, recorded %s): the sidecar belongs to another "
				 "file", rw[i].t->file, rw[i].t->name, li, r->o.undo, got, want);
			return -1;
		}
	}
	for (size_t j = 0; j < sidecar_tensor_count(r->undo, idx); j++) {
		SidecarTensor st;
		bool found = false;
		sidecar_tensor_get(r->undo, idx, j, &st);
		for (size_t i = 0; i < n && !found; i++)
			found = !strcmp(rw[i].t->name, st.name);
		if (!found) {
			snprintf(r->err, sizeof r->err, "%s: layer %zu: records tensor %s, which %s "
				 "does not rewrite there; not its sidecar", r->o.undo, li, st.name,
				 r->o.model_path);
			return -1;
		}
	}
	return 0;
}

/* Refuse a sidecar that does not describe the folded checkpoint (older
 * sidecars without checksums cannot be checked: r->checked says so). */
static int check_undo_input(FoldRun *r)
{
	r->checked = sidecar_has_checksums(r->undo);
	for (size_t k = 0; r->checked && k < r->nlayers; k++)
		if (check_undo_layer(r, k))
			return -1;
	return 0;
}

/* Store values (t->nelem) as tensor t of the k-th layer, in dtype dt. A
 * fold records it in the sidecar with the checksums of its stored bytes
 * before and after; an undo compares the bytes it wrote with those the
 * sidecar recorded of the original (*same stays true while they agree). */
static int store_tensor(FoldRun *r, size_t k, const TensorRef *t, StoreDtype dt,
			const double *v, WriterRounding *wr, bool *same)
{
	uint64_t before = 0;
	if (!r->undo && checksum_tensor(t, &before, r->err, sizeof r->err))
		return -1;
	if (writer_put(r->w, t, v, wr, r->err, sizeof r->err))
		return -1;
	if (r->undo) {
		SidecarTensor st;
		*same = *same && !sidecar_tensor_find(r->undo, r->undo_index[k], t->name, &st) &&
			st.sum_in == wr->checksum;
		return 0;
	}
	SidecarTensor rec = {t->name, t->dtype_name, dtype_name(dt), before,
			     wr->checksum};
	if (sidecar_add_tensor(r->record, &rec)) {
		snprintf(r->err, sizeof r->err, "%s: tensor %s: cannot record it", r->o.out,
			 t->name);
		return -1;
	}
	return 0;
}

/* Store the k-th layer's QK-norm weights over all heads in the order plan
 * gives the heads (core's fold_apply moves them so in memory). */
static int put_norms(FoldRun *r, size_t k, const LayerTensorRefs *lt, const FoldPlan *plan,
		     bool *same)
{
	const LayerShape *s = &model_info(r->m)->shape;
	for (int q = 0; q < 2; q++) {
		const TensorRef *t = q ? lt->k_norm : lt->q_norm;
		StoreDtype dt;
		WriterRounding wr;
		if (!norm_moves(r, k, lt, t, &dt))
			continue;
		double *v = malloc(t->nelem * sizeof(double));
		if (!v) {
			snprintf(r->err, sizeof r->err, "%s: out of memory", t->name);
			return -1;
		}
		int bad = model_norm_permute(t, q ? 1 : s->n_heads / s->n_kv_heads, s->head_dim,
					     s->n_kv_heads, plan->perm, v, r->err, sizeof r->err) ||
			  store_tensor(r, k, t, dt, v, &wr, same);
		free(v);
		if (bad)
			return -1;
	}
	return 0;
}

/* The plan of the k-th layer: drawn, or the inverse of the recorded one. */
static int layer_plan(FoldRun *r, size_t k, const Layer *a, FoldPlan *plan)
{
	if (r->undo) {
		FoldPlan p;
		size_t li;
		if (sidecar_layer_plan(r->undo, r->undo_index[k], &li, &p, r->err, sizeof r->err))
			return -1;
		RfStatus st = fold_inverse_plan(&p, plan);
		fold_plan_free(&p);
		if (st != RF_OK) {
			snprintf(r->err, sizeof r->err, "%s: layer %zu: cannot invert the recorded "
				 "rotations: %s", r->o.undo, li, rf_status_str(st));
			return -1;
		}
		return 0;
	}
	FoldConfig cfg = r->o.fold;
	cfg.seed = r->seeds[k] = r->seed_as_is ? r->o.fold.seed
					       : sidecar_layer_seed(r->o.seed, r->layers[k]);
	RfStatus st = fold_plan_build(a, &cfg, plan);
	if (st != RF_OK) {
		snprintf(r->err, sizeof r->err, "%s: layer %zu: %s", r->o.model_path, r->layers[k],
			 rf_status_str(st));
		return -1;
	}
	r->qk_pairs += plan->qk_norm_pinned;
	r->qk_layers += plan->qk_norm_pinned || plan->qk_norm_tail_pinned;
	r->qk_tail = r->qk_tail || plan->qk_norm_tail_pinned;
	return 0;
}

/* ---- undo: is the restored checkpoint provably the original? ------------- */

/* The tensor holding rewritten array i (core/undo_proof.h) of a layer. */
static const TensorRef *array_tensor(const LayerTensorRefs *lt, UndoArray i)
{
	static const AttnTensor split[UNDO_ARRAYS] = {ATT_Q, ATT_K, ATT_V, ATT_O,
						      ATT_BQ, ATT_BK, ATT_BV};
	static const AttnTensor fused[UNDO_ARRAYS] = {ATT_QKV, ATT_QKV, ATT_QKV, ATT_O,
						      ATT_BQKV, ATT_BQKV, ATT_BQKV};
	return lt->t[split[i]] ? lt->t[split[i]] : lt->t[fused[i]];
}

/* Whether the undo of the k-th layer provably gives back, bit for bit, the
 * values stored before the fold (core/undo_proof.h): a is the folded
 * layer, b the undo's values before rounding, inv the undo's plan. A
 * tensor stored back in a dtype other than the one the sidecar recorded
 * for it is not proven. Returns -1 on no memory. */
static int undo_exact(FoldRun *r, size_t k, const Layer *a, const Layer *b,
		      const FoldPlan *inv, const LayerTensorRefs *lt, bool *exact)
{
	UndoStorage us;
	for (int i = 0; i < UNDO_ARRAYS; i++) {
		const TensorRef *tr = array_tensor(lt, (UndoArray)i);
		StoreDtype dt, want;
		const char *in = tr ? sidecar_tensor_dtype_in(r->undo, r->undo_index[k], tr->name)
				    : NULL;
		us.folded[i] = tr ? tr->dtype : STORE_UNSUPPORTED;
		us.restored[i] = tr && !out_dtype(r, k, tr, &dt) && in && !parse_float(in, &want) &&
					 want == dt ? dt : STORE_UNSUPPORTED;
	}
	FoldPlan fwd;
	size_t li;
	if (sidecar_layer_plan(r->undo, r->undo_index[k], &li, &fwd, r->err, sizeof r->err))
		return -1;
	RfStatus st = undo_proof_exact(a, b, &fwd, inv, &us, exact);
	fold_plan_free(&fwd);
	if (st != RF_OK) {
		snprintf(r->err, sizeof r->err, "layer %zu: out of memory", r->layers[k]);
		return -1;
	}
	return 0;
}

/* Load, fold and store the k-th layer. */
static int fold_layer(FoldRun *r, size_t k)
{
	size_t i = r->layers[k];
	Layer a, b;
	FoldPlan plan;
	LayerTensorRefs lt;
	memset(&b, 0, sizeof b);
	memset(&plan, 0, sizeof plan);
	if (model_load_layer(r->m, i, &a, r->err, sizeof r->err))
		return -1;
	int rc = -1;
	if (!r->undo)
		opts_apply_rope(&r->o, &a.rope);
	if (layer_plan(r, k, &a, &plan) ||
	    model_layer_tensors(r->m, i, &lt, r->err, sizeof r->err))
		goto out;
	RfStatus st = fold_apply(&a, &plan, &b);
	if (st != RF_OK) {
		snprintf(r->err, sizeof r->err, "%s: layer %zu: %s", r->o.model_path, i,
			 rf_status_str(st));
		goto out;
	}
	if (sidecar_add_layer(r->record, i, r->seeds[k], &plan, &a.rope, 0) != 0) {
		snprintf(r->err, sizeof r->err, "%s: layer %zu: cannot record the rotations",
			 r->o.out, i);
		goto out;
	}
	double rel = 0;
	bool same = true;   /* undo: every tensor written is the original's */
	for (int t = 0; t < ATT_COUNT; t++) {
		const TensorRef *tr = lt.t[t];
		if (!tr || !model_tensor_folded((AttnTensor)t))
			continue;
		double *v = malloc(tr->nelem * sizeof(double));
		WriterRounding wr;
		StoreDtype dt;
		if (!v) {
			snprintf(r->err, sizeof r->err, "%s: out of memory", tr->name);
			goto out;
		}
		int bad = model_tensor_pack(&b, lt.qkv_kind, (AttnTensor)t, v) ||
			  out_dtype(r, k, tr, &dt) || store_tensor(r, k, tr, dt, v, &wr, &same);
		free(v);
		if (bad)
			goto out;
		double e = wr.max_abs > 0 ? wr.max_abs_err / wr.max_abs : 0;
		if (e > rel)
			rel = e;
	}
	if (put_norms(r, k, &lt, &plan, &same))
		goto out;
	if (r->undo && r->checked) {
		r->exact[k] = same;   /* proven either way by the checksums */
		r->all_exact = r->all_exact && same;
	} else if (r->undo) {
		if (undo_exact(r, k, &a, &b, &plan, &lt, &r->exact[k]))
			goto out;
		r->all_exact = r->all_exact && r->exact[k];
	}
	sidecar_set_rounding(r->record, rel);
	r->rel[k] = rel;
	if (rel > r->max_rel)
		r->max_rel = rel;
	rc = 0;
out:
	fold_plan_free(&plan);
	layer_free(&a);
	layer_free(&b);
	return rc;
}

/* The seed the undone sidecar records for each layer (for the report). */
static void undo_seeds(FoldRun *r)
{
	for (size_t k = 0; k < r->nlayers; k++)
		r->seed_known[k] = sidecar_layer_seed_of(r->undo, r->undo_index[k], &r->seeds[k]);
}

/* The layers to rewrite: --layers, or those the undone sidecar records. */
static int choose_layers(FoldRun *r)
{
	const ModelInfo *in = model_info(r->m);
	if (r->undo) {
		size_t n = sidecar_layer_count(r->undo);
		r->layers = calloc(n ? n : 1, sizeof *r->layers);
		r->undo_index = calloc(n ? n : 1, sizeof *r->undo_index);
		if (!r->layers || !r->undo_index)
			goto nomem;
		for (size_t k = 0; k < n; k++) {
			FoldPlan p;
			size_t li;
			if (sidecar_layer_plan(r->undo, k, &li, &p, r->err, sizeof r->err))
				return -1;
			fold_plan_free(&p);
			if (li >= in->n_layers) {
				snprintf(r->err, sizeof r->err, "%s: layer %zu: the checkpoint has %zu "
					 "layers", r->o.undo, li, in->n_layers);
				return -1;
			}
			for (size_t j = 0; j < r->nlayers; j++) {
				if (r->layers[j] == li) {
					snprintf(r->err, sizeof r->err, "%s: layer %zu recorded twice",
						 r->o.undo, li);
					return -1;
				}
			}
			r->undo_index[r->nlayers] = k;
			r->layers[r->nlayers++] = li;
		}
	} else {
		size_t lo, hi;
		if (cli_parse_layers(r->o.layers_flag, r->o.layers, in->n_layers, &lo, &hi, r->err,
				     sizeof r->err))
			return -1;
		r->layers = calloc(hi - lo + 1, sizeof *r->layers);
		if (!r->layers)
			goto nomem;
		for (size_t i = lo; i <= hi; i++)
			r->layers[r->nlayers++] = i;
	}
	r->rel = calloc(r->nlayers ? r->nlayers : 1, sizeof *r->rel);
	r->seeds = calloc(r->nlayers ? r->nlayers : 1, sizeof *r->seeds);
	r->exact = calloc(r->nlayers ? r->nlayers : 1, sizeof *r->exact);
	r->seed_known = calloc(r->nlayers ? r->nlayers : 1, sizeof *r->seed_known);
	if (!r->rel || !r->seeds || !r->exact || !r->seed_known)
		goto nomem;
	if (r->undo)
		undo_seeds(r);
	r->all_exact = r->undo != NULL;
	return 0;
nomem:
	snprintf(r->err, sizeof r->err, "out of memory");
	return -1;
}

/* A number, or JSON null when undo cannot know it. */
static json_t *json_known(bool known, double v)
{
	return known ? json_real(v) : json_null();
}

static void print_json(const FoldRun *r, const char *dt)
{
	bool undo = r->undo != NULL;
	json_t *layers = json_array();
	for (size_t k = 0; k < r->nlayers; k++) {
		json_t *l = json_pack("{s:I}", "layer", (json_int_t)r->layers[k]);
		/* an undo reports the seed the sidecar recorded, and rounding
		 * only where it is known: 0 when restored bit for bit */
		json_object_set_new(l, "seed", !undo || r->seed_known[k]
						 ? json_integer((json_int_t)r->seeds[k]) : json_null());
		json_object_set_new(l, "max_rel_rounding",
				    undo ? json_known(r->exact[k], 0) : json_real(r->rel[k]));
		if (undo)
			json_object_set_new(l, "bit_for_bit", json_boolean(r->exact[k]));
		json_array_append_new(layers, l);
	}
	json_t *doc = json_pack("{s:s, s:s, s:o, s:s, s:b, s:I, s:s, s:o, s:o}",
				"input", r->o.model_path, "output", r->o.out, "sidecar",
				undo ? json_null() : json_string(writer_sidecar_path(r->w)),
				"format", model_format_name(model_info(r->m)->format), "undo", undo,
				"layers_folded", (json_int_t)r->nlayers, "stored_dtype", dt,
				"max_rel_rounding",
				undo ? json_known(r->all_exact, 0) : json_real(r->max_rel),
				"eps_units",
				undo ? json_known(r->all_exact, 0)
				     : json_real(r->unit > 0 ? r->max_rel / r->unit : 0.0));
	if (undo) {
		json_object_set_new(doc, "bit_for_bit", json_boolean(r->all_exact));
		json_object_set_new(doc, "checksums", json_boolean(r->checked));
		json_object_set_new(doc, "removed_sidecar", r->stale_removed
				    ? json_string(writer_sidecar_path(r->w)) : json_null());
	}
	json_object_set_new(doc, "qk_norm_pinned_pairs", json_integer((json_int_t)r->qk_pairs));
	json_object_set_new(doc, "layers", layers);
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
	fputc('\n', stdout);
	json_decref(doc);
}

static void print_summary(const FoldRun *r)
{
	const char *dt = dtype_name_of_roundoff(r->unit);
	if (r->o.json) {
		print_json(r, dt);
		return;
	}
	printf("%s %zu layer%s of %s (%s) into %s\n", r->undo ? "undid the fold of" : "folded",
	       r->nlayers, r->nlayers == 1 ? "" : "s", r->o.model_path,
	       model_format_name(model_info(r->m)->format), r->o.out);
	if (!r->undo) {
		for (size_t k = 0; k < r->nlayers; k++)
			printf("  layer %zu: seed %llu, relative rounding error %.3g\n",
			       r->layers[k], (unsigned long long)r->seeds[k], r->rel[k]);
		printf("max relative rounding error %.3g (%.2f units of %s roundoff)\n",
		       r->max_rel, r->unit > 0 ? r->max_rel / r->unit : 0.0, dt);
		printf("sidecar %s\n", writer_sidecar_path(r->w));
		return;
	}
	for (size_t k = 0; k < r->nlayers; k++) {
		char seed[32] = "seed not recorded";
		if (r->seed_known[k])
			snprintf(seed, sizeof seed, "seed %llu", (unsigned long long)r->seeds[k]);
		printf("  undid the fold of layer %zu (%s): %s%s%s\n", r->layers[k], seed,
		       r->exact[k] ? "bit for bit" : "within ", r->exact[k] ? "" : dt,
		       r->exact[k] ? "" : " rounding");
	}
	if (r->all_exact && r->checked)
		printf("restored bit for bit: every rewritten tensor holds the values stored "
		       "before the fold (its checksum is the original's)\n");
	else if (r->all_exact)
		printf("restored bit for bit: every rewritten tensor holds the values stored "
		       "before the fold (by the rounding bound; no checksums recorded)\n");
	else if (r->checked)
		printf("restored within the stored dtype's rounding (%s), not bit for bit (the "
		       "checksums differ from the original's)\n", dt);
	else
		printf("restored within the stored dtype's rounding (%s), not provably bit for "
		       "bit, if the sidecar belongs to %s (it records no checksums to check "
		       "that)\n", dt, r->o.model_path);
	printf("no sidecar written: an undo's output is the original checkpoint\n");
	if (r->stale_removed)
		printf("removed %s, the sidecar of the OUT this replaced\n",
		       writer_sidecar_path(r->w));
}

/* The one line that says a learned QK-norm limited some angles (SPEC 1:
 * only 0 and pi commute with a weight that differs within a pair). */
static void note_qk_norm(const FoldRun *r)
{
	if (!r->qk_layers)
		return;
	const char *ls = r->qk_layers == 1 ? "" : "s";
	if (r->qk_pairs)
		fprintf(stderr, "ropefold fold: QK-norm weights differ within %zu RoPE pair%s "
			"in %zu layer%s: those pairs turn by 0 or pi only%s (still an exact "
			"rewrite)\n", r->qk_pairs, r->qk_pairs == 1 ? "" : "s", r->qk_layers, ls,
			r->qk_tail ? ", and the non-rotary coordinates only flip signs" : "");
	else
		fprintf(stderr, "ropefold fold: QK-norm weights vary on the non-rotary "
			"coordinates in %zu layer%s: those only flip signs (still an exact "
			"rewrite)\n", r->qk_layers, ls);
}

/* One stderr line each: what a user should know about what was written. */
static void print_notes(const FoldRun *r)
{
	size_t stale = writer_stale_removed(r->w);
	if (stale)
		fprintf(stderr, "ropefold fold: removed %zu stale temporar%s of %s left by a fold "
			"whose process is gone\n", stale, stale == 1 ? "y" : "ies", r->o.out);
	if (r->undo && !r->checked)
		fprintf(stderr, "ropefold fold: note: %s records no checksums (written by an older "
			"ropefold): nothing checked that it belongs to %s, and \"bit for bit\" "
			"below rests on the rounding bound alone\n", r->o.undo, r->o.model_path);
	if (!r->undo && r->o.dtype && !strcmp(r->o.dtype, "f64") &&
	    model_info(r->m)->format == MODEL_FMT_GGUF)
		fprintf(stderr, "ropefold fold: note: %s holds F64 weights, which GGUF runtimes "
			"(llama.cpp) cannot run; F64 is for an exact --undo\n", r->o.out);
}

static void fold_run_done(FoldRun *r)
{
	writer_free(r->w);
	sidecar_free(r->undo);
	sidecar_free(r->record);
	if (r->m)
		model_close(r->m);
	free(r->layers);
	free(r->undo_index);
	free(r->rel);
	free(r->seeds);
	free(r->exact);
	free(r->seed_known);
}

/* An undo written over an earlier OUT (--force) leaves no sidecar of that
 * OUT beside it: OUT is now the original. (A folder OUT is replaced whole;
 * the sidecar given to --undo itself is left alone.) */
static void remove_stale_sidecar(FoldRun *r)
{
	const char *sc = writer_sidecar_path(r->w);
	struct stat a, b;
	if (stat(sc, &a) != 0 || !S_ISREG(a.st_mode))
		return;
	if (stat(r->o.undo, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return;
	r->stale_removed = unlink(sc) == 0;
}

/* The sidecar to undo: loaded for this checkpoint's shape and format. */
static int load_undo(FoldRun *r)
{
	const ModelInfo *in = model_info(r->m);
	if (sidecar_load(r->o.undo, &in->shape, &r->undo, r->err, sizeof r->err))
		return -1;
	const char *f = sidecar_format(r->undo), *g = model_format_name(in->format);
	if (strcmp(f, "?") && strcmp(f, g)) {
		snprintf(r->err, sizeof r->err, "%s: records a fold of a %s checkpoint; %s is %s",
			 r->o.undo, f, r->o.model_path, g);
		return -1;
	}
	return 0;
}

/* The writer, with the test hook of ROPEFOLD_TEST_FAIL when it is set. */
static int open_writer(FoldRun *r)
{
	const char *hook = getenv("ROPEFOLD_TEST_FAIL");
	WriterOptions wo = {r->o.force, !r->o.undo, r->o.undo, r->replace_hint,
			    hook ? test_before_publish : NULL, (void *)hook};
	return writer_new(r->m, r->o.model_path, r->o.out, &wo, &r->w, r->err, sizeof r->err);
}

static int run(FoldRun *r)
{
	RunOptions *o = &r->o;
	if (model_open(o->model_path, &r->m, r->err, sizeof r->err))
		return -1;
	const ModelInfo *in = model_info(r->m);
	if (r->progress)   /* a run that may talk on stderr: not the explorer's */
		cli_model_note("fold", in->note);
	if (!o->undo && opts_check_rope(o, in->shape.head_dim, o->model_path, r->err, sizeof r->err))
		return -1;
	if (o->undo && load_undo(r))
		return -1;
	if (choose_layers(r) || open_writer(r) || mark_tensors(r) ||
	    (r->undo && check_undo_input(r)))
		return -1;
	SidecarHead h = {PACKAGE_VERSION, o->model_path, o->out,
			 model_format_name(in->format), o->undo, o->dtype ? o->dtype : "keep",
			 o->seed, &o->fold, in->shape, in->rope};
	if (!o->undo)
		opts_apply_rope(o, &h.rope);
	if (!(r->record = sidecar_new(&h))) {
		snprintf(r->err, sizeof r->err, "out of memory");
		return -1;
	}
	if (writer_start(r->w, r->err, sizeof r->err))
		return -1;
	testhook_stop("open");
	bool tty = r->progress && isatty(2);
	double t0 = timer_now();
	for (size_t k = 0; k < r->nlayers; k++) {
		if (fold_layer(r, k) || test_hook(k + 1, r->err, sizeof r->err))
			return -1;
		progress(tty, k + 1, r->nlayers, t0);
	}
	/* An undo's output is the original checkpoint: no sidecar, which
	 * would describe the inverse fold and invite an undo of the undo. */
	char *text = r->undo ? NULL : sidecar_dump(r->record);
	if (!r->undo && !text) {
		snprintf(r->err, sizeof r->err, "out of memory");
		return -1;
	}
	int rc = writer_commit(r->w, text, r->err, sizeof r->err);
	free(text);
	if (!rc && r->undo)
		remove_stale_sidecar(r);
	return rc;
}

int cli_fold_write(const RunOptions *o, const FoldWriteOptions *wo, FoldOutcome *res,
		   char *err, size_t errlen)
{
	FoldRun r;
	memset(&r, 0, sizeof r);
	r.o = *o;
	r.progress = wo && wo->progress;
	r.seed_as_is = wo && wo->seed_as_is;
	r.replace_hint = wo ? wo->replace_hint : NULL;
	memset(res, 0, sizeof *res);
	int rc = 0;
	if (!o->model_path || !o->out) {
		snprintf(r.err, sizeof r.err, "a checkpoint and an output path are needed");
		rc = -1;
	} else {
		rc = run(&r);
	}
	if (rc) {
		snprintf(err, errlen, "%s", r.err);
	} else {
		res->layers = r.nlayers;
		res->max_rel_rounding = r.max_rel;
		snprintf(res->sidecar, sizeof res->sidecar, "%s",
			 r.undo ? "" : writer_sidecar_path(r.w));
	}
	fold_run_done(&r);
	return rc;
}

int cli_fold(int argc, char **argv)
{
	FoldRun r;
	memset(&r, 0, sizeof r);
	opts_defaults(&r.o);
	if (opts_parse(argc, argv, OPT_MODEL | OPT_FOLD | OPT_FOLDIO | OPT_JSON, &r.o, r.err,
		       sizeof r.err)) {
		fprintf(stderr, "ropefold fold: %s\n", r.err);
		return 2;
	}
	if (r.o.help) {
		fold_help();
		return 0;
	}
	const char *bad = !r.o.model_path ? "--model IN is required (a checkpoint to fold)"
			: !r.o.out ? "--out OUT is required"
			: r.o.n_positional ? "unexpected argument"
			: NULL;
	if (bad) {
		fprintf(stderr, "ropefold fold: %s%s%s\n", bad, r.o.n_positional ? " " : "",
			r.o.n_positional ? r.o.positional[0] : "");
		return 2;
	}
	install_signals();
	r.progress = true;
	r.replace_hint = "use --force to replace it";
	/* A written fold is an exact rewrite: angles a learned QK-norm does
	 * not commute with are left out. (check and the explorer draw
	 * arbitrary angles, what the theorem alone predicts.) */
	r.o.fold.qk_norm_exact = true;
	int rc = run(&r) ? 2 : 0;
	if (rc) {
		if (isatty(2))
			fputs("\r\033[K", stderr);
		fprintf(stderr, "ropefold fold: %s\n", r.err);
	} else {
		note_qk_norm(&r);
		print_notes(&r);
		print_summary(&r);
	}
	fold_run_done(&r);
	return rc;
}
