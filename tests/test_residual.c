#include "config.h"

#include "core/residual.h"
#include "tests/testutil.h"

/* The residual frame on small random tensors: R orthogonal for widths
 * that are and are not powers of two, each role's side as core/residual.h
 * states it (checked against plain loops here), and the inverse. */

static double frand(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(*s >> 11) / 9007199254740992.0 - 0.5;
}

/* max |R R^T - I| of a D x D matrix. */
static double orth_err(const double *R, size_t D)
{
	double e = 0;
	for (size_t i = 0; i < D; i++)
		for (size_t j = 0; j < D; j++) {
			double s = 0;
			for (size_t k = 0; k < D; k++)
				s += R[i * D + k] * R[j * D + k];
			e = fmax(e, fabs(s - (i == j)));
		}
	return e;
}

static void test_rotations_orthogonal(void **state)
{
	(void)state;
	static const size_t widths[] = {8, 12, 64, 96, 5};
	for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
		size_t D = widths[w];
		double *R = malloc(D * D * sizeof(double));
		for (int k = RES_NONE; k < RES_KIND_COUNT; k++) {
			assert_int_equal(residual_rotation((ResKind)k, D, 7, R), RF_OK);
			assert_le(orth_err(R, D), 1e-12);
		}
		/* a Hadamard of a power of two has entries +-1/sqrt(D) only */
		if (D == 64) {
			assert_int_equal(residual_rotation(RES_HADAMARD, D, 3, R), RF_OK);
			for (size_t i = 0; i < D * D; i++)
				assert_close(fabs(R[i]), 1.0 / 8.0, 1e-15);
		}
		free(R);
	}
	double R[4];
	assert_int_equal(residual_rotation(RES_HAAR, 0, 1, R), RF_ERR_ARG);
}

/* y = M x for an r x c matrix. */
static void matvec(const double *M, size_t r, size_t c, const double *x, double *y)
{
	for (size_t i = 0; i < r; i++) {
		y[i] = 0;
		for (size_t j = 0; j < c; j++)
			y[i] += M[i * c + j] * x[j];
	}
}

/* A reader with its norm fused, fed the rotated stream, gives what the
 * original gives on the normed stream: (W diag(w) R^T)(R x) = W (w * x);
 * a writer's output lands rotated: (R W) u = R (W u). */
static void test_reader_writer_sides(void **state)
{
	(void)state;
	enum { D = 12, OUT = 5 };
	uint64_t s = 11;
	double R[D * D], W[OUT * D], Wr[OUT * D], w[D], x[D], Rx[D], wx[D], a[OUT], b[OUT];
	double V[D * OUT], Vr[D * OUT], u[OUT], Vu[D], RVu[D], got[D];
	assert_int_equal(residual_rotation(RES_HAAR, D, 5, R), RF_OK);
	for (size_t i = 0; i < OUT * D; i++)
		W[i] = Wr[i] = frand(&s);
	for (size_t i = 0; i < D * OUT; i++)
		V[i] = Vr[i] = frand(&s);
	for (size_t i = 0; i < D; i++) {
		w[i] = 1 + frand(&s);
		x[i] = frand(&s);
		wx[i] = w[i] * x[i];
	}
	for (size_t i = 0; i < OUT; i++)
		u[i] = frand(&s);
	matvec(R, D, D, x, Rx);
	assert_int_equal(residual_apply(RES_ROLE_READER, R, D, 1, w, 1, Wr, OUT * D), RF_OK);
	matvec(Wr, OUT, D, Rx, a);
	matvec(W, OUT, D, wx, b);
	for (size_t i = 0; i < OUT; i++)
		assert_close(a[i], b[i], 1e-13);
	assert_int_equal(residual_apply(RES_ROLE_WRITER, R, D, 1, NULL, 1, Vr, D * OUT), RF_OK);
	matvec(V, D, OUT, u, Vu);
	matvec(R, D, D, Vu, RVu);
	matvec(Vr, D, OUT, u, got);
	for (size_t i = 0; i < D; i++)
		assert_close(got[i], RVu[i], 1e-13);
	/* and back */
	assert_int_equal(residual_unapply(RES_ROLE_READER, R, D, 1, w, Wr, OUT * D), RF_OK);
	assert_int_equal(residual_unapply(RES_ROLE_WRITER, R, D, 1, NULL, Vr, D * OUT), RF_OK);
	for (size_t i = 0; i < OUT * D; i++) {
		assert_close(Wr[i], W[i], 1e-13);
		assert_close(Vr[i], V[i], 1e-13);
	}
}

