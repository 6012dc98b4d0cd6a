#include "config.h"

#include <cblas.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/mla_inv.h"
#include "core/parallel.h"
#include "core/session.h"
#include "core/timer.h"
#include "tui/cli/bench.h"
#include "tui/cli/bench_forward.h"
#include "tui/cli/info.h"
#include "tui/cli/mla_report.h"
#include "tui/shared/environment.h"
#include "tui/shared/kernel_env.h"

/* What the benchmark measures (all medians over --repeat runs, after a
 * warm-up, on one InvSession, with a monotonic clock):
 *   cold    inv_session_reset, then one evaluation: draw the rotations,
 *           fold every block, evaluate both sides from their own weights,
 *           compare the three levels, diagnose, judge, explain. The
 *           session's buffers already exist (the first evaluation, which
 *           allocates them, is reported apart).
 *   toggle  the re-evaluation after one assumption flips, as the TUI
 *           does: v-same, alternately dropped and held (R_v changes, so
 *           W_v and W_o are refolded, V, the contexts and every head's
 *           output recomputed; Q, K and the scores are reused).
 *   rebuild the same for commutes: every rotation changes, so the whole
 *           folded side is recomputed (the original side stays cached).
 * GFLOP counts the matrix products an evaluation performs, 2mnk each,
 * the folding of the weights included (see attention_cold_flops). The
 * cold time is also given by phase (inv_session_phase_seconds). */

#define BENCH_GEMM_N 2048

static double median(double *v, size_t n);
static double gemm_rate(bool single, size_t n);

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The machine's GEMM rate: a square n^3 product, best of a few, in
 * GFLOP/s; 0 when out of memory. */
static double gemm_rate(bool single, size_t n)
{
	size_t nn = n * n, es = single ? sizeof(float) : sizeof(double);
	char *buf = malloc(3 * nn * es);
	if (!buf)
		return 0;
	for (size_t i = 0; i < 3 * nn; i++) {
		double v = (double)(i % 17) * 0.01 - 0.08;
		if (single)
			((float *)buf)[i] = (float)v;
		else
			((double *)buf)[i] = v;
	}
	double best = 1e30;
	for (int r = 0; r < 4; r++) {
		double t = timer_now();
		if (single) {
			float *a = (float *)buf, *b = a + nn, *c = b + nn;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n,
				    (int)n, (int)n, 1, a, (int)n, b, (int)n, 0, c, (int)n);
		} else {
			double *a = (double *)buf, *b = a + nn, *c = b + nn;
			cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n,
				    (int)n, (int)n, 1, a, (int)n, b, (int)n, 0, c, (int)n);
		}
		t = timer_now() - t;
		if (t < best)
			best = t;
	}
	free(buf);
	return 2.0 * (double)n * (double)n * (double)n / best * 1e-9;
}

typedef struct {
	double seconds, gflop;
	double phase[INV_PHASE_COUNT];  /* seconds by phase */
	int rc;  /* 0 ok, else the failing status */
} Timed;

static Timed timed_eval(InvSession *s, const FoldConfig *cfg, bool reset)
{
	InvReport rep;
	Timed r = {0};
	if (reset)
		inv_session_reset(s);
	double t = timer_now();
	RfStatus st = inv_session_evaluate(s, cfg, &rep);
	r.seconds = timer_now() - t;
	if (st != RF_OK) {
		r.rc = (int)st;
		return r;
	}
	r.gflop = inv_session_flops(s) * 1e-9;
	inv_session_phase_seconds(s, r.phase);
	report_done(&rep);
	return r;
}

