#include "config.h"

#include "core/forward.h"
#include "core/logits.h"
#include "core/rng.h"
#include "core/rope.h"
#include "tests/testutil.h"

/* A small random decoder layer (float64 weights; a float copy for f32):
 * D=32, H=4, G=2, d=8, F=48, SwiGLU, RMSNorm, q/k biases. */
typedef struct {
	FwdLayer l;
	double *w[16];
	float *f[16];
	size_t n[16];
	size_t count;
} TestLayer;

static const void *tl_add(TestLayer *t, size_t n, double scale, double offset, Rng *r)
{
	size_t k = t->count++;
	t->n[k] = n;
	t->w[k] = malloc(n * sizeof(double));
	t->f[k] = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		t->w[k][i] = offset + scale * rng_normal(r);
		t->f[k][i] = (float)t->w[k][i];
	}
	return t->w[k];
}

static void tl_init(TestLayer *t, size_t window, FwdBlock block)
{
	memset(t, 0, sizeof *t);
	Rng r;
	rng_seed(&r, 11, 0);
	size_t D = 32, H = 4, G = 2, d = 8, F = 48;
	FwdLayer *l = &t->l;
	l->shape = (LayerShape){D, H, G, d};
	l->rope = rope_spec_default(d);
	l->window = window;
	l->wq = tl_add(t, H * d * D, 0.3, 0, &r);
	l->wk = tl_add(t, G * d * D, 0.3, 0, &r);
	l->wv = tl_add(t, G * d * D, 0.3, 0, &r);
	l->wo = tl_add(t, D * H * d, 0.3, 0, &r);
	l->bq = tl_add(t, H * d, 0.1, 0, &r);
	l->bk = tl_add(t, G * d, 0.1, 0, &r);
	l->block = block;
	l->attn_norm = (FwdNorm){tl_add(t, D, 0.1, 1, &r), NULL, NORM_RMS, 1e-6};
	l->ffn_norm = (FwdNorm){tl_add(t, D, 0.1, 1, &r), NULL, NORM_RMS, 1e-6};
	l->act = FWD_ACT_SILU;
	l->mlp.ff = F;
	l->mlp.gate = tl_add(t, F * D, 0.2, 0, &r);
	l->mlp.up = tl_add(t, F * D, 0.2, 0, &r);
	l->mlp.down = tl_add(t, D * F, 0.2, 0, &r);
}

/* The same layer with its float copies. */
static FwdLayer tl_float(const TestLayer *t)
{
	FwdLayer l = t->l;
	const void **p[] = {&l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.attn_norm.w,
			    &l.ffn_norm.w, &l.mlp.gate, &l.mlp.up, &l.mlp.down};
	for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
		for (size_t k = 0; k < t->count; k++)
			if (*p[i] == t->w[k])
				*p[i] = t->f[k];
	return l;
}

static void tl_done(TestLayer *t)
{
	for (size_t k = 0; k < t->count; k++) {
		free(t->w[k]);
		free(t->f[k]);
	}
}

/* Run the layer in a precision on emb (T x D) into out (float64). */
static void run(const FwdLayer *l, FwdPrecision p, const double *emb, size_t T, double *out)
{
	FwdState s;
	size_t D = l->shape.d_model;
	assert_int_equal(fwd_state_init(&s, p, T, D, 2), RF_OK);
	fwd_state_embed(&s, emb);
	assert_int_equal(fwd_layer_apply(&s, l), RF_OK);
	for (size_t i = 0; i < T * D; i++)
		out[i] = p == FWD_F32 ? ((float *)s.x)[i] : ((double *)s.x)[i];
	fwd_state_done(&s);
}

static double *random_rows(size_t T, size_t D, uint64_t seed)
{
	Rng r;
	rng_seed(&r, seed, 1);
	double *x = malloc(T * D * sizeof *x);
	for (size_t i = 0; i < T * D; i++)
		x[i] = rng_normal(&r);
	return x;
}

/* float32 and float64 compute the same layer to float32's roundoff. */
static void test_f32_matches_f64(void **state)
{
	(void)state;
	TestLayer t;
	tl_init(&t, 0, FWD_BLOCK_PRE);
	size_t T = 12, D = 32;
	double *x = random_rows(T, D, 3), *a = malloc(T * D * sizeof *a), *b = malloc(T * D * sizeof *b);
	run(&t.l, FWD_F64, x, T, a);
	FwdLayer lf = tl_float(&t);
	run(&lf, FWD_F32, x, T, b);
	double mx = 0, md = 0;
	for (size_t i = 0; i < T * D; i++) {
		mx = fmax(mx, fabs(a[i]));
		md = fmax(md, fabs(a[i] - b[i]));
	}
	assert_le(md / mx, 1e-5);
	free(x);
	free(a);
	free(b);
	tl_done(&t);
}

/* Causal: position m's output does not depend on inputs after m; with a
 * window W, nor on inputs at m - W or before. */
