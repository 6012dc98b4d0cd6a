#include "config.h"

#include "tui/shared/options.h"
#include "tests/testutil.h"

#define CHECK_FLAGS (OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_JSON)
#define FOLD_FLAGS (OPT_MODEL | OPT_FOLD | OPT_FOLDIO | OPT_JSON)

/* Parse args (split at spaces) onto o as it is, with the groups accept. */
static int parse_onto(RunOptions *o, char *err, size_t n, unsigned accept, const char *args)
{
	static char bufs[4][512]; /* the options keep pointers into argv */
	static int next;
	char *buf = bufs[next++ % 4];
	char *argv[64];
	int argc = 0;
	snprintf(buf, sizeof bufs[0], "%s", args);
	for (char *t = strtok(buf, " "); t && argc < 64; t = strtok(NULL, " "))
		argv[argc++] = t;
	return opts_parse(argc, argv, accept, o, err, n);
}

/* Parse args from the defaults, with the groups accept. */
static int parse_as(RunOptions *o, char *err, size_t n, unsigned accept, const char *args)
{
	opts_defaults(o);
	return parse_onto(o, err, n, accept, args);
}

/* Parse args as check does. */
static int parse(RunOptions *o, char *err, size_t n, const char *args)
{
	return parse_as(o, err, n, CHECK_FLAGS, args);
}