static void bench_help(void)
{
	printf("usage: ropefold bench [model options] [fold options] [--precision P]\n"
	       "                      [--repeat N] [--json]\n\n"
	       "Time one evaluation of a layer (median of N runs after a warm-up):\n"
	       "cold (fold and evaluate everything), toggle (re-evaluate after v-same\n"
	       "flips, as the TUI does) and rebuild (after commutes flips), with the\n"
	       "GFLOP of the matrix products, GFLOP/s, and the machine's own GEMM rate\n"
	       "measured first; then one decoder layer of the whole-model forward pass\n"
	       "(logits) on the same attention with a SwiGLU MLP of width 3.5 D.\n"
	       "An MLA layer (DeepSeek: a checkpoint's, or --kv-lora-rank and the other\n"
	       "MLA flags) times its evaluation by the plain MLA engine whole, and the\n"
	       "forward pass's MLA decoder layer.\n"
	       "Example, a Llama-3-8B-shaped layer:\n"
	       "  ropefold bench --d-model 4096 --heads 32 --kv-heads 8 --head-dim 128 --seq 512\n\n");
	opts_print_help(stdout, OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_JSON | OPT_BENCH);
}

/* Median seconds of n evaluations alternating between two configs. */
static int run_alternating(InvSession *s, const FoldConfig *c0,
			   const FoldConfig *c1, size_t n, double *sec,
			   double *gflop, double phase[INV_PHASE_COUNT])
{
	double *pt = calloc(n * INV_PHASE_COUNT, sizeof *pt);
	double *t = calloc(n, sizeof *t);
	double *g = calloc(n, sizeof *g);
	if (!t || !g || !pt) {
		free(t);
		free(g);
		free(pt);
		return -1;
	}
	Timed w = timed_eval(s, c0, false);  /* warm-up: state at c0 */
	int rc = w.rc;
	for (size_t i = 0; i < n && !rc; i++) {
		Timed r = timed_eval(s, i % 2 ? c0 : c1, false);
		rc = r.rc;
		t[i] = r.seconds;
		g[i] = r.gflop;
		for (int p = 0; p < INV_PHASE_COUNT; p++)
			pt[(size_t)p * n + i] = r.phase[p];
	}
	*sec = median(t, n);
	*gflop = median(g, n);
	for (int p = 0; p < INV_PHASE_COUNT; p++)
		phase[p] = median(pt + (size_t)p * n, n);
	free(pt);
	free(t);
	free(g);
	return rc;
}

/* An MLA layer (DeepSeek): its evaluation is the plain engine
 * (core/mla_inv.c: mla_evaluate, both sides, the three levels), timed
 * whole, and its decoder layer of the forward pass (bench_forward_mla);
 * the session's phases and toggles are the standard engine's only. */