/* Embedding rows are tokens: row t becomes R e_t; batched writers
 * (experts stacked) rotate each block; norms become 1 (or 0 for 1 + w)
 * and come back from the recorded values; a zero weight cannot be divided
 * out. */
static void test_embed_batch_norm(void **state)
{
	(void)state;
	enum { D = 8, V = 3, E = 2, C = 3 };
	uint64_t s = 3;
	double R[D * D], Em[V * D], Er[V * D], B[E * D * C], Br[E * D * C];
	assert_int_equal(residual_rotation(RES_HADAMARD, D, 2, R), RF_OK);
	for (size_t i = 0; i < V * D; i++)
		Em[i] = Er[i] = frand(&s);
	for (size_t i = 0; i < E * D * C; i++)
		B[i] = Br[i] = frand(&s);
	assert_int_equal(residual_apply(RES_ROLE_EMBED, R, D, 1, NULL, 1, Er, V * D), RF_OK);
	for (size_t t = 0; t < V; t++) {
		double want[D];
		matvec(R, D, D, Em + t * D, want);
		for (size_t i = 0; i < D; i++)
			assert_close(Er[t * D + i], want[i], 1e-14);
	}
	assert_int_equal(residual_apply(RES_ROLE_WRITER, R, D, E, NULL, 1, Br, E * D * C), RF_OK);
	for (size_t e = 0; e < E; e++)
		for (size_t c = 0; c < C; c++) {
			double col[D], want[D];
			for (size_t i = 0; i < D; i++)
				col[i] = B[e * D * C + i * C + c];
			matvec(R, D, D, col, want);
			for (size_t i = 0; i < D; i++)
				assert_close(Br[e * D * C + i * C + c], want[i], 1e-14);
		}
	double n[D], orig[D], wf[D];
	for (size_t i = 0; i < D; i++)
		n[i] = orig[i] = frand(&s);
	residual_fused_weight(orig, D, true, wf);
	assert_close(wf[0], 1 + orig[0], 0);
	assert_int_equal(residual_apply(RES_ROLE_NORM, R, D, 1, NULL, residual_norm_one(true), n, D),
			 RF_OK);
	assert_close(n[3], 0, 0);
	assert_int_equal(residual_unapply(RES_ROLE_NORM, R, D, 1, orig, n, D), RF_OK);
	assert_close(n[3], orig[3], 0);
	double zero[D] = {0}, W[2 * D] = {0};
	assert_int_equal(residual_unapply(RES_ROLE_READER, R, D, 1, zero, W, 2 * D),
			 RF_ERR_NUMERIC);
	assert_int_equal(residual_apply(RES_ROLE_READER, R, D, 1, NULL, 1, W, D + 1), RF_ERR_ARG);
}

static void test_names(void **state)
{
	(void)state;
	ResKind k;
	assert_int_equal(residual_kind_parse("hadamard", &k), 0);
	assert_int_equal(k, RES_HADAMARD);
	assert_int_equal(residual_kind_parse("haar", &k), 0);
	assert_int_equal(k, RES_HAAR);
	assert_int_equal(residual_kind_parse("none", &k), 0);
	assert_int_equal(k, RES_NONE);
	assert_int_not_equal(residual_kind_parse("hadamrd", &k), 0);
	assert_string_equal(residual_kind_name(RES_HAAR), "haar");
	assert_string_equal(residual_role_name(RES_ROLE_WRITER_BIAS), "writer-bias");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotations_orthogonal),
		cmocka_unit_test(test_reader_writer_sides),
		cmocka_unit_test(test_embed_batch_norm),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
