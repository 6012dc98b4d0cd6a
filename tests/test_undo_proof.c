#include "config.h"

#include "tests/testutil.h"

#include "core/dtype.h"
#include "core/fold.h"
#include "core/fold_inverse.h"
#include "core/undo_proof.h"

/* The bit-exactness certificate of an undo: a layer stored in dtype t_in,
 * folded and stored in t_out, undone in float64 and rounded back to t_in.
 * Whatever the certificate says, "exact" must never be claimed for a
 * layer that does not come back bit for bit (checked element by element
 * against the original here); and it must prove the cases the format
 * arithmetic makes certain: a bf16 original folded into f32 or f64, an
 * f32 original folded into f64 (16 or more spare significand bits, far
 * more than the error a d = 16 rotation adds). A fold kept in the
 * original's own dtype loses information and never proves out. */

static const LayerShape shape = {32, 4, 2, 16};

/* Round every rewritten array of l to t. */
static void round_layer(Layer *l, StoreDtype t)
{
	size_t D = shape.d_model, Hd = shape.n_heads * shape.head_dim,
	       Gd = shape.n_kv_heads * shape.head_dim;
	dtype_round(t, l->wq, Hd * D);
	dtype_round(t, l->wk, Gd * D);
	dtype_round(t, l->wv, Gd * D);
	dtype_round(t, l->wo, D * Hd);
	if (l->bq) {
		dtype_round(t, l->bq, Hd);
		dtype_round(t, l->bk, Gd);
		dtype_round(t, l->bv, Gd);
	}
}

/* Whether every rewritten array of a and b holds the same values. */
static bool same_arrays(const Layer *a, const Layer *b)
{
	size_t D = shape.d_model, Hd = shape.n_heads * shape.head_dim,
	       Gd = shape.n_kv_heads * shape.head_dim;
	bool same = !memcmp(a->wq, b->wq, Hd * D * sizeof(double)) &&
		    !memcmp(a->wk, b->wk, Gd * D * sizeof(double)) &&
		    !memcmp(a->wv, b->wv, Gd * D * sizeof(double)) &&
		    !memcmp(a->wo, b->wo, D * Hd * sizeof(double));
	if (a->bq)
		same = same && !memcmp(a->bq, b->bq, Hd * sizeof(double)) &&
		       !memcmp(a->bk, b->bk, Gd * sizeof(double)) &&
		       !memcmp(a->bv, b->bv, Gd * sizeof(double));
	return same;
}

/* Fold an original in t_in, store in t_out, undo, and certify: returns
 * the certificate; *same says whether the undo really is bit for bit. */
static bool certify(StoreDtype t_in, StoreDtype t_out, bool bias, bool permute,
		    uint64_t seed, bool *same)
{
	Layer o, f, v;
	RopeSpec rope = rope_spec_default(shape.head_dim);
	assert_int_equal(layer_random(&o, &shape, &rope, bias, seed), RF_OK);
	round_layer(&o, t_in);
	FoldConfig cfg = fold_config_default();
	cfg.seed = seed + 100;
	cfg.permute_heads = permute;
	FoldPlan fwd, inv;
	assert_int_equal(fold_plan_build(&o, &cfg, &fwd), RF_OK);
	assert_int_equal(fold_apply(&o, &fwd, &f), RF_OK);
	round_layer(&f, t_out);
	assert_int_equal(fold_inverse_plan(&fwd, &inv), RF_OK);
	assert_int_equal(fold_apply(&f, &inv, &v), RF_OK);
	UndoStorage us;
	for (int i = 0; i < UNDO_ARRAYS; i++) {
		us.folded[i] = t_out;
		us.restored[i] = t_in;
	}
	bool exact = true;
	assert_int_equal(undo_proof_exact(&f, &v, &fwd, &inv, &us, &exact), RF_OK);
	round_layer(&v, t_in);
	*same = same_arrays(&o, &v);
	if (exact && !*same)
		fail_msg("certified bit for bit, but the undo differs (in %s, out %s)",
			 dtype_name(t_in), dtype_name(t_out));
	fold_plan_free(&fwd);
	fold_plan_free(&inv);
	layer_free(&o);
	layer_free(&f);
	layer_free(&v);
	return exact;
}

/* Stored wider than the original: proven, and truly bit for bit. */
static void test_wider_proves(void **state)
{
	(void)state;
	bool same;
	assert_true(certify(STORE_BF16, STORE_F32, false, false, 1, &same));
	assert_true(certify(STORE_BF16, STORE_F32, true, true, 2, &same));
	assert_true(certify(STORE_BF16, STORE_F64, true, false, 3, &same));
	assert_true(certify(STORE_F16, STORE_F64, false, true, 4, &same));
	assert_true(certify(STORE_F32, STORE_F64, true, true, 5, &same));
	assert_true(same);
}

/* Kept in the original's own dtype: the rounding of the rotated values
 * loses information, never proven (and for these seeds not exact). */
static void test_same_dtype_never_proves(void **state)
{
	(void)state;
	bool same;
	for (uint64_t seed = 1; seed <= 4; seed++) {
		assert_false(certify(STORE_BF16, STORE_BF16, false, false, seed, &same));
		assert_false(certify(STORE_F32, STORE_F32, true, false, seed, &same));
	}
	assert_false(same);
}

/* A storage type that is not a float type (a quantization, or a tensor
 * stored back in another dtype than its original's) leaves it unproven
 * without looking at a value. */
static void test_not_float_unproven(void **state)
{
	(void)state;
	Layer o;
	RopeSpec rope = rope_spec_default(shape.head_dim);
	assert_int_equal(layer_random(&o, &shape, &rope, false, 9), RF_OK);
	round_layer(&o, STORE_F32);
	FoldPlan p;
	assert_int_equal(fold_identity_plan(shape.n_heads, shape.n_kv_heads, shape.head_dim, &p),
			 RF_OK);
	UndoStorage us;
	for (int i = 0; i < UNDO_ARRAYS; i++) {
		us.folded[i] = STORE_F64;
		us.restored[i] = STORE_F32;
	}
	bool exact = false;
	/* f32 values through the identity, kept in f64: each is its own */
	assert_int_equal(undo_proof_exact(&o, &o, &p, &p, &us, &exact), RF_OK);
	assert_true(exact);
	us.restored[UNDO_WV] = STORE_UNSUPPORTED;
	assert_int_equal(undo_proof_exact(&o, &o, &p, &p, &us, &exact), RF_OK);
	assert_false(exact);
	us.restored[UNDO_WV] = STORE_F32;
	us.folded[UNDO_WO] = STORE_Q8_0;
	assert_int_equal(undo_proof_exact(&o, &o, &p, &p, &us, &exact), RF_OK);
	assert_false(exact);
	/* an array the layer lacks (no biases) is not looked at */
	us.folded[UNDO_WO] = STORE_F64;
	us.restored[UNDO_BQ] = STORE_UNSUPPORTED;
	assert_int_equal(undo_proof_exact(&o, &o, &p, &p, &us, &exact), RF_OK);
	assert_true(exact);
	fold_plan_free(&p);
	layer_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wider_proves),
		cmocka_unit_test(test_same_dtype_never_proves),
		cmocka_unit_test(test_not_float_unproven),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
