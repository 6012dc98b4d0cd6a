#include "config.h"

#include "tui/options.h"
#include "tests/testutil.h"

static int parse(RunOptions *o, char *err, size_t n, const char *args)
{
	static char buf[512]; /* the options keep pointers into argv */
	char *argv[64];
	int argc = 0;
	snprintf(buf, sizeof buf, "%s", args);
	for (char *t = strtok(buf, " "); t && argc < 64; t = strtok(NULL, " "))
		argv[argc++] = t;
	opts_defaults(o);
	return opts_parse(argc, argv, OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_JSON, o, err, n);
}

static void test_defaults(void **state)
{
	(void)state;
	RunOptions o;
	char err[256];
	assert_int_equal(parse(&o, err, sizeof err, ""), 0);
	assert_int_equal(o.shape.d_model, 64);
	assert_int_equal(o.shape.n_heads, 4);
	assert_int_equal(o.shape.n_kv_heads, 4);
	assert_int_equal(o.shape.head_dim, 16);
	assert_int_equal(o.seq, 32);
	assert_int_equal(o.seed, 1);
	assert_int_equal(o.rope.layout, ROPE_HALF);
	assert_int_equal(o.rope.rotary_dim, 16);
	assert_close(o.rope.theta, 10000, 0);
	assert_int_equal(o.fold.rotate, PART_ALL);
	assert_int_equal(o.fold.dropped, 0);
	assert_int_equal(o.fold.kind, ROT_HAAR);
	assert_false(o.fold.permute_heads);
	assert_int_equal(o.precision, PREC_F64);
	assert_false(o.json);
}

static void test_good_values(void **state)
{
	(void)state;
	RunOptions o;
	char err[256];
	assert_int_equal(parse(&o, err, sizeof err,
			       "--d-model 96 --heads 8 --kv-heads 2 --head-dim 32 --seq 7 "
			       "--seed 9 --rope interleaved --rotary-dim 16 --rope-theta 500000 "
			       "--rope-scaling llama3:8 --with-bias --precision f32 --tol 1e-4 "
			       "--rotate qk --drop commutes,v-same --kind pair-swap "
			       "--permute-heads --json"), 0);
	assert_int_equal(o.shape.d_model, 96);
	assert_int_equal(o.shape.n_heads, 8);
	assert_int_equal(o.shape.n_kv_heads, 2);
	assert_int_equal(o.shape.head_dim, 32);
	assert_int_equal(o.seq, 7);
	assert_int_equal(o.seed, 9);
	assert_int_equal(o.fold.seed, 9);
	assert_int_equal(o.rope.layout, ROPE_INTERLEAVED);
	assert_int_equal(o.rope.rotary_dim, 16);
	assert_close(o.rope.theta, 500000, 0);
	assert_int_equal(o.rope.scaling.kind, ROPE_SCALING_LLAMA3);
	assert_true(o.with_bias);
	assert_int_equal(o.precision, PREC_F32);
	assert_close(o.tol, 1e-4, 0);
	assert_int_equal(o.fold.rotate, PART_Q | PART_K);
	assert_int_equal(o.fold.dropped, ASSUME_COMMUTES | ASSUME_V_SAME);
	assert_int_equal(o.fold.kind, ROT_PAIR_SWAP);
	assert_true(o.fold.permute_heads);
	assert_true(o.json);
	/* --flag=value works too, and "none" */
	assert_int_equal(parse(&o, err, sizeof err, "--rotate=none --drop=none --seq=3"), 0);
	assert_int_equal(o.fold.rotate, 0);
	assert_int_equal(o.seq, 3);
	/* head dim sets the default rotary dim */
	assert_int_equal(parse(&o, err, sizeof err, "--head-dim 64"), 0);
	assert_int_equal(o.rope.rotary_dim, 64);
}

