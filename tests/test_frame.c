#include "config.h"

#include "core/frame.h"
#include "tests/testutil.h"

/* R1 and R3 on random layers (core/frame.h), against what their
 * definitions imply without running the evaluation: fused R1 holds to
 * rounding, unfused breaks unless every w_i is equal; the commutator
 * ||diag(w) R1 - R1 diag(w)||_F has a closed form for a Hadamard of
 * entries 0 or +-1/sqrt(p) (independent of its random signs); R3 online
 * holds, folded is exact at offset 0 (Theta_0 = I) and breaks off it, and
 * folds exactly when RoPE rotates nothing (rotary dim 0: Theta_p = I). */

static void random_layer(Layer *l, size_t D, size_t H, size_t G, size_t d, size_t r,
			 bool bias, uint64_t seed)
{
	LayerShape s = {D, H, G, d};
	RopeSpec rope = rope_spec_default(d);
	rope.rotary_dim = r;
	assert_int_equal(layer_random(l, &s, &rope, bias, seed), RF_OK);
}

/* ||C||^2 for C = diag(w) R - R diag(w), R = (Sylvester H_p (x) I_m)
 * times signs, D = p m: sum over residue classes k of the p coordinates
 * i m + k, each pair (i, j) weighed 1/p: 2 sum_i (w_im+k - mean_k)^2. */
static double closed_commutator(const double *w, size_t D)
{
	size_t p = 1;
	while (D % (p * 2) == 0)
		p *= 2;
	size_t m = D / p;
	double s = 0;
	for (size_t k = 0; k < m; k++) {
		double mean = 0;
		for (size_t i = 0; i < p; i++)
			mean += w[i * m + k] / (double)p;
		for (size_t i = 0; i < p; i++)
			s += 2 * (w[i * m + k] - mean) * (w[i * m + k] - mean);
	}
	return sqrt(s);
}

static void r1_case(size_t D, size_t H, size_t G, bool bias)
{
	Layer l;
	size_t T = 12;
	random_layer(&l, D, H, G, 8, 8, bias, 5);
	double *x = malloc(T * D * sizeof(double));
	layer_random_input(9, T, D, x);
	FrameR1Result fused, unfused;
	assert_int_equal(frame_r1_evaluate(&l, NULL, x, T, FRAME_R1_FUSED, 3, 1e-9, &fused), RF_OK);
	assert_int_equal(frame_r1_evaluate(&l, NULL, x, T, FRAME_R1_UNFUSED, 3, 1e-9, &unfused),
			 RF_OK);
	assert_true(fused.w_drawn);
	assert_true(fused.guaranteed && fused.holds);
	assert_le(fused.max_rel_err, 1e-12);
	assert_true(!unfused.guaranteed && !unfused.holds);
	assert_gt(unfused.max_rel_err, 1e-2);
	/* the drawn weight, and the commutator in closed form */
	double *w = malloc(D * sizeof(double));
	bool drawn;
	frame_r1_weight(&l, 3, w, &drawn);
	assert_true(drawn);
	for (size_t i = 0; i < D; i++)
		assert_true(w[i] >= 0.5 && w[i] <= 1.5);
	assert_close(unfused.commutator, closed_commutator(w, D), 1e-12 * unfused.commutator);
	assert_close(fused.commutator, unfused.commutator, 0);
	free(w);
	free(x);
	layer_free(&l);
}

static void test_r1_fused_holds_unfused_breaks(void **state)
{
	(void)state;
	r1_case(64, 4, 4, false);  /* a power of two */
	r1_case(48, 4, 2, true);   /* 16 x 3: Kronecker, GQA, biases */
}

static void test_r1_equal_weights_commute(void **state)
{
	(void)state;
	Layer l;
	size_t D = 32, T = 8;
	random_layer(&l, D, 2, 2, 8, 8, false, 2);
	double *x = malloc(T * D * sizeof(double)), w[32];
	layer_random_input(4, T, D, x);
	for (size_t i = 0; i < D; i++)
		w[i] = 2.5;   /* diag(w) = 2.5 I commutes with every R1 */
	FrameR1Result r;
	assert_int_equal(frame_r1_evaluate(&l, w, x, T, FRAME_R1_UNFUSED, 1, 1e-9, &r), RF_OK);
	assert_true(r.w_equal && r.guaranteed && r.holds);
	assert_le(r.commutator, 0.0);
	assert_le(r.max_rel_err, 1e-12);
	/* one w_i off breaks it */
	w[5] = 0.5;
	assert_int_equal(frame_r1_evaluate(&l, w, x, T, FRAME_R1_UNFUSED, 1, 1e-9, &r), RF_OK);
	assert_true(!r.w_equal && !r.holds);
	/* a LayerNorm layer is refused: its mean does not commute with R1 */
	l.attn_norm_kind = NORM_LAYER;
	assert_int_equal(frame_r1_evaluate(&l, w, x, T, FRAME_R1_FUSED, 1, 1e-9, &r), RF_ERR_ARG);
	free(x);
	layer_free(&l);
}

