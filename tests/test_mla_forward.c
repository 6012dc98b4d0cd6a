/* MLA in the whole-model forward pass (core/forward_mla_impl.h) against
 * the plain MLA evaluation (core/mla_attention.c), which tests/mla.sh holds
 * to the NumPy reference: the same attention update in float64, within
 * float's rounding in float32, with or without a q latent, either pair
 * layout, yarn's attention factor, and the heads over several threads. */
#include "config.h"

#include "tests/testutil.h"

#include "core/forward.h"
#include "core/layer.h"
#include "core/mla.h"

static float *floats(const double *v, size_t n)
{
	if (!v)
		return NULL;
	float *f = malloc(n * sizeof(float));
	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		f[i] = (float)v[i];
	return f;
}

/* ropefold's forward MLA of x at prec, its update y against ref (T x D). */
static double forward_err(const MlaLayer *l, const double *x, size_t T, FwdPrecision prec,
			  size_t nthreads, const double *ref)
{
	const MlaShape *s = &l->shape;
	size_t D = s->d_model, H = s->n_heads, Lq = s->q_lora_rank, Lkv = s->kv_lora_rank;
	size_t dq = mla_qk_dim(s), dr = s->qk_rope_dim, dkv = s->qk_nope_dim + s->v_head_dim;
	const double *src[7] = {l->q_a, l->q_a_norm, l->q_b, l->kv_a, l->kv_a_norm, l->kv_b, l->wo};
	size_t n[7] = {Lq * D, Lq, H * dq * (Lq ? Lq : D), (Lkv + dr) * D, Lkv, H * dkv * Lkv,
		       D * H * s->v_head_dim};
	const void *w[7];
	for (int k = 0; k < 7; k++)
		w[k] = prec == FWD_F32 ? (const void *)floats(src[k], n[k]) : (const void *)src[k];
	FwdMla m = {.shape = *s, .rope = l->rope, .q_a = w[0], .q_a_norm = w[1], .q_b = w[2],
		    .kv_a = w[3], .kv_a_norm = w[4], .kv_b = w[5], .wo = w[6],
		    .latent_eps = l->latent_eps, .score_scale = mla_score_scale(l)};
	m.rope.rotary_dim = dr;
	FwdState st;
	assert_int_equal(fwd_state_init(&st, prec, T, D, nthreads), RF_OK);
	fwd_state_embed(&st, x);
	FwdMlaTrace tr;
	assert_int_equal(fwd_mla_trace(&st, &m, &tr), RF_OK);
	double err = 0, mx = 0;
	for (size_t i = 0; i < T * D; i++) {
		double y = prec == FWD_F32 ? ((float *)tr.y)[i] : ((double *)tr.y)[i];
		err = fmax(err, fabs(y - ref[i]));
		mx = fmax(mx, fabs(ref[i]));
	}
	fwd_state_done(&st);
	free(tr.q);
	free(tr.k);
	free(tr.v);
	free(tr.ctx);
	free(tr.y);
	if (prec == FWD_F32)
		for (int k = 0; k < 7; k++)
			free((void *)w[k]);
	return err / mx;
}

static void one(const MlaShape *s, RopeLayout layout, bool yarn)
{
	size_t T = 13;
	RopeSpec r = rope_spec_default(s->qk_rope_dim);
	r.layout = layout;
	if (yarn) {
		r.scaling.kind = ROPE_SCALING_YARN;
		r.scaling.factor = 4.0;
		r.scaling.original_max_pos = 8;
		r.scaling.attention_factor = 1.2;
	}
	MlaLayer l;
	assert_int_equal(mla_random(&l, s, &r, 11), RF_OK);
	double *x = malloc(T * s->d_model * sizeof(double));
	assert_non_null(x);
	layer_random_input(4, T, s->d_model, x);
	MlaSide ref;
	assert_int_equal(mla_forward(&l, x, T, &ref), RF_OK);
	assert_le(forward_err(&l, x, T, FWD_F64, 1, ref.y), 1e-13);
	assert_le(forward_err(&l, x, T, FWD_F64, 3, ref.y), 1e-13);
	double e32 = forward_err(&l, x, T, FWD_F32, 2, ref.y);
	assert_le(e32, 1e-5);
	assert_gt(e32, 1e-10);   /* computed in float, not double */
	mla_side_done(&ref);
	mla_free(&l);
	free(x);
}

static const MlaShape LORA = {32, 4, 12, 16, 8, 8, 8};
static const MlaShape QPROJ = {24, 3, 0, 10, 6, 4, 10};

static void test_q_latent(void **state)
{
	(void)state;
	one(&LORA, ROPE_INTERLEAVED, false);
	one(&LORA, ROPE_HALF, true);
}

static void test_q_proj(void **state)
{
	(void)state;
	one(&QPROJ, ROPE_INTERLEAVED, true);
	one(&QPROJ, ROPE_HALF, false);
}

static void test_bad_shape(void **state)
{
	(void)state;
	FwdState st;
	assert_int_equal(fwd_state_init(&st, FWD_F64, 4, 16, 1), RF_OK);
	FwdMla m = {.shape = LORA};   /* D 32 against the state's 16 */
	FwdMlaTrace tr;
	assert_int_equal(fwd_mla_trace(&st, &m, &tr), RF_ERR_ARG);
	fwd_state_done(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_q_latent),
		cmocka_unit_test(test_q_proj),
		cmocka_unit_test(test_bad_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
