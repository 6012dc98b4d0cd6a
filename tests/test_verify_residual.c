#include "config.h"

#include "core/residual.h"
#include "core/verify_residual.h"
#include "tests/testutil.h"

/* verify's residual-frame math on small matrices: R1 recovered from
 * rotated rows, the Hadamard test on Sylvester, Kronecker and signed forms
 * (and not on a Haar draw, a permutation or the identity), and an extra
 * Hadamard on a wide writer's columns found when rows < columns leave the
 * fit itself underdetermined. Hadamards are built here by Sylvester's
 * doubling, not by ropefold. */

static double frand(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(*s >> 11) / 9007199254740992.0 - 0.5;
}

/* n x n: (Sylvester of p, normalised) Kronecker I_(n/p), column signs. */
static void hadamard(size_t n, size_t p, uint64_t *seed, double *H)
{
	size_t m = n / p;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			size_t a = i / m, b = j / m;
			double v = __builtin_popcountll(a & b) & 1 ? -1.0 : 1.0;
			H[i * n + j] = i % m == j % m ? v / sqrt((double)p) : 0;
		}
	for (size_t j = 0; seed && j < n; j++)
		if (frand(seed) < 0)
			for (size_t i = 0; i < n; i++)
				H[i * n + j] = -H[i * n + j];
}

static void test_hadamard_kind(void **state)
{
	(void)state;
	uint64_t s = 3;
	double *H = malloc(96 * 96 * sizeof(double));
	hadamard(64, 64, &s, H);
	assert_true(verify_residual_is_hadamard(H, 64, 1e-9));
	hadamard(96, 32, &s, H);
	assert_true(verify_residual_is_hadamard(H, 96, 1e-9));
	assert_int_equal(residual_rotation(RES_HAAR, 96, 5, H), RF_OK);
	assert_false(verify_residual_is_hadamard(H, 96, 0.05));
	memset(H, 0, 96 * 96 * sizeof(double));
	for (size_t i = 0; i < 96; i++)
		H[i * 96 + (i * 7) % 96] = i % 2 ? -1 : 1;
	assert_false(verify_residual_is_hadamard(H, 96, 0.05));   /* a signed permutation */
	free(H);
}

static void test_fit_recovers_r1(void **state)
{
	(void)state;
	size_t n = 80, D = 48;
	uint64_t s = 11;
	double *E = malloc(n * D * sizeof(double)), *F = malloc(n * D * sizeof(double));
	double *R = malloc(D * D * sizeof(double)), *Q = malloc(D * D * sizeof(double));
	for (size_t i = 0; i < n * D; i++)
		E[i] = frand(&s);
	assert_int_equal(residual_rotation(RES_HAAR, D, 9, R), RF_OK);
	/* F = E R^T */
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < D; j++) {
			double a = 0;
			for (size_t k = 0; k < D; k++)
				a += E[i * D + k] * R[j * D + k];
			F[i * D + j] = a;
		}
	double err;
	assert_int_equal(verify_residual_fit(E, F, n, D, Q, &err), RF_OK);
	assert_le(err, 1e-12);
	for (size_t i = 0; i < D * D; i++)
		assert_le(fabs(Q[i] - R[i]), 1e-10);
	/* a perturbed F is not explained */
	F[5] += 0.5;
	assert_int_equal(verify_residual_fit(E, F, n, D, Q, &err), RF_OK);
	assert_true(err > 1e-3);
	free(E);
	free(F);
	free(R);
	free(Q);
}

static void test_extra_hadamard_columns(void **state)
{
	(void)state;
	size_t rows = 16, cols = 48;
	uint64_t s = 21;
	double *X = malloc(rows * cols * sizeof(double)), *Y = malloc(rows * cols * sizeof(double));
	double *H = malloc(cols * cols * sizeof(double)), *M = malloc(cols * cols * sizeof(double));
	for (size_t i = 0; i < rows * cols; i++)
		X[i] = frand(&s);
	hadamard(cols, 16, &s, H);
	/* Y = X H^T */
	for (size_t i = 0; i < rows; i++)
		for (size_t j = 0; j < cols; j++) {
			double a = 0;
			for (size_t k = 0; k < cols; k++)
				a += X[i * cols + k] * H[j * cols + k];
			Y[i * cols + j] = a;
		}
	double err;
	assert_int_equal(verify_residual_extra_cols(X, Y, rows, cols, M, &err), RF_OK);
	assert_le(err, 1e-10);
	assert_true(verify_residual_hadamard_cols(X, Y, rows, cols, 1e-9, NULL));
	/* a Haar rotation of the columns is explained, but is not a Hadamard */
	assert_int_equal(residual_rotation(RES_HAAR, cols, 4, H), RF_OK);
	for (size_t i = 0; i < rows; i++)
		for (size_t j = 0; j < cols; j++) {
			double a = 0;
			for (size_t k = 0; k < cols; k++)
				a += X[i * cols + k] * H[j * cols + k];
			Y[i * cols + j] = a;
		}
	assert_int_equal(verify_residual_extra_cols(X, Y, rows, cols, M, &err), RF_OK);
	assert_le(err, 1e-10);
	assert_false(verify_residual_hadamard_cols(X, Y, rows, cols, 1e-6, NULL));
	free(X);
	free(Y);
	free(H);
	free(M);
}

