#include "config.h"

#include "tests/testutil.h"

#include "core/fold.h"
#include "tests/layer_fixtures.h"

/* The fold of SPEC 2.1, from its definition: query head h's rows of W_q
 * become R_q,h W_q,h, kv group g's rows of W_k and W_v become R_k,g W_k,g
 * and R_v,g W_v,g, head h's column block of W_o becomes W_o,h R_o,h^T, the
 * biases of a rotated block turn with it, b_o stays; with permute-heads
 * folded group g holds original group perm[g], its query heads with it.
 * Every product is recomputed here with plain loops. */

static const LayerCase GQA = {24, 6, 3, 8, 6, 5, ROPE_HALF, true, PREC_F64};
static const LayerCase MHA = {16, 2, 2, 8, 8, 5, ROPE_INTERLEAVED, false, PREC_F64};

/* out (d x n) = R (d x d) in (d x n; row stride ldi, out's ldo). */
static void rot_rows(const double *R, const double *in, size_t ldi, double *out,
		     size_t ldo, size_t d, size_t n)
{
	for (size_t i = 0; i < d; i++)
		for (size_t j = 0; j < n; j++) {
			double s = 0;
			for (size_t k = 0; k < d; k++)
				s += R[i * d + k] * in[k * ldi + j];
			out[i * ldo + j] = s;
		}
}

/* The original query head of folded head h. */
static size_t src_head(const FoldPlan *p, size_t h, size_t hpg)
{
	return p->perm[h / hpg] * hpg + h % hpg;
}

/* dst must be src folded by p, block by block. */
static void check_blocks(const Layer *src, const FoldPlan *p, const Layer *dst)
{
	size_t D = src->shape.d_model, H = src->shape.n_heads;
	size_t G = src->shape.n_kv_heads, d = src->shape.head_dim, dd = d * d;
	size_t hpg = H / G, nq = H * d;
	double *blk = malloc(d * D * sizeof(double)), *v = malloc(d * sizeof(double));
	assert_true(blk && v);
	for (size_t h = 0; h < H; h++) {
		size_t s = src_head(p, h, hpg);
		rot_rows(p->rq + s * dd, src->wq + s * d * D, D, blk, D, d, D);
		assert_le(tu_max_diff(blk, dst->wq + h * d * D, d * D), 1e-13);
		/* W_o,h' = W_o,s R_o,s^T, so W_o,h'^T = R_o,s W_o,s^T */
		double *wt = malloc(d * D * sizeof(double)), *got = malloc(d * D * sizeof(double));
		assert_true(wt && got);
		for (size_t c = 0; c < D; c++)
			for (size_t k = 0; k < d; k++) {
				wt[k * D + c] = src->wo[c * nq + s * d + k];
				got[k * D + c] = dst->wo[c * nq + h * d + k];
			}
		rot_rows(p->ro + s * dd, wt, D, blk, D, d, D);
		assert_le(tu_max_diff(blk, got, d * D), 1e-13);
		free(wt);
		free(got);
		if (src->bq) {
			if (p->rotate_bias)
				rot_rows(p->rq + s * dd, src->bq + s * d, 1, v, 1, d, 1);
			else
				memcpy(v, src->bq + s * d, d * sizeof(double));
			assert_le(tu_max_diff(v, dst->bq + h * d, d), 1e-13);
		}
	}
	for (size_t g = 0; g < G; g++) {
		size_t s = p->perm[g];
		const double *R[2] = {p->rk + s * dd, p->rv + s * dd};
		const double *W[2] = {src->wk, src->wv}, *Wd[2] = {dst->wk, dst->wv};
		const double *b[2] = {src->bk, src->bv}, *bd[2] = {dst->bk, dst->bv};
		for (int i = 0; i < 2; i++) {
			rot_rows(R[i], W[i] + s * d * D, D, blk, D, d, D);
			assert_le(tu_max_diff(blk, Wd[i] + g * d * D, d * D), 1e-13);
			if (!b[i])
				continue;
			if (p->rotate_bias)
				rot_rows(R[i], b[i] + s * d, 1, v, 1, d, 1);
			else
				memcpy(v, b[i] + s * d, d * sizeof(double));
			assert_le(tu_max_diff(v, bd[i] + g * d, d), 1e-13);
		}
	}
	if (src->bo)
		assert_true(tu_max_diff(src->bo, dst->bo, D) == 0);
	free(blk);
	free(v);
}