/* args is refused: -1 and one line that names flag and contains why. */
static void refused(unsigned accept, const char *args, const char *flag, const char *why)
{
	RunOptions o;
	char err[512] = "";
	if (parse_as(&o, err, sizeof err, accept, args) != -1)
		fail_msg("'%s' was accepted", args);
	if (strncmp(err, flag, strlen(flag)) || err[strlen(flag)] != ':')
		fail_msg("'%s': error '%s' does not start with %s", args, err, flag);
	if (why && !strstr(err, why))
		fail_msg("'%s': error '%s' does not say '%s'", args, err, why);
	assert_null(strchr(err, '\n'));
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

/* With a checkpoint the random layer's shape flags are refused, whatever
 * their order, and the error names the flag given (not a default). */
static void test_model_refuses_shape(void **state)
{
	(void)state;
	const char *why = "not with --model";
	refused(CHECK_FLAGS, "--model m --heads 2", "--heads", why);
	refused(CHECK_FLAGS, "--heads 2 --model m", "--heads", why);
	refused(CHECK_FLAGS, "--model m --d-model 32 --with-bias", "--d-model", why);
	refused(CHECK_FLAGS, "--model m --with-bias", "--with-bias", why);
	refused(CHECK_FLAGS, "--model m --kv-heads 1", "--kv-heads", why);
	refused(CHECK_FLAGS, "--model=m --head-dim 8", "--head-dim", why);
	/* the flags a checkpoint does take */
	RunOptions o;
	char err[256];
	assert_int_equal(parse(&o, err, sizeof err,
			       "--model m --layer 1 --seq 8 --seed 2 --rope interleaved "
			       "--rotary-dim 64 --rope-theta 5e5 --precision f32"), 0);
	assert_int_equal(o.layer, 1);
	assert_int_equal(o.rope.rotary_dim, 64);  /* checked against the file later */
	/* a random layer: the message names what the user gave */
	refused(CHECK_FLAGS, "--heads 2", "--heads", "--kv-heads");
	refused(CHECK_FLAGS, "--kv-heads 8", "--kv-heads", "query heads");
	refused(CHECK_FLAGS, "--kv-heads 3", "--kv-heads", "does not divide");
}

/* --tokens implies --input embed and sets T; a disagreeing --seq, an
 * explicit --input random and a random layer are refused. */
static void test_tokens(void **state)
{
	(void)state;
	RunOptions o;
	char err[256];
	assert_int_equal(parse(&o, err, sizeof err, "--model m --tokens 1,5,9"), 0);
	assert_int_equal(o.input, INPUT_EMBED);
	assert_int_equal(o.seq, 3);
	assert_int_equal(parse(&o, err, sizeof err, "--tokens 1,5 --seq 2 --model m --input embed"), 0);
	assert_int_equal(o.seq, 2);
	refused(CHECK_FLAGS, "--model m --tokens 1,2 --seq 5", "--seq", "--tokens");
	refused(CHECK_FLAGS, "--seq 5 --model m --tokens 1,2", "--seq", "--tokens");
	refused(CHECK_FLAGS, "--model m --tokens 1,2 --input random", "--tokens", "--input random");
	refused(CHECK_FLAGS, "--tokens 1,2", "--tokens", "--model");
	static const char *const bad[] = {"1,,2", ",1", "1,", "1;2", "99999999999", "4294967296"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char args[64];
		snprintf(args, sizeof args, "--model m --tokens %s", bad[i]);
		refused(CHECK_FLAGS, args, "--tokens", NULL);
	}
	/* --input embed without --tokens: a seeded sequence of --seq ids */
	assert_int_equal(parse(&o, err, sizeof err, "--model m --input embed --seq 7"), 0);
	assert_int_equal(o.seq, 7);
	assert_null(o.tokens);
}

/* A flag with a value is given once; --drop lists add up; switches may
 * repeat. */
static void test_repeats(void **state)
{
	(void)state;
	RunOptions o;
	char err[256];
	assert_int_equal(parse(&o, err, sizeof err, "--drop orthogonal --drop bias"), 0);
	assert_int_equal(o.fold.dropped, ASSUME_ORTHOGONAL | ASSUME_BIAS);
	assert_int_equal(parse(&o, err, sizeof err, "--drop commutes --drop=v-same,commutes --drop none"), 0);
	assert_int_equal(o.fold.dropped, ASSUME_COMMUTES | ASSUME_V_SAME);
	assert_int_equal(parse(&o, err, sizeof err, "--json --json --with-bias --with-bias"), 0);
	assert_true(o.json && o.with_bias);
	refused(CHECK_FLAGS, "--seq 3 --seq 5", "--seq", "given twice");
	refused(CHECK_FLAGS, "--seq 3 --seq=3", "--seq", "given twice");
	refused(CHECK_FLAGS, "--rotate qk --rotate vo", "--rotate", "given twice");
	refused(CHECK_FLAGS, "--seed 1 --heads 8 --seed 2", "--seed", "given twice");
	refused(CHECK_FLAGS, "--model a --model b", "--model", "given twice");
	refused(CHECK_FLAGS, "--precision f32 --precision f64", "--precision", "given twice");
	refused(CHECK_FLAGS, "--kind hadamard --drop commutes --kind haar", "--kind", "given twice");
	refused(FOLD_FLAGS, "--out a --out b", "--out", "given twice");
	/* the explorer parses one flag at a time onto its settings: that is
	 * not a repeat, and a shape is checked against the current one */
	opts_defaults(&o);
	assert_int_equal(parse_onto(&o, err, sizeof err, CHECK_FLAGS & ~OPT_JSON, "--seq 3"), 0);
	assert_int_equal(parse_onto(&o, err, sizeof err, CHECK_FLAGS & ~OPT_JSON, "--seq 5"), 0);
	assert_int_equal(o.seq, 5);
	assert_int_equal(parse_onto(&o, err, sizeof err, CHECK_FLAGS & ~OPT_JSON, "--heads 8"), 0);
	assert_int_equal(parse_onto(&o, err, sizeof err, CHECK_FLAGS & ~OPT_JSON, "--kv-heads 2"), 0);
	assert_int_equal(parse_onto(&o, err, sizeof err, CHECK_FLAGS & ~OPT_JSON, "--heads 7"), -1);
	assert_non_null(strstr(err, "--heads"));
	assert_true(opts_given(&o, "--seq"));
	assert_false(opts_given(&o, "--tol"));
}

/* One flag set by name, as the explorer's command line does, is the same
 * parse as those two words: value rules, messages and the cross-flag
 * rules against the current settings. */
static void test_set_one(void **state)
{
	(void)state;
	RunOptions a, b;
	char ea[256], eb[256];
	static const char *const cases[][2] = {
		{"--seq", "5"},          {"--seq", "0"},         {"--heads", "8"},
		{"--heads", "3"},        {"--kv-heads", "8"},    {"--rope", "interleaved"},
		{"--rope", "sideways"},  {"--rotary-dim", "32"}, {"--rope-theta", "0x10"},
		{"--rope-scaling", "yarn:0.5"}, {"--tol", "1e-3"}, {"--precision", "f16"},
		{"--seed", "-1"},        {"--layer", "3"},       {"--json", "x"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char line[64];
		snprintf(line, sizeof line, "%s %s", cases[i][0], cases[i][1]);
		opts_defaults(&a);
		opts_defaults(&b);
		int ra = parse_onto(&a, ea, sizeof ea, CHECK_FLAGS & ~OPT_JSON, line);
		int rb = opts_set(&b, CHECK_FLAGS & ~OPT_JSON, cases[i][0], cases[i][1], eb,
				  sizeof eb);
		assert_int_equal(ra, rb);
		if (ra)
			assert_string_equal(ea, eb);
		else
			assert_int_equal(memcmp(&a.shape, &b.shape, sizeof a.shape) ||
					 a.seq != b.seq || a.rope.layout != b.rope.layout ||
					 a.tol != b.tol, 0);
	}
	opts_defaults(&b);
	assert_int_equal(opts_set(&b, CHECK_FLAGS, "--nope", "1", eb, sizeof eb), -1);
	assert_non_null(strstr(eb, "--nope: unknown flag"));
	assert_int_equal(opts_set(&b, CHECK_FLAGS, "--seq", "9", eb, sizeof eb), 0);
	assert_true(opts_given(&b, "--seq"));
	/* a switch ignores the value it is given */
	assert_int_equal(opts_set(&b, CHECK_FLAGS, "--with-bias", NULL, eb, sizeof eb), 0);
	assert_true(b.with_bias);
}

/* fold: --layer N is --layers N; the evaluation and random-layer flags
 * are refused with the reason; --undo takes no fold flags. */
static void test_fold_flags(void **state)
{
	(void)state;
	RunOptions o;
	char err[256];
	assert_int_equal(parse_as(&o, err, sizeof err, FOLD_FLAGS, "--model m --out x --layer 2"), 0);
	assert_non_null(o.layers);
	assert_string_equal(o.layers, "2");
	assert_int_equal(parse_as(&o, err, sizeof err, FOLD_FLAGS, "--layer=0 --model m"), 0);
	assert_string_equal(o.layers, "0");
	assert_int_equal(parse_as(&o, err, sizeof err, FOLD_FLAGS, "--layers 1..3"), 0);
	assert_string_equal(o.layers, "1..3");
	refused(FOLD_FLAGS, "--layer 2 --layers 1..3", "--layer", "--layers");
	refused(FOLD_FLAGS, "--layer x", "--layer", NULL);
	refused(FOLD_FLAGS, "--model m --seq 8", "--seq", "evaluates nothing");
	refused(FOLD_FLAGS, "--precision f32", "--precision", "evaluates nothing");
	refused(FOLD_FLAGS, "--tol 1e-3", "--tol", "evaluates nothing");
	refused(FOLD_FLAGS, "--tokens 1,2", "--tokens", "evaluates nothing");
	refused(FOLD_FLAGS, "--heads 2", "--heads", "shape of a random layer");
	refused(FOLD_FLAGS, "--with-bias", "--with-bias", "shape of a random layer");
	refused(FOLD_FLAGS, "--model m --undo s --seed 3", "--seed", "--undo");
	refused(FOLD_FLAGS, "--model m --undo s --drop bias", "--drop", "--undo");
	refused(FOLD_FLAGS, "--layers 2 --undo s", "--layers", "--undo");
	refused(FOLD_FLAGS, "--undo s --layer 2", "--layer", "--undo");
	/* undo restores the dtypes the sidecar records */
	refused(FOLD_FLAGS, "--model m --out o --undo s --dtype f32", "--dtype", "--undo");
	assert_int_equal(parse_as(&o, err, sizeof err, FOLD_FLAGS,
				  "--model m --out o --undo s --force --json"), 0);
	/* check names --layer for its one layer */
	refused(CHECK_FLAGS, "--layers 2", "--layers", "--layer N");
	refused(CHECK_FLAGS, "--frobnicate", "--frobnicate", "unknown flag");
}

/* --layer needs a checkpoint in the modes whose layer is otherwise random. */
static void test_check_random(void **state)
{
	(void)state;
	RunOptions o;
	char err[256];
	assert_int_equal(parse(&o, err, sizeof err, "--layer 1"), 0);
	assert_int_equal(opts_check_random(&o, err, sizeof err), -1);
	assert_non_null(strstr(err, "--layer"));
	assert_non_null(strstr(err, "--model"));
	assert_int_equal(parse(&o, err, sizeof err, "--layer 0"), 0);
	assert_int_equal(opts_check_random(&o, err, sizeof err), -1);
	assert_int_equal(parse(&o, err, sizeof err, "--model m --layer 1"), 0);
	assert_int_equal(opts_check_random(&o, err, sizeof err), 0);
	assert_int_equal(parse(&o, err, sizeof err, "--seq 4"), 0);
	assert_int_equal(opts_check_random(&o, err, sizeof err), 0);
}

/* The tour keeps --seq and --seed only; --help answers any line. */
static void test_tour_and_help(void **state)
{
	(void)state;
	RunOptions o;
	char err[256];
	assert_int_equal(parse_as(&o, err, sizeof err, OPT_TOUR, "--seq 16 --seed 4"), 0);
	assert_int_equal(o.seq, 16);
	refused(OPT_TOUR, "--model m", "--model", "tour");
	refused(OPT_TOUR, "--heads 8", "--heads", "tour");
	refused(OPT_TOUR, "--drop commutes", "--drop", "tour");
	assert_int_equal(parse(&o, err, sizeof err, "--model m --heads 2 --help"), 0);
	assert_true(o.help);
}

/* The help of each mode: fold's --model is required, check's defaults to
 * a random layer; the repeat rule is stated. */
static void test_help_texts(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	opts_print_help(f, FOLD_FLAGS);
	fclose(f);
	assert_non_null(strstr(text, "fold, a file or folder (required)"));
	assert_null(strstr(text, "random layer"));
	assert_null(strstr(text, "--seq"));
	assert_non_null(strstr(text, "--layer N"));
	assert_non_null(strstr(text, "given once"));
	free(text);
	f = open_memstream(&text, &len);
	opts_print_help(f, CHECK_FLAGS);
	fclose(f);
	assert_non_null(strstr(text, "(default: a random layer)"));
	assert_non_null(strstr(text, "implies --input embed"));
	assert_non_null(strstr(text, "repeated"));
	assert_null(strstr(text, "--layers"));
	free(text);
}

/* The bounds the messages state are the bounds the parser keeps: both
 * ends of every range taken, one step past each refused with the rule. */
static void test_stated_bounds(void **state)
{
	(void)state;
	RunOptions o;
	char err[512];
	static const struct {
		const char *good, *bad, *flag, *says;
	} b[] = {
		{"--rope-theta 1e12", "--rope-theta 1.000001e12", "--rope-theta", "at most 1e12"},
		{"--rope-theta 1e-320", "--rope-theta 0", "--rope-theta", "above 0"},
		{"--tol 999999", "--tol 1e6", "--tol", "below 1e6"},
		{"--rope-scaling yarn:1", "--rope-scaling yarn:0.999", "--rope-scaling", "from 1 to 1e6"},
		{"--rope-scaling ntk:1e6", "--rope-scaling ntk:1000001", "--rope-scaling", "from 1 to 1e6"},
		{"--rope-scaling linear:4", "--rope-scaling yarn:1e308", "--rope-scaling", "from 1 to 1e6"},
		{"--layer 1048576", "--layer 1048577", "--layer", "from 0 to 1048576"},
		{"--seed 18446744073709551615", "--seed 18446744073709551616", "--seed",
		 "from 0 to 18446744073709551615"},
		{"--seq 65536", "--seq 65537", "--seq", "from 1 to 65536"},
		{"--rotary-dim 0", "--rotary-dim 4098", "--rotary-dim", "from 0 to 4096"},
		{"--model m --tokens 4294967295", "--tokens 4294967296", "--tokens", "from 0 to 4294967295"},
		{"--rope-theta 500000", "--rope-theta 0x10", "--rope-theta", "decimal"},
		{"--tol 1e-3", "--tol 1e-3x", "--tol", "decimal"},
		{"--drop commutes", "--drop", "--drop", "missing value (LIST: a comma-separated"},
		{"--seq 3", "--seq", "--seq", "missing value (N: a length from 1 to 65536)"},
	};
	for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
		if (parse(&o, err, sizeof err, b[i].good) != 0)
			fail_msg("'%s' refused: %s", b[i].good, err);
		if (parse(&o, err, sizeof err, b[i].bad) != -1)
			fail_msg("'%s' accepted", b[i].bad);
		if (strncmp(err, b[i].flag, strlen(b[i].flag)) || !strstr(err, b[i].says))
			fail_msg("'%s': '%s' does not start with %s and say '%s'", b[i].bad, err,
				 b[i].flag, b[i].says);
	}
	/* a leading space and an empty list are not values (split at spaces
	 * here, so through argv) */
	char *lead[] = {"--rope-theta", " 5"};
	opts_defaults(&o);
	assert_int_equal(opts_parse(2, lead, CHECK_FLAGS, &o, err, sizeof err), -1);
	char *empty[] = {"--drop", ""};
	opts_defaults(&o);
	assert_int_equal(opts_parse(2, empty, CHECK_FLAGS, &o, err, sizeof err), -1);
	assert_non_null(strstr(err, "--drop: empty list"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_mode_groups),
		cmocka_unit_test(test_model_refuses_shape),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_repeats),
		cmocka_unit_test(test_set_one),
		cmocka_unit_test(test_fold_flags),
		cmocka_unit_test(test_check_random),
		cmocka_unit_test(test_tour_and_help),
		cmocka_unit_test(test_help_texts),
		cmocka_unit_test(test_stated_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
