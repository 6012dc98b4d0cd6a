/* DeepSeek's router (core/moe_route.h) on hand-made scores whose choice
 * follows from the definition: which experts each top-k method keeps, and
 * the weights after renormalising and scaling. */
#include "config.h"

#include "tests/testutil.h"

#include "core/moe_route.h"

/* z with sigmoid(z) = p. */
static void logits_of(const double *p, size_t n, double *z)
{
	for (size_t i = 0; i < n; i++)
		z[i] = log(p[i] / (1.0 - p[i]));
}

/* Sigmoid scores of 8 experts in 4 groups of 2: by the sum of their two
 * best the groups rank 1 (1.2), 0 (1.0), 3 (0.9), 2 (0.4); by their best
 * 0 (0.9), 3 (0.85), 1 (0.6), 2 (0.2). */
static const double P8[8] = {0.9, 0.1, 0.6, 0.6, 0.2, 0.2, 0.85, 0.05};

static void route8(const MoeRoute *r, const double *bias, size_t *ids, double *w)
{
	double z[8], scr[2 * 8 + 4];
	logits_of(P8, 8, z);
	const char *why;
	assert_int_equal(moe_route_check(r, 8, 2, &why), RF_OK);
	moe_route_token(r, z, bias, 8, 2, ids, w, scr);
}

static void test_softmax_v2(void **state)
{
	(void)state;
	/* softmax of ln(1..4) is (1, 2, 3, 4) / 10 */
	double z[4] = {0, log(2.0), log(3.0), log(4.0)}, scr[12], w[2];
	size_t ids[2];
	MoeRoute r = {.score = MOE_SCORE_SOFTMAX, .scale = 1.5, .scale_if_not_norm = true};
	moe_route_token(&r, z, NULL, 4, 2, ids, w, scr);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[1], 2);
	assert_close(w[0], 0.4 * 1.5, 1e-15);
	assert_close(w[1], 0.3 * 1.5, 1e-15);
	/* renormalised: DeepSeek's V2 code does not scale then */
	r.norm_topk = true;
	moe_route_token(&r, z, NULL, 4, 2, ids, w, scr);
	assert_close(w[0], 4.0 / 7.0, 1e-15);
	assert_close(w[1], 3.0 / 7.0, 1e-15);
	/* one expert: never renormalised, so scaled */
	moe_route_token(&r, z, NULL, 4, 1, ids, w, scr);
	assert_int_equal(ids[0], 3);
	assert_close(w[0], 0.4 * 1.5, 1e-15);
}

static void test_groups(void **state)
{
	(void)state;
	size_t ids[2];
	double w[2];
	MoeRoute r = {.score = MOE_SCORE_SIGMOID, .method = MOE_TOPK_GREEDY, .scale = 1.0};
	route8(&r, NULL, ids, w);
	assert_int_equal(ids[0], 0);
	assert_int_equal(ids[1], 6);
	/* V2's group_limited_greedy keeps groups 0 and 3: the same two */
	r.method = MOE_TOPK_GROUP_MAX;
	r.n_group = 4;
	r.topk_group = 2;
	route8(&r, NULL, ids, w);
	assert_int_equal(ids[0], 0);
	assert_int_equal(ids[1], 6);
	/* V3's noaux_tc keeps groups 1 and 0: expert 6 is out, 2 and 3 tie
	 * and the lower id wins */
	r.method = MOE_TOPK_GROUP_TOP2;
	route8(&r, NULL, ids, w);
	assert_int_equal(ids[0], 0);
	assert_int_equal(ids[1], 2);
	assert_close(w[0], 0.9, 1e-14);
	assert_close(w[1], 0.6, 1e-14);
}

static void test_bias_v3(void **state)
{
	(void)state;
	size_t ids[2];
	double w[2];
	/* a bias of 0.5 on expert 6 lifts group 3 to 1.4: groups 3 and 1
	 * are kept, the choice is 6 then 2, the weights the unbiased scores
	 * renormalised and times 2.5 */
	double bias[8] = {0, 0, 0, 0, 0, 0, 0.5, 0};
	MoeRoute r = {.score = MOE_SCORE_SIGMOID, .method = MOE_TOPK_GROUP_TOP2, .n_group = 4,
		      .topk_group = 2, .norm_topk = true, .scale = 2.5};
	route8(&r, bias, ids, w);
	assert_int_equal(ids[0], 6);
	assert_int_equal(ids[1], 2);
	assert_close(w[0], 0.85 / 1.45 * 2.5, 1e-14);
	assert_close(w[1], 0.6 / 1.45 * 2.5, 1e-14);
}

static void test_check(void **state)
{
	(void)state;
	const char *why;
	MoeRoute r = {.method = MOE_TOPK_GROUP_TOP2, .n_group = 3, .topk_group = 1};
	assert_int_equal(moe_route_check(&r, 8, 2, &why), RF_ERR_ARG);   /* 3 does not divide 8 */
	r.n_group = 4;
	assert_int_equal(moe_route_check(&r, 8, 3, &why), RF_ERR_ARG);   /* 2 kept < top 3 */
	r.topk_group = 5;
	assert_int_equal(moe_route_check(&r, 8, 2, &why), RF_ERR_ARG);
	r.n_group = 8;
	r.topk_group = 4;
	assert_int_equal(moe_route_check(&r, 8, 2, &why), RF_ERR_ARG);   /* one per group */
	r.method = MOE_TOPK_GROUP_MAX;
	assert_int_equal(moe_route_check(&r, 8, 2, &why), RF_OK);
	r.method = MOE_TOPK_GREEDY;
	assert_int_equal(moe_route_check(&r, 8, 9, &why), RF_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_softmax_v2), cmocka_unit_test(test_groups),
		cmocka_unit_test(test_bias_v3),    cmocka_unit_test(test_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