static int bench_mla(const RunOptions *o, const Workload *w, bool f32)
{
	const MlaShape *ms = &w->mla.shape;
	size_t n = o->repeat;
	double peak = gemm_rate(f32, BENCH_GEMM_N);
	EvalOptions eo = {.seq = w->seq, .precision = o->precision, .tol = o->tol};
	FoldConfig cfg = o->fold;
	double *t = calloc(n + 1, sizeof *t);
	BenchForward fw = {0};
	int rc = t ? 0 : -1;
	for (size_t i = 0; i <= n && !rc; i++) {   /* run 0: the warm-up */
		InvReport rep;
		double t0 = timer_now();
		RfStatus st = mla_evaluate(&w->mla, w->x, &eo, &cfg, &rep);
		t[i] = timer_now() - t0;
		if (st != RF_OK)
			rc = (int)st;
		else
			report_done(&rep);
	}
	double eval_s = rc ? 0 : median(t + 1, n);
	free(t);
	if (!rc)
		rc = bench_forward_mla(&w->mla, w->x, w->seq, f32, n, &fw);
	if (rc) {
		fprintf(stderr, "ropefold bench: evaluation failed: %s\n",
			rc > 0 ? rf_status_str((RfStatus)rc) : "out of memory");
		return 2;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double rss_mb = (double)ru.ru_maxrss / 1024.0, fw_rate = fw.gflop / fw.seconds;
	if (o->json) {
		json_t *j = json_pack("{s:o,s:I,s:I,s:I,s:s,s:I,s:f,s:f,s:f,s:I,s:I}",
			"mla", mla_dims_json(ms, mla_score_scale(&w->mla)),
			"d_model", (json_int_t)ms->d_model, "heads", (json_int_t)ms->n_heads,
			"seq", (json_int_t)w->seq, "precision", f32 ? "f32" : "f64",
			"threads", (json_int_t)parallel_default_threads(),
			"evaluation_seconds", eval_s, f32 ? "sgemm_gflops" : "dgemm_gflops", peak,
			"peak_rss_mb", rss_mb, "repeat", (json_int_t)n,
			"gemm_n", (json_int_t)BENCH_GEMM_N);
		json_object_set_new(j, "forward", json_pack("{s:I, s:f, s:f, s:f, s:f}", "ff",
							    (json_int_t)fw.ff, "seconds", fw.seconds,
							    "gflop", fw.gflop, "gflops", fw_rate,
							    "peak_share", peak > 0 ? fw_rate / peak : 0.0));
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(5));
		fputc('\n', stdout);
		json_decref(j);
		return 0;
	}
	printf("ropefold bench: DeepSeek MLA D=%zu H=%zu kv_lora_rank=%zu q_lora_rank=%zu "
	       "nope=%zu rope=%zu v=%zu T=%zu, %s, median of %zu\n", ms->d_model, ms->n_heads,
	       ms->kv_lora_rank, ms->q_lora_rank, ms->qk_nope_dim, ms->qk_rope_dim,
	       ms->v_head_dim, w->seq, f32 ? "float32" : "float64", n);
	printf("  machine %s      %7.1f GFLOP/s (%d^3, best of 4)\n", f32 ? "sgemm" : "dgemm",
	       peak, BENCH_GEMM_N);
	printf("  mla evaluation     %7.3f s  (the plain engine: fold, both sides, three levels)\n",
	       eval_s);
	printf("  forward layer      %7.3f s  %8.2f GFLOP  %6.1f GFLOP/s  %3.0f%% of %s "
	       "(MLA decoder layer of logits, MLP width %zu)\n", fw.seconds, fw.gflop, fw_rate,
	       peak > 0 ? 100.0 * fw_rate / peak : 0.0, f32 ? "sgemm" : "dgemm", fw.ff);
	printf("  peak memory        %7.0f MB\n", rss_mb);
	return 0;
}