/* Y = X M^T for M = H D_s (signs on H's columns) or D_s H, H the
 * Kronecker Hadamard of the given side (outer: S_p (x) I_m) written from
 * the definition, each entry summed directly (rows x cols x p: no dense
 * cols x cols matrix at Llama's FFN widths). */
static void wide_hadamard(const double *X, double *Y, size_t rows, size_t cols, bool outer,
			  bool signs_after, uint64_t *seed)
{
	size_t p = 1;
	while (cols % (2 * p) == 0)
		p *= 2;
	size_t m = cols / p;
	double c = 1.0 / sqrt((double)p);
	double *sg = malloc(cols * sizeof(double));
	for (size_t j = 0; j < cols; j++)
		sg[j] = frand(seed) < 0 ? -1.0 : 1.0;
	/* (X M^T)[r][i] = sum_k X[r][k] M[i][k] */
	for (size_t r = 0; r < rows; r++)
		for (size_t i = 0; i < cols; i++) {
			size_t ai = outer ? i / m : i % p, ci = outer ? i % m : i / p;
			double a = 0;
			for (size_t b = 0; b < p; b++) {
				size_t k = outer ? b * m + ci : ci * p + b;
				double h = __builtin_popcountll(ai & b) & 1 ? -c : c;
				a += X[r * cols + k] * h * (signs_after ? sg[k] : sg[i]);
			}
			Y[r * cols + i] = a;
		}
	free(sg);
}

/* An online R4 at Llama's FFN widths: 14336 = 7 * 2048 (Llama-3-8B) and
 * 11008 = 43 * 256 (Llama-2-7B), beyond the dense fit's reach: a Kronecker
 * Hadamard is recognised by the fast transform, a non-Hadamard orthogonal
 * M (a Householder reflection) by the Grams and not as a Hadamard, and a
 * perturbed writer by neither. */
static void test_wide_r4(void **state)
{
	(void)state;
	static const size_t widths[] = {14336, 11008};
	uint64_t s = 41;
	for (size_t w = 0; w < 2; w++) {
		size_t rows = 8, cols = widths[w];
		double *X = malloc(rows * cols * sizeof(double));
		double *Y = malloc(rows * cols * sizeof(double));
		for (size_t i = 0; i < rows * cols; i++)
			X[i] = frand(&s);
		for (int outer = 0; outer < 2; outer++)
			for (int after = 0; after < 2; after++) {
				wide_hadamard(X, Y, rows, cols, outer, after, &s);
				double e = 1;
				assert_true(verify_residual_hadamard_cols(X, Y, rows, cols, 1e-9, &e));
				assert_le(e, 1e-12);
				assert_int_equal(verify_residual_gram_cols(X, Y, rows, cols, &e), RF_OK);
				assert_le(e, 1e-12);
			}
		/* a Householder reflection I - 2 u u^T: orthogonal, no Hadamard */
		double *u = malloc(cols * sizeof(double)), nu = 0;
		for (size_t j = 0; j < cols; j++) {
			u[j] = frand(&s);
			nu += u[j] * u[j];
		}
		for (size_t r = 0; r < rows; r++) {
			double d = 0;
			for (size_t j = 0; j < cols; j++)
				d += X[r * cols + j] * u[j];
			for (size_t j = 0; j < cols; j++)
				Y[r * cols + j] = X[r * cols + j] - 2 * d / nu * u[j];
		}
		double e = 0;
		assert_false(verify_residual_hadamard_cols(X, Y, rows, cols, 1e-6, &e));
		assert_true(e > 1e-3);
		assert_int_equal(verify_residual_gram_cols(X, Y, rows, cols, &e), RF_OK);
		assert_le(e, 1e-12);
		assert_le(verify_residual_norm_gap(X, Y, rows, cols), 1e-12);
		/* one row scaled: no orthogonal M explains it, and the rows'
		 * norms say so (1% of one row of eight: about 3.5e-3) */
		for (size_t j = 0; j < cols; j++)
			Y[3 * cols + j] *= 1.01;
		assert_int_equal(verify_residual_gram_cols(X, Y, rows, cols, &e), RF_OK);
		assert_true(e > 1e-3);
		double gap = verify_residual_norm_gap(X, Y, rows, cols);
		assert_true(gap > 3e-3 && gap < 4e-3);
		free(u);
		free(X);
		free(Y);
	}
}

/* Paley's second construction of a Hadamard matrix of order 2 (q + 1),
 * q = 13 (a prime, 1 mod 4): the conference matrix C = [0 1^T; 1 Q], Q
 * the Jacobsthal matrix Q[i][j] = chi(j - i) (chi the quadratic character
 * mod q), then H = C (x) [1 1; 1 -1] + I (x) [1 -1; -1 -1]; normalised.
 * An H_28 as QuaRot's had_28 (x) S_512 needs at 14336, built here from
 * the definition, not by ropefold. */
