#ifndef ROPEFOLD_TESTS_TESTUTIL_H
#define ROPEFOLD_TESTS_TESTUTIL_H

/* Shared helpers for the cmocka tests. cmocka must come after these
 * standard headers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Debian 12's cmocka 1.1.5 has no assert_double_equal: this one takes an
 * explicit absolute tolerance and prints both values on failure. */
#define assert_close(a, b, tol)                                                \
	do {                                                                   \
		double a_ = (a), b_ = (b), t_ = (tol);                         \
		if (!(fabs(a_ - b_) <= t_))                                    \
			fail_msg("%s = %.17g differs from %s = %.17g by %.3g "  \
				 "(tolerance %.3g)", #a, a_, #b, b_,           \
				 fabs(a_ - b_), t_);                           \
	} while (0)

/* a <= b with both values shown. */
#define assert_le(a, b)                                                        \
	do {                                                                   \
		double a_ = (a), b_ = (b);                                     \
		if (!(a_ <= b_))                                               \
			fail_msg("expected %s = %.6g <= %s = %.6g", #a, a_, #b, b_); \
	} while (0)

/* a > b with both values shown. */
#define assert_gt(a, b)                                                        \
	do {                                                                   \
		double a_ = (a), b_ = (b);                                     \
		if (!(a_ > b_))                                                \
			fail_msg("expected %s = %.6g > %s = %.6g", #a, a_, #b, b_); \
	} while (0)

/* Max |A - B| over n entries. */
static inline double tu_max_diff(const double *A, const double *B, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++) {
		double e = fabs(A[i] - B[i]);
		if (e > m)
			m = e;
	}
	return m;
}

/* C = A B for n x n row-major matrices (plain loops: an independent check
 * of the BLAS paths). */
static inline void tu_matmul(const double *A, const double *B, double *C, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			double s = 0;
			for (size_t k = 0; k < n; k++)
				s += A[i * n + k] * B[k * n + j];
			C[i * n + j] = s;
		}
}

/* ||R^T R - I||_max. */
static inline double tu_ortho_defect(const double *R, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			double s = i == j ? -1.0 : 0.0;
			for (size_t k = 0; k < n; k++)
				s += R[k * n + i] * R[k * n + j];
			if (fabs(s) > m)
				m = fabs(s);
		}
	return m;
}

#endif