int cli_bench(int argc, char **argv)
{
	RunOptions o;
	char err[512];
	opts_defaults(&o);
	if (opts_parse(argc, argv, OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_JSON | OPT_BENCH,
		       &o, err, sizeof err)) {
		fprintf(stderr, "ropefold bench: %s\n", err);
		return 2;
	}
	if (o.help) {
		bench_help();
		return 0;
	}
	if (o.n_positional) {
		fprintf(stderr, "ropefold bench: %s: unexpected argument\n", o.positional[0]);
		return 2;
	}
	Workload w;
	if (opts_check_random(&o, err, sizeof err) ||
	    env_workload(&o, false, &w, err, sizeof err)) {
		fprintf(stderr, "ropefold bench: %s\n", err);
		return 2;
	}
	cli_model_note("bench", w.note);
	bool f32 = o.precision == PREC_F32;
	if (w.is_mla) {
		int rc = bench_mla(&o, &w, f32);
		workload_done(&w);
		return rc;
	}
	double dgemm = gemm_rate(false, BENCH_GEMM_N);
	double sgemm = f32 ? gemm_rate(true, BENCH_GEMM_N) : 0;
	double peak = f32 ? sgemm : dgemm;

	EvalOptions eo = {.seq = w.seq, .precision = o.precision, .tol = o.tol,
			  .kernel = kernel_env()};
	InvSession *s;
	RfStatus st = inv_session_new(&w.layer, w.x, &eo, &s);
	if (st != RF_OK) {
		fprintf(stderr, "ropefold bench: cannot start an evaluation: %s\n",
			rf_status_str(st));
		workload_done(&w);
		return 2;
	}
	size_t n = o.repeat;
	FoldConfig cfg = o.fold;
	workload_fold_config(&w, &cfg);
	FoldConfig tog = cfg, reb = cfg;
	tog.dropped ^= ASSUME_V_SAME;
	reb.dropped ^= ASSUME_COMMUTES;
	double *ct = calloc(n * (1 + INV_PHASE_COUNT), sizeof *ct);
	double *pt = ct ? ct + n : NULL;  /* INV_PHASE_COUNT x n */
	int rc = ct ? 0 : -1;
	Timed first = timed_eval(s, &cfg, false);
	rc = rc ? rc : first.rc;
	Timed cold = {0};
	timed_eval(s, &cfg, true);  /* warm-up */
	for (size_t i = 0; i < n && !rc; i++) {
		cold = timed_eval(s, &cfg, true);
		rc = cold.rc;
		ct[i] = cold.seconds;
		for (int p = 0; p < INV_PHASE_COUNT; p++)
			pt[(size_t)p * n + i] = cold.phase[p];
	}
	double cold_s = rc ? 0 : median(ct, n);
	double phase_s[INV_PHASE_COUNT] = {0};
	for (int p = 0; p < INV_PHASE_COUNT && !rc; p++)
		phase_s[p] = median(pt + (size_t)p * n, n);
	double tog_s = 0, tog_g = 0, reb_s = 0, reb_g = 0;
	double tog_ph[INV_PHASE_COUNT] = {0}, reb_ph[INV_PHASE_COUNT];
	if (!rc)
		rc = run_alternating(s, &cfg, &tog, n, &tog_s, &tog_g, tog_ph);
	if (!rc)
		rc = run_alternating(s, &cfg, &reb, n, &reb_s, &reb_g, reb_ph);
	size_t threads = inv_session_threads(s);
	inv_session_free(s);
	free(ct);
	BenchForward fw = {0};
	if (!rc)
		rc = bench_forward(&w.layer, w.x, w.seq, f32, n, &fw);
	if (rc) {
		fprintf(stderr, "ropefold bench: evaluation failed: %s\n",
			rc > 0 ? rf_status_str((RfStatus)rc) : "out of memory");
		workload_done(&w);
		return 2;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double rss_mb = (double)ru.ru_maxrss / 1024.0;
	const LayerShape *sh = &w.layer.shape;
	double layer_mb = (double)(layer_bytes(&w.layer) +
				   w.seq * sh->d_model * sizeof(double)) / (1024.0 * 1024.0);
	double gflops = cold.gflop / cold_s;
	if (o.json) {
		json_t *j = json_pack("{s:{s:I,s:I,s:I,s:I,s:I},s:s,s:I,s:f,s:f,s:f,s:f,"
				      "s:f,s:f,s:s,s:f,s:f,s:f,s:f,s:s,s:f,s:f,s:f,s:f,"
				      "s:f,s:I,s:I}",
			"shape", "d_model", (json_int_t)sh->d_model,
			"heads", (json_int_t)sh->n_heads,
			"kv_heads", (json_int_t)sh->n_kv_heads,
			"head_dim", (json_int_t)sh->head_dim, "seq", (json_int_t)w.seq,
			"precision", f32 ? "f32" : "f64",
			"threads", (json_int_t)threads,
			"cold_seconds", cold_s, "gflop", cold.gflop, "gflops", gflops,
			"dgemm_gflops", dgemm, "sgemm_gflops", sgemm,
			"peak_share", peak > 0 ? gflops / peak : 0.0,
			"toggle", "v-same", "toggle_seconds", tog_s, "toggle_gflop", tog_g,
			"toggle_ratio", tog_s / cold_s,
			"rebuild_seconds", reb_s, "rebuild", "commutes",
			"rebuild_ratio", reb_s / cold_s,
			"first_seconds", first.seconds,
			"peak_rss_mb", rss_mb, "layer_mb", layer_mb,
			"rss_ratio", rss_mb / layer_mb,
			"repeat", (json_int_t)n, "gemm_n", (json_int_t)BENCH_GEMM_N);
		json_t *ph = json_object();
		for (int p = 0; p < INV_PHASE_COUNT; p++)
			json_object_set_new(ph, inv_phase_name((InvPhase)p),
					    json_real(phase_s[p]));
		json_object_set_new(j, "cold_phase_seconds", ph);
		ph = json_object();
		for (int p = 0; p < INV_PHASE_COUNT; p++)
			json_object_set_new(ph, inv_phase_name((InvPhase)p),
					    json_real(tog_ph[p]));
		json_object_set_new(j, "toggle_phase_seconds", ph);
		json_object_set_new(j, "forward", json_pack("{s:I, s:f, s:f, s:f, s:f}", "ff",
							    (json_int_t)fw.ff, "seconds", fw.seconds,
							    "gflop", fw.gflop, "gflops",
							    fw.gflop / fw.seconds, "peak_share",
							    peak > 0 ? fw.gflop / fw.seconds / peak : 0.0));
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(5));
		fputc('\n', stdout);
		json_decref(j);
	} else {
		printf("ropefold bench: D=%zu H=%zu G=%zu d=%zu T=%zu, %s, %zu thread%s, "
		       "median of %zu\n", sh->d_model, sh->n_heads, sh->n_kv_heads,
		       sh->head_dim, w.seq, f32 ? "float32" : "float64", threads,
		       threads == 1 ? "" : "s", n);
		printf("  machine dgemm      %7.1f GFLOP/s (%d^3, best of 4)\n", dgemm,
		       BENCH_GEMM_N);
		if (f32)
			printf("  machine sgemm      %7.1f GFLOP/s\n", sgemm);
		printf("  cold               %7.3f s  %8.2f GFLOP  %6.1f GFLOP/s  %3.0f%% of %s\n",
		       cold_s, cold.gflop, gflops, peak > 0 ? 100.0 * gflops / peak : 0.0,
		       f32 ? "sgemm" : "dgemm");
		printf("  cold by phase     ");
		for (int p = 0; p < INV_PHASE_COUNT; p++)
			printf(" %s %.3f", inv_phase_name((InvPhase)p), phase_s[p]);
		printf(" s (medians)\n");
		printf("  toggle by phase   ");
		for (int p = 0; p < INV_PHASE_COUNT; p++)
			printf(" %s %.3f", inv_phase_name((InvPhase)p), tog_ph[p]);
		printf(" s\n");
		printf("  toggle (v-same)    %7.3f s  %8.2f GFLOP  %.2f of cold\n", tog_s,
		       tog_g, tog_s / cold_s);
		printf("  rebuild (commutes) %7.3f s  %8.2f GFLOP  %.2f of cold\n", reb_s,
		       reb_g, reb_s / cold_s);
		printf("  first evaluation   %7.3f s  (allocates the session's buffers)\n",
		       first.seconds);
		printf("  forward layer      %7.3f s  %8.2f GFLOP  %6.1f GFLOP/s  %3.0f%% of %s "
		       "(decoder layer of logits, MLP width %zu)\n", fw.seconds, fw.gflop,
		       fw.gflop / fw.seconds, peak > 0 ? 100.0 * fw.gflop / fw.seconds / peak : 0.0,
		       f32 ? "sgemm" : "dgemm", fw.ff);
		printf("  peak memory        %7.0f MB (%.1fx the layer's float64 weights "
		       "and input, %.0f MB)\n", rss_mb, rss_mb / layer_mb, layer_mb);
	}
	workload_done(&w);
	return 0;
}