/* Max |R J - J R| where J turns every RoPE pair by 90 degrees: pairs
 * (2i, 2i+1) interleaved, (i, i + r/2) in half layout; zero means R
 * commutes with every RoPE rotation (SPEC 1). */
static double rope_commutator(const double *R, size_t d, size_t r, RopeLayout layout)
{
	double *J = calloc(d * d, sizeof(double)), *A = malloc(d * d * sizeof(double));
	double *B = malloc(d * d * sizeof(double));
	assert_true(J && A && B);
	for (size_t i = 0; i < r / 2; i++) {
		size_t a = layout == ROPE_INTERLEAVED ? 2 * i : i;
		size_t b = layout == ROPE_INTERLEAVED ? 2 * i + 1 : i + r / 2;
		J[a * d + b] = -1;
		J[b * d + a] = 1;
	}
	tu_matmul(R, J, A, d);
	tu_matmul(J, R, B, d);
	double m = tu_max_diff(A, B, d * d);
	free(J);
	free(A);
	free(B);
	return m;
}

/* The default plan: orthogonal, commuting with RoPE on Q and K, one
 * rotation per group shared by Q and K and by every query head of the
 * group, O the rotation of V, no permutation. */
static void test_default_plan(void **state)
{
	(void)state;
	const LayerCase *cs[] = {&GQA, &MHA};
	for (size_t ci = 0; ci < 2; ci++) {
		const LayerCase *c = cs[ci];
		Layer l;
		lf_layer(c, 3, &l);
		FoldConfig cfg = fold_config_default();
		FoldPlan p;
		assert_int_equal(fold_plan_build(&l, &cfg, &p), RF_OK);
		size_t d = c->d, dd = d * d, hpg = c->H / c->G;
		assert_true(p.rotate_bias);
		for (size_t g = 0; g < c->G; g++) {
			assert_int_equal(p.perm[g], g);
			assert_le(tu_ortho_defect(p.rk + g * dd, d), 1e-12);
			assert_le(tu_ortho_defect(p.rv + g * dd, d), 1e-12);
			assert_le(rope_commutator(p.rk + g * dd, d, c->r, c->layout), 1e-12);
		}
		for (size_t h = 0; h < c->H; h++) {
			size_t g = h / hpg;
			assert_true(tu_max_diff(p.rq + h * dd, p.rk + g * dd, dd) == 0);
			assert_true(tu_max_diff(p.ro + h * dd, p.rv + g * dd, dd) == 0);
		}
		fold_plan_free(&p);
		layer_free(&l);
	}
}

/* fold_apply against the definition, with heads permuted, biases turned
 * or left, and the parts left alone that are not rotated. */
static void test_apply_blocks(void **state)
{
	(void)state;
	const unsigned rotates[] = {PART_ALL, PART_Q | PART_K, PART_V | PART_O, 0};
	for (size_t ri = 0; ri < 4; ri++)
		for (int permute = 0; permute < 2; permute++)
			for (int drop_bias = 0; drop_bias < 2; drop_bias++) {
				Layer a, b;
				lf_layer(&GQA, 5 + ri, &a);
				FoldConfig cfg = lf_config(rotates[ri], drop_bias ? ASSUME_BIAS : 0);
				cfg.permute_heads = permute;
				FoldPlan p;
				lf_fold(&a, &cfg, &b, &p);
				assert_int_equal(p.rotate_bias, !drop_bias);
				if (permute)  /* a permutation, not the identity */
					assert_int_equal(p.perm[0], 1);
				check_blocks(&a, &p, &b);
				if (!(rotates[ri] & PART_Q) && !permute)
					assert_true(tu_max_diff(a.wq, b.wq, GQA.H * GQA.d * GQA.D) == 0);
				fold_plan_free(&p);
				layer_free(&a);
				layer_free(&b);
			}
}