static void test_r3_online_holds_folded_breaks(void **state)
{
	(void)state;
	Layer l;
	size_t D = 64, T = 24;
	random_layer(&l, D, 4, 2, 16, 16, true, 7);
	double *x = malloc(T * D * sizeof(double));
	layer_random_input(8, T, D, x);
	FrameReport rep;
	assert_int_equal(frame_evaluate(&l, x, T, FRAME_R1_NONE, FRAME_R3_ONLINE, 1, 1e-9, &rep),
			 RF_OK);
	assert_int_equal(rep.r1.mode, FRAME_R1_NONE);
	assert_true(rep.r3.guaranteed && rep.r3.holds);
	assert_le(rep.r3.max_rel_err, 1e-13);
	assert_int_equal(rep.r3.break_offset, 0);
	frame_report_done(&rep);
	assert_int_equal(frame_evaluate(&l, x, T, FRAME_R1_NONE, FRAME_R3_FOLDED, 1, 1e-9, &rep),
			 RF_OK);
	assert_true(!rep.r3.guaranteed && !rep.r3.holds);
	assert_gt(rep.r3.max_rel_err, 1e-2);
	/* Theta_0 = I: the diagonal m = n survives, the first offset breaks */
	assert_le(rep.r3.by_offset[0], 1e-13);
	assert_gt(rep.r3.by_offset[1], 1e-6);
	assert_int_equal(rep.r3.break_offset, 1);
	assert_gt(rep.r3.commutator, 0.1);
	frame_report_done(&rep);
	free(x);
	layer_free(&l);
}

static void test_r3_folds_without_rope(void **state)
{
	(void)state;
	Layer l;
	size_t D = 32, T = 10;
	random_layer(&l, D, 2, 2, 8, 0, false, 3);   /* rotary dim 0 */
	double *x = malloc(T * D * sizeof(double));
	layer_random_input(2, T, D, x);
	FrameR3Result r;
	assert_int_equal(frame_r3_evaluate(&l, x, T, FRAME_R3_FOLDED, 1, 1e-9, &r), RF_OK);
	assert_true(r.holds);
	assert_le(r.max_rel_err, 1e-13);
	assert_le(r.commutator, 1e-15);
	free(r.by_offset);
	free(x);
	layer_free(&l);
}

/* A learned QK-norm sits between W_q, W_k and RoPE: folded, H must pass
 * its weight too, so even offset 0 breaks; online (after RoPE) holds. */
static void test_r3_qk_norm(void **state)
{
	(void)state;
	Layer l;
	size_t D = 32, T = 8, d = 8;
	random_layer(&l, D, 2, 2, d, d, false, 4);
	l.q_norm = malloc(d * sizeof(double));
	l.k_norm = malloc(d * sizeof(double));
	for (size_t i = 0; i < d; i++) {
		l.q_norm[i] = 0.6 + 0.1 * (double)i;
		l.k_norm[i] = 1.4 - 0.1 * (double)i;
	}
	l.qk_norm_per_head = true;
	l.qk_norm_eps = 1e-6;
	double *x = malloc(T * D * sizeof(double));
	layer_random_input(5, T, D, x);
	FrameR3Result r;
	assert_int_equal(frame_r3_evaluate(&l, x, T, FRAME_R3_FOLDED, 1, 1e-9, &r), RF_OK);
	assert_true(r.qk_norm && !r.holds);
	assert_gt(r.by_offset[0], 1e-6);
	free(r.by_offset);
	assert_int_equal(frame_r3_evaluate(&l, x, T, FRAME_R3_ONLINE, 1, 1e-9, &r), RF_OK);
	assert_true(r.holds);
	assert_le(r.max_rel_err, 1e-13);
	free(r.by_offset);
	free(x);
	layer_free(&l);
}

static void test_names(void **state)
{
	(void)state;
	FrameR1 a;
	FrameR3 b;
	assert_int_equal(frame_r1_parse("unfused", &a), 0);
	assert_int_equal(a, FRAME_R1_UNFUSED);
	assert_int_equal(frame_r3_parse("folded", &b), 0);
	assert_int_equal(b, FRAME_R3_FOLDED);
	assert_int_not_equal(frame_r1_parse("folded", &a), 0);
	assert_int_not_equal(frame_r3_parse("fused", &b), 0);
	assert_string_equal(frame_r1_name(FRAME_R1_FUSED), "fused");
	assert_string_equal(frame_r3_name(FRAME_R3_ONLINE), "online");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_r1_fused_holds_unfused_breaks),
		cmocka_unit_test(test_r1_equal_weights_commute),
		cmocka_unit_test(test_r3_online_holds_folded_breaks),
		cmocka_unit_test(test_r3_folds_without_rope),
		cmocka_unit_test(test_r3_qk_norm),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