/* Every malformed value: -1 and an error line that names the flag. */
static void test_bad_values(void **state)
{
	(void)state;
	static const struct {
		const char *args, *flag;
	} bad[] = {
		{"--d-model abc", "--d-model"}, {"--d-model 0", "--d-model"},
		{"--d-model -5", "--d-model"}, {"--d-model 99999999999", "--d-model"},
		{"--heads 0", "--heads"}, {"--heads x", "--heads"},
		{"--heads 100000", "--heads"}, {"--kv-heads 0", "--kv-heads"},
		{"--heads 6 --kv-heads 4", "--heads"}, {"--heads 2 --kv-heads 4", "--kv-heads"},
		{"--head-dim 15", "--head-dim"}, {"--head-dim 0", "--head-dim"},
		{"--head-dim -2", "--head-dim"}, {"--head-dim 1e3", "--head-dim"},
		{"--seq 0", "--seq"}, {"--seq 1.5", "--seq"}, {"--seq 10000000", "--seq"},
		{"--seed -1", "--seed"}, {"--seed abc", "--seed"},
		{"--rope diagonal", "--rope"}, {"--rotary-dim 7", "--rotary-dim"},
		{"--rotary-dim 32", "--rotary-dim"}, {"--rope-theta 0", "--rope-theta"},
		{"--rope-theta -1", "--rope-theta"}, {"--rope-theta nan", "--rope-theta"},
		{"--rope-scaling cubic:2", "--rope-scaling"},
		{"--rope-scaling linear:0", "--rope-scaling"},
		{"--input file", "--input"}, {"--tokens 1,a", "--tokens"},
		{"--precision f16", "--precision"}, {"--tol 0", "--tol"},
		{"--tol -1", "--tol"}, {"--tol x", "--tol"},
		{"--rotate qkx", "--rotate"}, {"--rotate qq", "--rotate"},
		{"--rotate ''", "--rotate"},
		{"--drop everything", "--drop"}, {"--drop commutes,,bias", "--drop"},
		{"--kind commuting", "--kind"}, {"--kind householder", "--kind"},
		{"--json=yes", "--json"}, {"--with-bias=1", "--with-bias"},
		{"--frobnicate", "--frobnicate"}, {"--seq", "--seq"},
		{"--d-model 100000 --heads 4096 --head-dim 4096", "--d-model"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		RunOptions o;
		char err[256] = "";
		if (parse(&o, err, sizeof err, bad[i].args) != -1)
			fail_msg("'%s' was accepted", bad[i].args);
		if (!strstr(err, bad[i].flag))
			fail_msg("'%s': error '%s' does not name %s", bad[i].args, err,
				 bad[i].flag);
		assert_null(strchr(err, '\n'));
	}
}

/* Flags of other modes are unknown here. */
static void test_mode_groups(void **state)
{
	(void)state;
	RunOptions o;
	char err[256];
	assert_int_equal(parse(&o, err, sizeof err, "--out x"), -1);
	assert_non_null(strstr(err, "--out"));
	assert_int_equal(parse(&o, err, sizeof err, "--repeat 3"), -1);
	/* fold reads its shape from the checkpoint: the random-layer flags
	 * are unknown there rather than silently ignored */
	char *argv[] = {"--d-model", "32"};
	opts_defaults(&o);
	assert_int_equal(opts_parse(2, argv, OPT_MODEL | OPT_FOLD | OPT_FOLDIO, &o, err,
				    sizeof err), -1);
	assert_non_null(strstr(err, "--d-model"));
	char *argv2[] = {"--seq", "8"};
	assert_int_equal(opts_parse(2, argv2, OPT_MODEL | OPT_FOLD | OPT_FOLDIO, &o, err,
				    sizeof err), -1);
	char *argv3[] = {"--rope", "half", "--seed", "3"};
	assert_int_equal(opts_parse(4, argv3, OPT_MODEL | OPT_FOLD | OPT_FOLDIO, &o, err,
				    sizeof err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_mode_groups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
