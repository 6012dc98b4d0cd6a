#include "config.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/timer.h"
#include "data/fold_job.h"
#include "data/model.h"
#include "data/writer.h"
#include "tui/cli/fold.h"
#include "tui/cli/info.h"
#include "tui/shared/options.h"
#include "tui/shared/testhook.h"

static void fold_help(void)
{
	printf("usage: ropefold fold --model IN --out OUT [fold options] [--layers all|N|N..M]\n"
	       "                     [--layer N] [--dtype keep|f32|f64|f16|bf16|q8_0|q4_k|...]\n"
	       "                     [--force] [--json]\n"
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
	       "A block-quantized tensor (GGUF Q4_K, Q6_K, Q8_0, ...) cannot keep its\n"
	       "blocks: its rotated values are off their grids, so it is stored as F16\n"
	       "(one stderr line says so), or quantized again with --dtype q8_0, q4_k,\n"
	       "... (llama.cpp's reference quantizers; the error this adds is reported\n"
	       "against the bound of the input's own quantization). Untouched tensors\n"
	       "are copied byte for byte.\n"
	       "A sidecar JSON (OUT.fold.json, or fold.json inside an output folder)\n"
	       "records the seed, every rotation and checksums (SipHash-2-4) of each\n"
	       "rewritten tensor's bytes before and after. --undo SIDECAR refuses a\n"
	       "file the sidecar does not describe, applies the inverse and stores\n"
	       "each tensor back in the dtype it had before the fold: as a\n"
	       "rule bit for bit when the fold was stored wider than the original (bf16\n"
	       "with --dtype f32, f32 with --dtype f64); a fold re-stored in the\n"
	       "original's own dtype comes back within a unit of roundoff, not bit for\n"
	       "bit (rounding the rotated weights loses information); a block-quantized\n"
	       "original is quantized again, its values within its quantization step,\n"
	       "its bytes (as a rule) not the original's. An undo reports\n"
	       "each layer with the seed its sidecar recorded, \"bit for bit\" where the\n"
	       "restored bytes have the original's checksums, else \"within the stored\n"
	       "dtype's rounding\"; it writes no sidecar (its output is the original\n"
	       "checkpoint) and, over an earlier OUT, removes that OUT's OUT.fold.json.\n"
	       "--residual hadamard|haar rotates the whole residual stream by one R1\n"
	       "(every layer), each RMSNorm weight fused into the linears reading it\n"
	       "first; a tied head is untied in every format. --vo sets R2, V and\n"
	       "O per kv group. Post-norm, sandwich-norm and LayerNorm families are\n"
	       "refused with the reason; the sidecar records it all for --undo.\n"
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

/* ---- the run as it goes ------------------------------------------------------ */

/* Progress on stderr when it is a terminal. */
typedef struct {
	bool tty;
	double t0;
} Progress;

static void on_opened(void *ctx, const ModelInfo *info)
{
	(void)ctx;
	cli_model_note("fold", info->note);
}

/* The test hooks first (ROPEFOLD_TEST_FAIL), then the progress line. */
static int on_layer(void *ctx, size_t done, size_t total, char *err, size_t errlen)
{
	Progress *p = ctx;
	if (testhook_fold_layer(done, err, errlen))
		return -1;
	if (!p->tty)
		return 0;
	double el = timer_now() - p->t0, rate = el > 0 ? (double)done / el : 0;
	double left = rate > 0 ? (double)(total - done) / rate : 0;
	fprintf(stderr, "\rfold: layer %zu of %zu, %.1f layers/s, %.0fs left   ", done, total,
		rate, left);
	if (done == total)
		fputs("\r\033[K", stderr);
	fflush(stderr);
	return 0;
}

/* eps_units of the summary: the worst rounding in units of the stored
 * dtype's roundoff. */
static double eps_units(const FoldOutcome *r)
{
	return r->unit_roundoff > 0 ? r->max_rel_rounding / r->unit_roundoff : 0.0;
}

/* A number, or JSON null when undo cannot know it. */
static json_t *json_known(bool known, double v)
{
	return known ? json_real(v) : json_null();
}

/* "Q4_K/Q6_K": the block types of mask (bit 1u << t), in ggml's order. */
static void quant_names(unsigned mask, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (int t = 0; t < STORE_COUNT && n < len; t++)
		if (mask & (1u << t))
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "/" : "",
					      dtype_name((StoreDtype)t));
}

/* A fold of block-quantized tensors: where they went and what it cost. */
static json_t *quant_json(const FoldOutcome *r)
{
	if (!r->quant_types_in && r->quant_out == STORE_COUNT)
		return json_null();
	json_t *in = json_array();
	for (int t = 0; t < STORE_COUNT; t++)
		if (r->quant_types_in & (1u << t))
			json_array_append_new(in, json_string(dtype_name((StoreDtype)t)));
	bool q = r->quant_out != STORE_COUNT;
	return json_pack("{s:o, s:I, s:o, s:o, s:o}", "input_types", in, "stored_as_f16",
			 (json_int_t)r->quant_as_f16, "quantized_to",
			 q ? json_string(dtype_lower_name(r->quant_out)) : json_null(),
			 "added_rel_err", q && !r->undo ? json_real(r->quant_added_rel) : json_null(),
			 "input_bound_rel", r->undo ? json_null() : json_real(r->quant_own_rel));
}

static void print_json(const FoldJob *j, const FoldOutcome *r, const char *dt)
{
	bool undo = r->undo;
	json_t *layers = json_array();
	for (size_t k = 0; k < r->nlayers; k++) {
		const FoldLayerOutcome *lo = &r->layers[k];
		json_t *l = json_pack("{s:I}", "layer", (json_int_t)lo->layer);
		/* an undo reports the seed the sidecar recorded, and rounding
		 * only where it is known: 0 when restored bit for bit */
		json_object_set_new(l, "seed", !undo || lo->seed_known
						 ? json_integer((json_int_t)lo->seed) : json_null());
		json_object_set_new(l, "max_rel_rounding",
				    undo ? json_known(lo->bit_for_bit, 0)
					 : json_real(lo->max_rel_rounding));
		if (undo)
			json_object_set_new(l, "bit_for_bit", json_boolean(lo->bit_for_bit));
		json_array_append_new(layers, l);
	}
	json_t *doc = json_pack("{s:s, s:s, s:o, s:s, s:b, s:I, s:s, s:o, s:o}",
				"input", j->model_path, "output", j->out, "sidecar",
				undo ? json_null() : json_string(r->sidecar),
				"format", model_format_name(r->format), "undo", undo,
				"layers_folded", (json_int_t)r->nlayers, "stored_dtype", dt,
				"max_rel_rounding",
				undo ? json_known(r->bit_for_bit, 0) : json_real(r->max_rel_rounding),
				"eps_units",
				undo ? json_known(r->bit_for_bit, 0) : json_real(eps_units(r)));
	if (undo) {
		json_object_set_new(doc, "bit_for_bit", json_boolean(r->bit_for_bit));
		json_object_set_new(doc, "checksums", json_boolean(r->checksums));
		json_object_set_new(doc, "removed_sidecar", r->sidecar_removed
				    ? json_string(r->sidecar) : json_null());
	}
	json_object_set_new(doc, "quantization", quant_json(r));
	json_object_set_new(doc, "qk_norm_pinned_pairs",
			    json_integer((json_int_t)r->qk_norm_pinned));
	if (r->residual != RES_NONE)   /* only then: other documents stay as they were */
		json_object_set_new(doc, "residual",
				    json_pack("{s:s, s:I, s:I, s:b}", "kind",
					      residual_kind_name(r->residual), "fused_norms",
					      (json_int_t)r->fused_norms, "tensors",
					      (json_int_t)r->residual_tensors, "untied", r->untied));
	json_object_set_new(doc, "layers", layers);
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
	fputc('\n', stdout);
	json_decref(doc);
}

static void print_summary(const FoldJob *j, const FoldOutcome *r, bool json)
{
	const char *dt = r->quant_out != STORE_COUNT ? dtype_lower_name(r->quant_out)
						     : dtype_name_of_roundoff(r->unit_roundoff);
	char qn[128];
	quant_names(r->quant_types_in, qn, sizeof qn);
	if (json) {
		print_json(j, r, dt);
		return;
	}
	char qo[128];
	quant_names(r->quant_types_out, qo, sizeof qo);
	printf("%s %zu layer%s of %s (%s) into %s\n", r->undo ? "undid the fold of" : "folded",
	       r->nlayers, r->nlayers == 1 ? "" : "s", j->model_path,
	       model_format_name(r->format), j->out);
	if (!r->undo) {
		for (size_t k = 0; k < r->nlayers; k++)
			printf("  layer %zu: seed %llu, relative rounding error %.3g\n",
			       r->layers[k].layer, (unsigned long long)r->layers[k].seed,
			       r->layers[k].max_rel_rounding);
		if (r->residual != RES_NONE)
			printf("residual stream rotated by R1 (%s): %zu norm%s fused into the "
			       "linears reading them (set to 1), %zu tensors rewritten beyond "
			       "attention's\n", residual_kind_name(r->residual), r->fused_norms,
			       r->fused_norms == 1 ? "" : "s", r->residual_tensors);
		if (r->untied)
			printf("head untied from the token embeddings (it takes the final norm's "
			       "weight, the embeddings do not)\n");
		printf("max relative rounding error %.3g (%.2f units of %s roundoff)\n",
		       r->max_rel_rounding, eps_units(r), dt);
		if (r->quant_out != STORE_COUNT && r->quant_types_in)
			printf("quantized to %s: added relative error %.3g (Frobenius), against "
			       "the input's own %s quantization bound %.3g\n",
			       dtype_name(r->quant_out), r->quant_added_rel, qn, r->quant_own_rel);
		else if (r->quant_out != STORE_COUNT)
			printf("quantized to %s: relative error %.3g (Frobenius; the input was "
			       "not quantized)\n", dtype_name(r->quant_out), r->quant_added_rel);
		else if (r->quant_types_in)
			printf("%zu %s tensor%s stored as F16 (their own quantization bound %.3g "
			       "relative, Frobenius)\n", r->quant_as_f16, qn,
			       r->quant_as_f16 == 1 ? "" : "s", r->quant_own_rel);
		printf("sidecar %s\n", r->sidecar);
		return;
	}
	for (size_t k = 0; k < r->nlayers; k++) {
		const FoldLayerOutcome *lo = &r->layers[k];
		char seed[32] = "seed not recorded";
		if (lo->seed_known)
			snprintf(seed, sizeof seed, "seed %llu", (unsigned long long)lo->seed);
		printf("  undid the fold of layer %zu (%s): %s%s%s\n", lo->layer, seed,
		       lo->bit_for_bit ? "bit for bit" : "within ",
		       lo->bit_for_bit ? "" : r->quant_types_out ? qo : dt,
		       lo->bit_for_bit ? "" : r->quant_types_out ? " quantization" : " rounding");
	}
	if (r->quant_types_out && !r->bit_for_bit)
		printf("quantized again to %s (llama.cpp's reference quantizers): the original's "
		       "blocks cannot be recovered from rotated values, so the restored tensors "
		       "hold the original's values within their %s quantization step, not its "
		       "bytes\n", qo, qo);
	if (r->bit_for_bit && r->checksums)
		printf("restored bit for bit: every rewritten tensor holds the values stored "
		       "before the fold (its checksum is the original's)\n");
	else if (r->bit_for_bit)
		printf("restored bit for bit: every rewritten tensor holds the values stored "
		       "before the fold (by the rounding bound; no checksums recorded)\n");
	else if (r->checksums)
		printf("restored within the stored dtype's %s (%s), not bit for bit (the "
		       "checksums differ from the original's)\n",
		       r->quant_types_out ? "quantization" : "rounding", r->quant_types_out ? qo : dt);
	else
		printf("restored within the stored dtype's rounding (%s), not provably bit for "
		       "bit, if the sidecar belongs to %s (it records no checksums to check "
		       "that)\n", dt, j->model_path);
	printf("no sidecar written: an undo's output is the original checkpoint\n");
	if (r->residual != RES_NONE)
		printf("undid the residual rotation R1 (%s): %zu norm%s restored\n",
		       residual_kind_name(r->residual), r->fused_norms,
		       r->fused_norms == 1 ? "" : "s");
	if (r->untied)
		printf("the head stays untied: a copy of the token embeddings, the same model "
		       "(a fold's untying is not taken back)\n");
	if (r->sidecar_removed)
		printf("removed %s, the sidecar of the OUT this replaced\n", r->sidecar);
}

/* The one line that says a learned QK-norm limited some angles (SPEC 1:
 * only 0 and pi commute with a weight that differs within a pair). */
static void note_qk_norm(const FoldOutcome *r)
{
	size_t layers = r->qk_norm_layers, pairs = r->qk_norm_pinned;
	if (!layers)
		return;
	const char *ls = layers == 1 ? "" : "s";
	if (pairs)
		fprintf(stderr, "ropefold fold: QK-norm weights differ within %zu RoPE pair%s "
			"in %zu layer%s: those pairs turn by 0 or pi only%s (still an exact "
			"rewrite)\n", pairs, pairs == 1 ? "" : "s", layers, ls,
			r->qk_norm_tail ? ", and the non-rotary coordinates only flip signs" : "");
	else
		fprintf(stderr, "ropefold fold: QK-norm weights vary on the non-rotary "
			"coordinates in %zu layer%s: those only flip signs (still an exact "
			"rewrite)\n", layers, ls);
}

/* One stderr line each: what a user should know about what was written. */
static void print_notes(const FoldJob *j, const FoldOutcome *r)
{
	size_t stale = r->stale_removed;
	if (stale)
		fprintf(stderr, "ropefold fold: removed %zu stale temporar%s of %s left by a fold "
			"whose process is gone\n", stale, stale == 1 ? "y" : "ies", j->out);
	if (r->undo && !r->checksums)
		fprintf(stderr, "ropefold fold: note: %s records no checksums (written by an older "
			"ropefold): nothing checked that it belongs to %s, and \"bit for bit\" "
			"below rests on the rounding bound alone\n", j->undo, j->model_path);
	if (!r->undo && r->quant_as_f16) {
		char qn[128];
		quant_names(r->quant_types_in, qn, sizeof qn);
		fprintf(stderr, "ropefold fold: note: %zu rotated %s tensor%s cannot keep %s "
			"blocks (the rotated values are off their grids): stored as F16; --dtype "
			"q8_0, q4_k, ... quantizes them again\n", r->quant_as_f16, qn,
			r->quant_as_f16 == 1 ? "" : "s", r->quant_as_f16 == 1 ? "its" : "their");
	}
	if (!r->undo && j->store_set && j->store == STORE_F64 && r->format == MODEL_FMT_GGUF)
		fprintf(stderr, "ropefold fold: note: %s holds F64 weights, which GGUF runtimes "
			"(llama.cpp) cannot run; F64 is for an exact --undo\n", j->out);
}

int cli_fold(int argc, char **argv)
{
	RunOptions o;
	char err[1024];
	opts_defaults(&o);
	if (opts_parse(argc, argv, OPT_MODEL | OPT_FOLD | OPT_FOLDIO | OPT_JSON, &o, err,
		       sizeof err)) {
		fprintf(stderr, "ropefold fold: %s\n", err);
		return 2;
	}
	if (o.help) {
		fold_help();
		return 0;
	}
	const char *bad = !o.model_path ? "--model IN is required (a checkpoint to fold)"
			: !o.out ? "--out OUT is required"
			: o.n_positional ? "unexpected argument"
			: NULL;
	if (bad) {
		fprintf(stderr, "ropefold fold: %s%s%s\n", bad, o.n_positional ? " " : "",
			o.n_positional ? o.positional[0] : "");
		return 2;
	}
	install_signals();
	FoldJob j;
	Progress prog = {isatty(2), timer_now()};
	opts_fold_job(&o, &j);
	j.replace_hint = "use --force to replace it";
	j.hooks.ctx = &prog;
	j.hooks.opened = on_opened;
	j.hooks.layer_done = on_layer;
	testhook_fold_hooks(&j.hooks);
	FoldOutcome res;
	int rc = fold_job_run(&j, &res, err, sizeof err) ? 2 : 0;
	if (rc) {
		if (isatty(2))
			fputs("\r\033[K", stderr);
		fprintf(stderr, "ropefold fold: %s\n", err);
	} else {
		note_qk_norm(&res);
		print_notes(&j, &res);
		print_summary(&j, &res, o.json);
	}
	fold_outcome_done(&res);
	return rc;
}
