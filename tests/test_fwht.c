#include "config.h"

#include "core/fwht.h"
#include "tests/testutil.h"

/* The fast Walsh-Hadamard transform against the dense Kronecker Hadamard
 * written from its definition: H[i][j] = (-1)^popcount(a & b) / sqrt(p)
 * where i, j share their identity index and a, b are their Sylvester
 * indices (i = c * p + a inner, i = a * m + c outer). */

static double frand(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(*s >> 11) / 9007199254740992.0 - 0.5;
}

static double dense(size_t n, FwhtForm f, size_t i, size_t j)
{
	size_t p = 1;
	while (n % (2 * p) == 0)
		p *= 2;
	size_t m = n / p;
	size_t ai = f == FWHT_INNER ? i % p : i / m, aj = f == FWHT_INNER ? j % p : j / m;
	size_t ci = f == FWHT_INNER ? i / p : i % m, cj = f == FWHT_INNER ? j / p : j % m;
	if (ci != cj)
		return 0;
	return (__builtin_popcountll(ai & aj) & 1 ? -1.0 : 1.0) / sqrt((double)p);
}

static void test_pow2_part(void **state)
{
	(void)state;
	assert_int_equal(fwht_pow2_part(14336), 2048);
	assert_int_equal(fwht_pow2_part(11008), 256);
	assert_int_equal(fwht_pow2_part(172), 4);
	assert_int_equal(fwht_pow2_part(43), 1);
	assert_int_equal(fwht_pow2_part(64), 64);
}

static void test_against_dense(void **state)
{
	(void)state;
	static const size_t widths[] = {1, 2, 8, 12, 48, 172, 320};
	uint64_t s = 5;
	for (size_t w = 0; w < sizeof widths / sizeof *widths; w++)
		for (int f = FWHT_INNER; f <= FWHT_OUTER; f++) {
			size_t n = widths[w], rows = 3;
			double *X = malloc(rows * n * sizeof(double));
			double *Y = malloc(rows * n * sizeof(double));
			for (size_t i = 0; i < rows * n; i++)
				X[i] = Y[i] = frand(&s);
			fwht_kron_rows(Y, rows, n, (FwhtForm)f);
			for (size_t r = 0; r < rows; r++)
				for (size_t j = 0; j < n; j++) {
					double a = 0;
					for (size_t k = 0; k < n; k++)
						a += X[r * n + k] * dense(n, (FwhtForm)f, k, j);
					assert_le(fabs(Y[r * n + j] - a), 1e-13);
				}
			/* H H = I */
			fwht_kron_rows(Y, rows, n, (FwhtForm)f);
			for (size_t i = 0; i < rows * n; i++)
				assert_le(fabs(Y[i] - X[i]), 1e-13);
			free(X);
			free(Y);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pow2_part),
		cmocka_unit_test(test_against_dense),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