static void paley28(double *H)
{
	enum { Q = 13, N = Q + 1 };
	int chi[Q] = {0}, C[N][N] = {{0}};
	for (int x = 1; x < Q; x++)
		chi[(x * x) % Q] = 1;
	for (int x = 1; x < Q; x++)
		chi[x] = chi[x] ? 1 : -1;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			C[i][j] = i == j ? 0 : !i || !j ? 1 : chi[((j - i) % Q + Q) % Q];
	static const int K[2][2] = {{1, 1}, {1, -1}}, E[2][2] = {{1, -1}, {-1, -1}};
	for (int i = 0; i < 2 * N; i++)
		for (int j = 0; j < 2 * N; j++)
			H[i * 2 * N + j] = (C[i / 2][j / 2] * K[i % 2][j % 2] +
					    (i / 2 == j / 2) * E[i % 2][j % 2]) / sqrt(2.0 * N);
}

/* Y = X M^T for M = A (x) S_p (outer false: index a * p + b) or S_p (x) A
 * (index b * k + a), A k x k, by separable sums from the definition. */
static void kron_apply(const double *X, double *Y, size_t rows, size_t k, size_t p,
		       const double *A, bool s_outer)
{
	size_t n = k * p;
	double c = 1.0 / sqrt((double)p);
	double *T = malloc(rows * n * sizeof(double));   /* rows x k x p */
	for (size_t r = 0; r < rows; r++)
		for (size_t a = 0; a < k; a++)
			for (size_t b = 0; b < p; b++) {
				double t = 0;
				for (size_t d = 0; d < p; d++) {
					size_t i = s_outer ? d * k + a : a * p + d;
					t += X[r * n + i] * (__builtin_popcountll(b & d) & 1 ? -c : c);
				}
				T[(r * k + a) * p + b] = t;
			}
	for (size_t r = 0; r < rows; r++)
		for (size_t a = 0; a < k; a++)
			for (size_t b = 0; b < p; b++) {
				double y = 0;
				for (size_t e = 0; e < k; e++)
					y += A[a * k + e] * T[(r * k + e) * p + b];
				Y[r * n + (s_outer ? b * k + a : a * p + b)] = y;
			}
	free(T);
}

/* QuaRot's online Hadamards at Llama's widths: had_28 (x) S_512 at 14336
 * (here Paley's H_28) recognised with its order and as a Hadamard, in
 * either Kronecker order; a Haar A (x) S_64 at 11008 (the shape of
 * had_172 (x) S_64) recognised as an orthogonal Kronecker factor but not
 * a Hadamard; a perturbed writer by neither. */
static void test_kron_r4(void **state)
{
	(void)state;
	uint64_t s = 77;
	size_t rows = 8;
	double *A = malloc(172 * 172 * sizeof(double));
	paley28(A);
	for (size_t i = 0; i < 28; i++)   /* H H^T = I */
		for (size_t j = 0; j < 28; j++) {
			double d = 0;
			for (size_t t = 0; t < 28; t++)
				d += A[i * 28 + t] * A[j * 28 + t];
			assert_le(fabs(d - (i == j)), 1e-12);
		}
	size_t n = 14336;
	double *X = malloc(rows * n * sizeof(double)), *Y = malloc(rows * n * sizeof(double));
	for (size_t i = 0; i < rows * n; i++)
		X[i] = frand(&s);
	for (int outer = 0; outer < 2; outer++) {
		kron_apply(X, Y, rows, 28, 512, A, outer);
		size_t k;
		bool had;
		double e;
		assert_false(verify_residual_hadamard_cols(X, Y, rows, n, 1e-9, NULL));
		assert_true(verify_residual_kron_cols(X, Y, rows, n, 1e-9, &k, &had, &e));
		assert_int_equal(k, 28);
		assert_true(had);
		assert_le(e, 1e-12);
	}
	n = 11008;
	assert_int_equal(residual_rotation(RES_HAAR, 172, 8, A), RF_OK);
	kron_apply(X, Y, rows, 172, 64, A, false);
	size_t k;
	bool had;
	double e;
	assert_true(verify_residual_kron_cols(X, Y, rows, n, 1e-9, &k, &had, &e));
	assert_int_equal(k, 172);
	assert_false(had);
	assert_le(e, 1e-12);
	for (size_t j = 0; j < n; j++)
		Y[2 * n + j] *= 1.01;
	assert_false(verify_residual_kron_cols(X, Y, rows, n, 1e-6, &k, &had, &e));
	assert_true(e > 1e-4);
	free(A);
	free(X);
	free(Y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hadamard_kind),
		cmocka_unit_test(test_fit_recovers_r1),
		cmocka_unit_test(test_extra_hadamard_columns),
		cmocka_unit_test(test_wide_r4),
		cmocka_unit_test(test_kron_r4),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