static void check_masking(size_t window)
{
	TestLayer t;
	tl_init(&t, window, FWD_BLOCK_PRE);
	size_t T = 10, D = 32, m = 6;
	double *x = random_rows(T, D, 5), *a = malloc(T * D * sizeof *a), *b = malloc(T * D * sizeof *b);
	run(&t.l, FWD_F64, x, T, a);
	for (size_t j = 0; j < D; j++)
		x[(m + 1) * D + j] += 1.0;   /* a later token */
	run(&t.l, FWD_F64, x, T, b);
	for (size_t i = 0; i <= m; i++)
		for (size_t j = 0; j < D; j++)
			assert_close(a[i * D + j], b[i * D + j], 0);
	if (window) {
		for (size_t j = 0; j < D; j++)
			x[(m - window) * D + j] += 1.0;   /* just outside m's window */
		run(&t.l, FWD_F64, x, T, b);
		for (size_t j = 0; j < D; j++)
			assert_close(a[m * D + j], b[m * D + j], 1e-12);
		double moved = 0;
		for (size_t j = 0; j < D; j++)
			moved = fmax(moved, fabs(a[(m - 1) * D + j] - b[(m - 1) * D + j]));
		assert_gt(moved, 1e-6);   /* m - 1 sees it */
	}
	free(x);
	free(a);
	free(b);
	tl_done(&t);
}

static void test_causal(void **state)
{
	(void)state;
	check_masking(0);
}

static void test_window(void **state)
{
	(void)state;
	check_masking(3);
}

/* The parallel block is x + attn(n1 x) + mlp(n2 x): with the MLP's down
 * projection zero it equals the pre-norm block's attention half. */
static void test_parallel_block(void **state)
{
	(void)state;
	TestLayer t;
	tl_init(&t, 0, FWD_BLOCK_PARALLEL);
	size_t T = 5, D = 32;
	double *x = random_rows(T, D, 9), *a = malloc(T * D * sizeof *a), *b = malloc(T * D * sizeof *b);
	double *down = (double *)t.l.mlp.down;
	memset(down, 0, D * t.l.mlp.ff * sizeof(double));
	run(&t.l, FWD_F64, x, T, a);
	t.l.block = FWD_BLOCK_PRE;
	run(&t.l, FWD_F64, x, T, b);
	for (size_t i = 0; i < T * D; i++)
		assert_close(a[i], b[i], 1e-12);
	free(x);
	free(a);
	free(b);
	tl_done(&t);
}

/* A bad shape is refused, not run. */
static void test_bad_shape(void **state)
{
	(void)state;
	TestLayer t;
	tl_init(&t, 0, FWD_BLOCK_PRE);
	t.l.shape.n_kv_heads = 3;
	FwdState s;
	assert_int_equal(fwd_state_init(&s, FWD_F64, 4, 32, 1), RF_OK);
	assert_int_equal(fwd_layer_apply(&s, &t.l), RF_ERR_ARG);
	fwd_state_done(&s);
	tl_done(&t);
}

/* ---- logits -------------------------------------------------------------- */

static void test_top(void **state)
{
	(void)state;
	double z[6] = {0.5, 2.0, -1.0, 2.0, 1.0, 0.0};
	LogitsTop top[3];
	logits_top(z, 6, 3, top);
	assert_int_equal(top[0].id, 1);   /* ties: the lower id first */
	assert_int_equal(top[1].id, 3);
	assert_int_equal(top[2].id, 4);
	double sum = 0;
	for (int i = 0; i < 6; i++)
		sum += exp(z[i]);
	assert_close(top[0].p, exp(2.0) / sum, 1e-15);
	assert_close(top[2].p, exp(1.0) / sum, 1e-15);
	assert_int_equal(logits_argmax(z, 6), 1);
}

static void test_compare(void **state)
{
	(void)state;
	double a[2 * 3] = {1, 2, 3, 3, 2, 1}, b[2 * 3] = {1, 2, 3, 3, 2, 1};
	LogitsCompare c;
	logits_compare(a, b, 2, 3, &c);
	assert_close(c.max_rel_logit_err, 0, 0);
	assert_close(c.max_kl, 0, 1e-15);
	assert_close(c.top1_agreement, 1, 0);
	assert_true(c.first_disagreement == (size_t)-1);
	b[4] = 4;   /* position 1's top token changes */
	logits_compare(a, b, 2, 3, &c);
	assert_close(c.max_abs_logit_err, 2, 0);
	assert_close(c.max_rel_logit_err, 2.0 / 3.0, 1e-15);
	assert_close(c.top1_agreement, 0.5, 0);
	assert_int_equal(c.first_disagreement, 1);
	/* KL of position 1 by its definition */
	double pa[3], pb[3], sa = 0, sb = 0, kl = 0;
	for (int i = 0; i < 3; i++) {
		sa += exp(a[3 + i]);
		sb += exp(b[3 + i]);
	}
	for (int i = 0; i < 3; i++) {
		pa[i] = exp(a[3 + i]) / sa;
		pb[i] = exp(b[3 + i]) / sb;
		kl += pa[i] * log(pa[i] / pb[i]);
	}
	assert_close(c.max_kl, kl, 1e-14);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_f32_matches_f64), cmocka_unit_test(test_causal),
		cmocka_unit_test(test_window),          cmocka_unit_test(test_parallel_block),
		cmocka_unit_test(test_bad_shape),       cmocka_unit_test(test_top),
		cmocka_unit_test(test_compare),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