/* fold_apply_into over one target, layer after layer, gives what
 * fold_apply gives bit for bit: the buffers kept when the shape stays,
 * replaced when it changes (and the biases and norms always src's). */
static void test_apply_into_reuse(void **state)
{
	(void)state;
	const LayerCase *cases[] = {&GQA, &GQA, &MHA, &GQA};
	Layer dst;
	memset(&dst, 0, sizeof dst);
	const double *kept = NULL;
	for (size_t i = 0; i < 4; i++) {
		Layer a, want;
		lf_layer(cases[i], 11 + i, &a);
		FoldConfig cfg = lf_config(PART_ALL, 0);
		cfg.permute_heads = i % 2;
		FoldPlan p;
		assert_int_equal(fold_plan_build(&a, &cfg, &p), RF_OK);
		assert_int_equal(fold_apply(&a, &p, &want), RF_OK);
		assert_int_equal(fold_apply_into(&a, &p, &dst), RF_OK);
		const LayerCase *c = cases[i];
		size_t nq = c->H * c->d * c->D, nk = c->G * c->d * c->D;
		assert_memory_equal(dst.wq, want.wq, nq * sizeof(double));
		assert_memory_equal(dst.wk, want.wk, nk * sizeof(double));
		assert_memory_equal(dst.wv, want.wv, nk * sizeof(double));
		assert_memory_equal(dst.wo, want.wo, nq * sizeof(double));
		assert_int_equal(!dst.bq, !c->bias);
		if (c->bias)
			assert_memory_equal(dst.bq, want.bq, c->H * c->d * sizeof(double));
		check_blocks(&a, &p, &dst);
		if (i == 1)   /* same shape as before: the same buffer */
			assert_ptr_equal(dst.wq, kept);
		kept = dst.wq;
		fold_plan_free(&p);
		layer_free(&a);
		layer_free(&want);
	}
	layer_free(&dst);
}

/* A bias vector as a fold treats it. */
static void test_fold_bias(void **state)
{
	(void)state;
	const double R[4] = {0, -1, 1, 0}, in[2] = {3, 5};
	double out[2];
	fold_bias(R, in, out, 2, true);
	assert_close(out[0], -5, 0);
	assert_close(out[1], 3, 0);
	fold_bias(R, in, out, 2, false);
	assert_close(out[0], 3, 0);
	assert_close(out[1], 5, 0);
}

/* The names of assumptions and parts, parsed and printed. */
static void test_names(void **state)
{
	(void)state;
	unsigned n = 0;
	for (; fold_assumption_name(n); n++)
		assert_int_equal(fold_assumption_parse(fold_assumption_name(n)), 1u << n);
	assert_int_equal(n, ASSUME_COUNT);
	assert_int_equal(fold_assumption_parse("nonsense"), 0);
	unsigned bits;
	const char *bad = NULL;
	assert_int_equal(fold_drop_parse("none", &bits, &bad), 0);
	assert_int_equal(bits, 0);
	assert_int_equal(fold_drop_parse("commutes,bias", &bits, &bad), 0);
	assert_int_equal(bits, ASSUME_COMMUTES | ASSUME_BIAS);
	assert_int_not_equal(fold_drop_parse("v-same,bogus", &bits, &bad), 0);
	assert_non_null(bad);
	assert_int_equal(strncmp(bad, "bogus", 5), 0);
	const char *parts[] = {"qkvo", "qk", "vo", "none"};
	for (size_t i = 0; i < 4; i++) {
		char buf[8];
		assert_int_equal(fold_rotate_parse(parts[i], &bits), 0);
		fold_rotate_format(bits, buf, sizeof buf);
		assert_string_equal(buf, parts[i]);
	}
	assert_int_equal(fold_rotate_parse("qkvo", &bits), 0);
	assert_int_equal(bits, PART_ALL);
	assert_int_not_equal(fold_rotate_parse("qx", &bits), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_plan),
		cmocka_unit_test(test_apply_blocks),
		cmocka_unit_test(test_apply_into_reuse),
		cmocka_unit_test(test_fold_bias),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
