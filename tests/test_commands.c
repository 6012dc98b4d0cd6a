#include "config.h"

#include <unistd.h>

#include "tests/testutil.h"

#include "core/fold.h"
#include "core/rotation.h"
#include "tui/explorer/commands.h"
#include "tui/explorer/msglog.h"
#include "tui/explorer/tour.h"
#include "tui/shared/tour_script.h"

/* The explorer's ':' commands and toggles are pure functions of the
 * settings: each test runs command strings and checks the fields. */

static TuiSettings fresh(void)
{
	RunOptions o;
	TuiSettings s;
	opts_defaults(&o);
	commands_settings_init(&s, &o, true);
	return s;
}

static unsigned run(TuiSettings *s, const char *line, char *msg)
{
	return commands_run(s, line, msg, 512);
}

static void test_rotate(void **state)
{
	(void)state;
	TuiSettings s = fresh();
	char msg[512];
	assert_int_equal(s.opts.fold.rotate, PART_ALL);
	assert_int_equal(run(&s, "rotate qk", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.rotate, PART_Q | PART_K);
	assert_string_equal(msg, "rotate qk");
	assert_int_equal(run(&s, ":rotate vo", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.rotate, PART_V | PART_O);
	assert_int_equal(run(&s, "  rotate   none  ", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.rotate, 0);
	/* a bad set leaves the settings untouched */
	assert_int_equal(run(&s, "rotate qx", msg), CMD_ERROR);
	assert_int_equal(s.opts.fold.rotate, 0);
	assert_non_null(strstr(msg, "rotate"));
	assert_int_equal(run(&s, "rotate", msg), CMD_ERROR);
}

static void test_drop_hold(void **state)
{
	(void)state;
	TuiSettings s = fresh();
	char msg[512];
	assert_int_equal(run(&s, "drop commutes", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.dropped, ASSUME_COMMUTES);
	assert_int_equal(run(&s, "drop bias,per-head", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.dropped, ASSUME_COMMUTES | ASSUME_BIAS | ASSUME_PER_HEAD);
	assert_int_equal(run(&s, "hold commutes", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.dropped, ASSUME_BIAS | ASSUME_PER_HEAD);
	assert_int_equal(run(&s, "hold all", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.dropped, 0);
	assert_int_equal(run(&s, "drop all", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.dropped, (1u << ASSUME_COUNT) - 1);
	assert_int_equal(run(&s, "hold all", msg), CMD_CHANGED);
	assert_int_equal(run(&s, "drop nonsense", msg), CMD_ERROR);
	assert_non_null(strstr(msg, "nonsense"));
	assert_int_equal(s.opts.fold.dropped, 0);
	assert_int_equal(run(&s, "drop", msg), CMD_ERROR);
}

static void test_toggle(void **state)
{
	(void)state;
	TuiSettings s = fresh();
	char msg[512];
	assert_int_equal(run(&s, "toggle commutes", msg), CMD_CHANGED);
	assert_true(s.opts.fold.dropped & ASSUME_COMMUTES);
	assert_false(commands_toggle_on(&s, TOGGLE_ASSUME0 + 1));
	assert_int_equal(run(&s, "toggle commutes", msg), CMD_CHANGED);
	assert_false(s.opts.fold.dropped & ASSUME_COMMUTES);
	assert_int_equal(run(&s, "toggle o", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.rotate, PART_Q | PART_K | PART_V);
	assert_int_equal(run(&s, "toggle permute-heads", msg), CMD_CHANGED);
	assert_true(s.opts.fold.permute_heads);
	/* a toggle name alone flips it too */
	assert_int_equal(run(&s, "gqa-consistent", msg), CMD_CHANGED);
	assert_true(s.opts.fold.dropped & ASSUME_GQA_CONSISTENT);
	assert_int_equal(run(&s, "toggle nope", msg), CMD_ERROR);
	/* every toggle flips by name and flips back (or cycles) */
	for (int t = 0; t < TOGGLE_COUNT; t++) {
		TuiSettings a = fresh();
		const char *name = commands_toggle_name((ToggleId)t);
		assert_int_equal(commands_toggle_parse(name), t);
		unsigned b = commands_toggle_flip(&a, (ToggleId)t, msg, sizeof msg);
		if (t == TOGGLE_ROPE) {
			/* the default model's RoPE is its own: refused, the
			 * fold-layout toggle names the fold's */
			assert_int_equal(b, CMD_ERROR);
			a.source = SOURCE_RANDOM;
			b = commands_toggle_flip(&a, (ToggleId)t, msg, sizeof msg);
		}
		assert_int_equal(b, CMD_CHANGED);
		TuiSettings d = fresh();
		assert_true(memcmp(&a.opts.fold, &d.opts.fold, sizeof a.opts.fold) ||
			    a.opts.rope.layout != d.opts.rope.layout ||
			    a.opts.precision != d.opts.precision);
	}
}

static void test_kind_rope_precision(void **state)
{
	(void)state;
	TuiSettings s = fresh();
	char msg[512];
	assert_int_equal(run(&s, "kind hadamard", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.kind, ROT_HADAMARD);
	assert_int_equal(run(&s, "kind commuting", msg), CMD_ERROR);
	assert_int_equal(run(&s, "kind spin", msg), CMD_ERROR);
	assert_int_equal(s.opts.fold.kind, ROT_HADAMARD);
	/* cycling the kind never lands on the held kind */
	for (int i = 0; i < 12; i++) {
		commands_toggle_flip(&s, TOGGLE_KIND, msg, sizeof msg);
		assert_int_not_equal(s.opts.fold.kind, ROT_COMMUTING);
	}
	/* on a checkpoint (the default model): the fold's layout */
	assert_int_equal(run(&s, "rope interleaved", msg), CMD_CHANGED);
	assert_int_equal(s.opts.rope.layout, ROPE_HALF);
	assert_true(s.opts.fold.layout_set);
	assert_int_equal(s.opts.fold.layout, ROPE_INTERLEAVED);
	assert_string_equal(commands_toggle_value(&s, TOGGLE_FOLD_LAYOUT), "interleaved");
	assert_int_equal(run(&s, "fold-layout", msg), CMD_CHANGED);
	assert_false(s.opts.fold.layout_set);
	/* on a random layer: the layer's own RoPE */
	assert_int_equal(run(&s, "load random", msg), CMD_CHANGED);
	assert_int_equal(run(&s, "rope interleaved", msg), CMD_CHANGED);
	assert_int_equal(s.opts.rope.layout, ROPE_INTERLEAVED);
	assert_true(s.opts.layout_set);
	/* ... and a :load forgets it */
	assert_int_equal(run(&s, "load default", msg), CMD_CHANGED);
	assert_false(s.opts.layout_set);
	assert_false(s.opts.fold.layout_set);
	assert_int_equal(run(&s, "load random", msg), CMD_CHANGED);
	assert_int_equal(run(&s, "rope sideways", msg), CMD_ERROR);
	assert_non_null(strstr(msg, "rope"));
	assert_null(strstr(msg, "--rope"));
	assert_int_equal(run(&s, "precision f32", msg), CMD_CHANGED);
	assert_int_equal(s.opts.precision, PREC_F32);
	assert_string_equal(commands_toggle_value(&s, TOGGLE_PRECISION), "f32");
	assert_int_equal(run(&s, "precision f16", msg), CMD_ERROR);
	assert_int_equal(run(&s, "tol 1e-6", msg), CMD_CHANGED);
	assert_close(s.opts.tol, 1e-6, 0);
	assert_int_equal(run(&s, "set tol 1e-9", msg), CMD_CHANGED);
	assert_close(s.opts.tol, 1e-9, 0);
	assert_int_equal(run(&s, "tol -1", msg), CMD_ERROR);
	assert_int_equal(run(&s, "tol default", msg), CMD_CHANGED);
	assert_close(s.opts.tol, 0, 0);
	assert_int_equal(run(&s, "permute-heads on", msg), CMD_CHANGED);
	assert_true(s.opts.fold.permute_heads);
	assert_int_equal(run(&s, "permute-heads off", msg), CMD_CHANGED);
	assert_false(s.opts.fold.permute_heads);
	assert_int_equal(run(&s, "permute-heads maybe", msg), CMD_ERROR);
}

static void test_shape(void **state)
{
	(void)state;
	TuiSettings s = fresh();
	char msg[512];
	assert_int_equal(s.source, SOURCE_DEFAULT);
	assert_int_equal(run(&s, "heads 8", msg), CMD_CHANGED);
	assert_int_equal(s.opts.shape.n_heads, 8);
	/* changing the shape leaves the built-in layer for a random one */
	assert_int_equal(s.source, SOURCE_RANDOM);
	assert_int_equal(run(&s, "kv-heads 2", msg), CMD_CHANGED);
	assert_int_equal(s.opts.shape.n_kv_heads, 2);
	assert_int_equal(run(&s, "heads 7", msg), CMD_ERROR);
	assert_int_equal(s.opts.shape.n_heads, 8);
	assert_non_null(strstr(msg, "divisible"));
	assert_int_equal(run(&s, "head-dim 15", msg), CMD_ERROR);
	assert_int_equal(run(&s, "head-dim 32", msg), CMD_CHANGED);
	assert_int_equal(s.opts.shape.head_dim, 32);
	assert_int_equal(s.opts.rope.rotary_dim, 32);
	assert_int_equal(run(&s, "d-model 128", msg), CMD_CHANGED);
	assert_int_equal(s.opts.shape.d_model, 128);
	assert_int_equal(run(&s, "seq 128", msg), CMD_CHANGED);
	assert_int_equal(s.opts.seq, 128);
	assert_int_equal(run(&s, "seq 0", msg), CMD_ERROR);
	assert_int_equal(run(&s, "seq abc", msg), CMD_ERROR);
	assert_int_equal(run(&s, "seq", msg), CMD_ERROR);
	assert_int_equal(s.opts.seq, 128);
	assert_int_equal(run(&s, "seed 7", msg), CMD_CHANGED);
	assert_int_equal(s.opts.seed, 7);
	assert_int_equal(s.opts.fold.seed, 7);
	assert_int_equal(run(&s, "with-bias on", msg), CMD_CHANGED);
	assert_true(s.opts.with_bias);
}

static void test_load_layer(void **state)
{
	(void)state;
	TuiSettings s = fresh();
	char msg[512];
	/* the built-in default model is a checkpoint: its layers are there */
	assert_int_equal(s.source, SOURCE_DEFAULT);
	assert_int_equal(run(&s, "layer 1", msg), CMD_CHANGED);
	assert_int_equal(s.opts.layer, 1);
	assert_int_equal(s.source, SOURCE_DEFAULT);
	assert_string_equal(msg, "layer 1");
	/* a random layer has none */
	assert_int_equal(run(&s, "load random", msg), CMD_CHANGED);
	assert_int_equal(s.opts.layer, 0);
	assert_int_equal(run(&s, "layer 1", msg), CMD_ERROR);
	assert_non_null(strstr(msg, "random layer"));
	assert_int_equal(s.opts.layer, 0);
	assert_int_equal(run(&s, "load default", msg), CMD_CHANGED);
	assert_int_equal(run(&s, "layer 1", msg), CMD_CHANGED);
	assert_int_equal(run(&s, "load /some/where/model.gguf", msg), CMD_CHANGED);
	assert_int_equal(s.opts.layer, 0);
	assert_int_equal(s.source, SOURCE_FILE);
	assert_string_equal(s.model_path, "/some/where/model.gguf");
	RunOptions o;
	commands_settings_options(&s, &o);
	assert_string_equal(o.model_path, "/some/where/model.gguf");
	assert_int_equal(run(&s, "layer 3", msg), CMD_CHANGED);
	assert_int_equal(s.opts.layer, 3);
	assert_int_equal(run(&s, "layer x", msg), CMD_ERROR);
	/* a loaded layer's shape is the file's */
	assert_int_equal(run(&s, "heads 8", msg), CMD_ERROR);
	assert_int_equal(run(&s, "load random", msg), CMD_CHANGED);
	assert_int_equal(s.source, SOURCE_RANDOM);
	commands_settings_options(&s, &o);
	assert_null(o.model_path);
	assert_int_equal(run(&s, "layer 1", msg), CMD_ERROR);
	assert_int_equal(run(&s, "load default", msg), CMD_CHANGED);
	assert_int_equal(s.source, SOURCE_DEFAULT);
	assert_int_equal(run(&s, "load", msg), CMD_ERROR);
	/* loading the default starts at its first layer */
	assert_int_equal(run(&s, "load /some/where/model.gguf", msg), CMD_CHANGED);
	assert_int_equal(run(&s, "layer 3", msg), CMD_CHANGED);
	assert_int_equal(run(&s, "load default", msg), CMD_CHANGED);
	assert_int_equal(s.opts.layer, 0);
}

static void test_view_head_misc(void **state)
{
	(void)state;
	TuiSettings s = fresh();
	char msg[512];
	assert_int_equal(run(&s, "view offset", msg), CMD_REDRAW);
	assert_int_equal(s.view, VIEW_OFFSET);
	assert_int_equal(run(&s, "view pairs", msg), CMD_REDRAW);
	assert_int_equal(s.view, VIEW_PAIRS);
	assert_int_equal(run(&s, "view nowhere", msg), CMD_ERROR);
	assert_int_equal(s.view, VIEW_PAIRS);
	assert_int_equal(run(&s, "head 3", msg), CMD_REDRAW);
	assert_int_equal(s.head, 3);
	assert_int_equal(run(&s, "head -1", msg), CMD_ERROR);
	assert_int_equal(run(&s, "quit", msg), CMD_QUIT);
	assert_int_equal(run(&s, "q", msg), CMD_QUIT);
	assert_int_equal(run(&s, "help", msg), CMD_HELP);
	assert_int_equal(run(&s, "tour", msg), CMD_TOUR);
	assert_int_equal(run(&s, "quit now", msg), CMD_ERROR);
	assert_int_equal(run(&s, "", msg), 0);
	assert_int_equal(run(&s, "   ", msg), 0);
	assert_int_equal(run(&s, "frobnicate 3", msg), CMD_ERROR);
	assert_non_null(strstr(msg, "frobnicate"));
	assert_int_equal(run(&s, "export out.safetensors", msg), CMD_EXPORT);
	assert_string_equal(s.action_path, "out.safetensors");
	assert_false(s.action_force);
	/* :export! replaces an existing file; a plain :export after it does not */
	assert_int_equal(run(&s, "export! again.safetensors", msg), CMD_EXPORT);
	assert_string_equal(s.action_path, "again.safetensors");
	assert_true(s.action_force);
	assert_int_equal(run(&s, "export out.safetensors", msg), CMD_EXPORT);
	assert_false(s.action_force);
	assert_int_equal(run(&s, "export!", msg), CMD_ERROR);
	assert_non_null(strstr(msg, "export! PATH"));
	assert_int_equal(run(&s, "verify other", msg), CMD_VERIFY);
	assert_string_equal(s.action_path, "other");
	assert_int_equal(run(&s, "export", msg), CMD_ERROR);
	run(&s, "drop commutes", msg);
	run(&s, "rotate qk", msg);
	assert_int_equal(run(&s, "reset", msg), CMD_CHANGED);
	FoldConfig d = fold_config_default();
	assert_int_equal(s.opts.fold.rotate, d.rotate);
	assert_int_equal(s.opts.fold.dropped, 0);
}

/* Garbage never crashes and never changes anything. */
static void test_garbage(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"rotate qkvoq", "drop ,,,", "seq 99999999999999999999", "heads 0",
		"kv-heads 9", "tol nan", "tol inf", "seed -3", "head 99999999999",
		"rope", "kind", "view", "toggle", "set", "layer", "theta -1",
		"scaling warp:2", "rotary-dim 3", "\x01\x02", ":::", "set set set",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		TuiSettings s = fresh(), before = s;
		char msg[512];
		unsigned b = run(&s, bad[i], msg);
		assert_true(b & CMD_ERROR);
		assert_true(msg[0] != 0);
		assert_memory_equal(&s, &before, sizeof s);
	}
	/* a line longer than any buffer */
	char big[4096];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	TuiSettings s = fresh();
	char msg[512];
	assert_true(run(&s, big, msg) & CMD_ERROR);
}

static bool has(const char *const *list, const char *w)
{
	for (; list && *list; list++)
		if (!strcmp(*list, w))
			return true;
	return false;
}

/* :r1 and :r3 through the flag table, their toggles cycling every
 * setting, their completions, and :reset turning them off. */
static void test_frame(void **state)
{
	(void)state;
	TuiSettings s = fresh();
	char msg[512];
	assert_int_equal(s.opts.fold.r1, FRAME_R1_NONE);
	assert_int_equal(run(&s, "r1 unfused", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.r1, FRAME_R1_UNFUSED);
	assert_non_null(strstr(msg, "does not commute"));
	assert_int_equal(run(&s, "r1 folded", msg), CMD_ERROR);
	assert_non_null(strstr(msg, "r1: 'folded' is not none, fused or unfused"));
	assert_int_equal(s.opts.fold.r1, FRAME_R1_UNFUSED);
	assert_int_equal(run(&s, "r3 folded", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.r3, FRAME_R3_FOLDED);
	assert_string_equal(commands_toggle_value(&s, TOGGLE_R3), "folded");
	/* alone, and the toggle: the next setting, round to none */
	assert_int_equal(run(&s, "r1", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.r1, FRAME_R1_NONE);
	for (int i = 0; i < FRAME_R3_COUNT; i++)
		commands_toggle_flip(&s, TOGGLE_R3, msg, sizeof msg);
	assert_int_equal(s.opts.fold.r3, FRAME_R3_FOLDED);
	const char *const *w = commands_completions("r3 ", 3);
	assert_true(has(w, "online") && has(w, "folded") && has(w, "none"));
	assert_int_equal(run(&s, "r1 fused", msg), CMD_CHANGED);
	assert_int_equal(run(&s, "reset", msg), CMD_CHANGED);
	assert_int_equal(s.opts.fold.r1, FRAME_R1_NONE);
	assert_int_equal(s.opts.fold.r3, FRAME_R3_NONE);
}

static void test_completion(void **state)
{
	(void)state;
	assert_true(has(commands_completions("", 0), "rotate"));
	assert_true(has(commands_completions("ro", 0), "rope"));
	assert_true(has(commands_completions("drop ", 5), "commutes"));
	assert_true(has(commands_completions("drop bias,", 10), "gqa-consistent"));
	assert_true(has(commands_completions("hold ", 5), "v-same"));
	assert_true(has(commands_completions("toggle ", 7), "permute-heads"));
	assert_true(has(commands_completions("kind ", 5), "hadamard"));
	assert_true(has(commands_completions("rope ", 5), "interleaved"));
	assert_true(has(commands_completions("view ", 5), "heatmap"));
	assert_true(has(commands_completions("set ", 4), "tol"));
	assert_true(has(commands_completions("set precision ", 14), "f32"));
	/* a path after :load goes to filename completion */
	assert_null(commands_completions("load ", 5));
	assert_null(commands_completions("export! ", 8));
	assert_true(has(commands_completions("exp", 0), "export!"));
	/* every command name listed in help runs (or fails with a message) */
	const char *const *h = commands_help_lines();
	assert_non_null(h[0]);
	bool bang = false;
	for (size_t i = 0; h[i]; i += 2) {
		assert_non_null(h[i + 1]);
		bang = bang || !strcmp(h[i], ":export! PATH");
	}
	assert_true(bang);
}

/* Completion, help and parsing read one table: every assumption and kind
 * core names is offered, listed and taken; aliases complete like their
 * command; every command the help lists completes as a command. */
static void test_one_table(void **state)
{
	(void)state;
	char msg[512], line[64];
	const char *const *h = commands_help_lines();
	for (size_t i = 0; h[i]; i += 2) {
		char name[64];
		sscanf(h[i], ":%63s", name);
		assert_true(has(commands_completions("", 0), name));
	}
	for (unsigned a = 0; fold_assumption_name(a); a++) {
		const char *n = fold_assumption_name(a);
		assert_true(has(commands_completions("drop ", 5), n));
		assert_true(has(commands_completions("toggle ", 7), n));
		TuiSettings s = fresh();
		snprintf(line, sizeof line, "drop %s", n);
		assert_int_equal(run(&s, line, msg), CMD_CHANGED);
		assert_int_equal(s.opts.fold.dropped, 1u << a);
	}
	bool listed = false;
	for (size_t i = 0; h[i]; i += 2)
		listed = listed || (!strcmp(h[i], ":kind K") && strstr(h[i + 1], "layout-mismatch"));
	assert_true(listed);
	for (int k = ROT_HAAR; k < ROT_KIND_COUNT; k++) {
		const char *n = rotation_kind_name((RotKind)k);
		assert_true(has(commands_completions("kind ", 5), n));
		TuiSettings s = fresh();
		snprintf(line, sizeof line, "kind %s", n);
		assert_int_equal(run(&s, line, msg), CMD_CHANGED);
		assert_int_equal(s.opts.fold.kind, k);
	}
	assert_false(has(commands_completions("kind ", 5), "commuting"));
	assert_true(has(commands_completions("rope-scaling ", 13), "yarn:"));
	assert_true(has(commands_completions("set rope-scaling ", 17), "ntk:"));
	TuiSettings s = fresh();
	assert_int_equal(run(&s, "kind spin", msg), CMD_ERROR);
	assert_string_equal(msg, "kind: 'spin' is not haar, hadamard, pair-swap, pair-reflect, "
				 "layout-mismatch or pair-mix (pair-mix:EPS with 0 < EPS <= 1)");
	assert_int_equal(run(&s, "kind pair-mix:1e-6", msg), CMD_CHANGED);
	assert_close(s.opts.fold.mix_eps, 1e-6, 0);
	assert_int_equal(run(&s, "eps up", msg), CMD_CHANGED);
	assert_close(s.opts.fold.mix_eps, 1e-5, 0);
	assert_true((s.opts.fold.dropped & ASSUME_COMMUTES) != 0);
	assert_int_equal(run(&s, "eps down", msg), CMD_CHANGED);
	assert_int_equal(run(&s, "eps down", msg), CMD_CHANGED);
	assert_close(s.opts.fold.mix_eps, 1e-7, 0);
	assert_int_equal(run(&s, "eps 2", msg), CMD_ERROR);
	assert_int_equal(run(&s, "export-figure x.gif", msg), CMD_ERROR);
	assert_int_equal(run(&s, "export-figure x.svg", msg), CMD_FIGURE);
	assert_int_equal(run(&s, "export-csv x.csv", msg), CMD_CSV);
	assert_int_equal(run(&s, "source t.txt", msg), CMD_SOURCE);
	s = fresh();
	assert_int_equal(run(&s, "view nope", msg), CMD_ERROR);
	assert_string_equal(msg, "view: 'nope' is not heatmap, offset, heads, pairs, info, layers or "
				 "rotation");
}

/* Compare mode, the rotation view, the log; one wording for a dropped
 * assumption by key and by command; what reset keeps. */
static void test_compare_words(void **state)
{
	(void)state;
	TuiSettings s = fresh();
	char msg[512], key[512];
	assert_int_equal(run(&s, "against", msg), CMD_ERROR);
	assert_int_equal(run(&s, "against off", msg), CMD_ERROR);
	assert_int_equal(run(&s, "against other.gguf", msg), CMD_CHANGED);
	assert_string_equal(s.against_path, "other.gguf");
	assert_int_equal(run(&s, "view layers", msg), CMD_REDRAW);
	assert_int_equal(s.view, VIEW_LAYERS);
	assert_int_equal(run(&s, "against off", msg), CMD_CHANGED);
	assert_string_equal(s.against_path, "");
	assert_int_equal(s.view, VIEW_HEATMAP);
	TuiSettings r = fresh();
	assert_int_equal(run(&r, "load random", msg), CMD_CHANGED);
	assert_int_equal(run(&r, "against other.gguf", msg), CMD_ERROR);
	assert_non_null(strstr(msg, ":load"));
	/* --against on the command line starts in compare mode */
	RunOptions o;
	opts_defaults(&o);
	o.model_path = "a.gguf";
	o.against_path = "b.gguf";
	TuiSettings c;
	commands_settings_init(&c, &o, false);
	assert_string_equal(c.against_path, "b.gguf");
	assert_null(c.opts.against_path);

	assert_int_equal(run(&s, "rotation k", msg), CMD_REDRAW);
	assert_int_equal(s.rot_part, 'k');
	assert_int_equal(s.view, VIEW_ROTATION);
	assert_int_equal(run(&s, "rotation all", msg), CMD_REDRAW);
	assert_int_equal(s.rot_part, 'a');
	assert_int_equal(run(&s, "rotation w", msg), CMD_ERROR);
	/* the rotation view's scale and scroll: fit pools the whole matrix,
	 * full shows one coordinate a cell; :scroll moves it 8 coordinates a
	 * step, never below 0, and the clamp keeps it inside the head */
	assert_false(s.rot_full);
	assert_int_equal(run(&s, "scroll up", msg), CMD_REDRAW);
	assert_true(s.rot_full);
	assert_int_equal(s.rot_off, 0);
	assert_int_equal(run(&s, "scroll down", msg), CMD_REDRAW);
	assert_int_equal(run(&s, "scroll down", msg), CMD_REDRAW);
	assert_int_equal(s.rot_off, 16);
	assert_string_equal(msg, "rotation view: one coordinate a cell from 16");
	commands_rotation_clamp(&s, 16);
	assert_int_equal(s.rot_off, 8);
	commands_rotation_clamp(&s, 128);
	assert_int_equal(s.rot_off, 8);
	assert_int_equal(run(&s, "scroll home", msg), CMD_REDRAW);
	assert_false(s.rot_full);
	assert_int_equal(s.rot_off, 0);
	assert_int_equal(run(&s, "rotation full", msg), CMD_REDRAW);
	assert_true(s.rot_full);
	assert_int_equal(run(&s, "rotation fit", msg), CMD_REDRAW);
	assert_false(s.rot_full);
	assert_int_equal(run(&s, "scroll sideways", msg), CMD_ERROR);
	/* the info view scrolls by lines; the heatmap does not scroll */
	assert_int_equal(run(&s, "view info", msg), CMD_REDRAW);
	assert_int_equal(run(&s, "scroll down", msg), CMD_REDRAW);
	assert_int_equal(s.view_scroll, 5);
	assert_int_equal(run(&s, "scroll up", msg), CMD_REDRAW);
	assert_int_equal(run(&s, "scroll up", msg), CMD_REDRAW);
	assert_int_equal(s.view_scroll, 0);
	assert_int_equal(run(&s, "view heatmap", msg), CMD_REDRAW);
	assert_int_equal(run(&s, "scroll down", msg), CMD_ERROR);
	assert_string_equal(msg, "scroll: the heatmap view fits its box (the rotation and info views scroll)");
	/* the cell styles, by name and cycled (the C key) */
	assert_int_equal(s.cells, CELLS_AUTO);
	assert_int_equal(run(&s, "cells braille", msg), CMD_REDRAW);
	assert_int_equal(s.cells, CELLS_BRAILLE);
	assert_int_equal(run(&s, "set cells half", msg), CMD_REDRAW);
	assert_int_equal(s.cells, CELLS_HALF);
	assert_int_equal(run(&s, "cells next", msg), CMD_REDRAW);
	assert_int_equal(s.cells, CELLS_BRAILLE);
	assert_int_equal(run(&s, "cells next", msg), CMD_REDRAW);
	assert_int_equal(s.cells, CELLS_AUTO);
	assert_string_equal(msg, "cells auto");
	assert_int_equal(run(&s, "cells ascii", msg), CMD_REDRAW);
	assert_string_equal(commands_cells_name(s.cells), "ascii");
	assert_int_equal(run(&s, "cells sixel", msg), CMD_ERROR);
	assert_int_equal(s.cells, CELLS_ASCII);
	assert_int_equal(run(&s, "log", msg), CMD_LOG);
	assert_int_equal(run(&s, "log now", msg), CMD_ERROR);

	TuiSettings a = fresh(), b = fresh();
	commands_toggle_flip(&a, TOGGLE_ASSUME0 + 1, key, sizeof key);
	assert_int_equal(run(&b, "drop commutes", msg), CMD_CHANGED);
	assert_string_equal(key, msg);
	assert_string_equal(msg, "dropped commutes (dropped now: commutes)");

	assert_int_equal(run(&a, "precision f32", msg), CMD_CHANGED);
	assert_int_equal(run(&a, "fold-layout", msg), CMD_CHANGED);
	assert_int_equal(run(&a, "reset", msg), CMD_CHANGED);
	assert_false(a.opts.fold.layout_set);
	assert_int_equal(a.opts.fold.dropped, 0);
	assert_int_equal(a.opts.precision, PREC_F32);
	assert_non_null(strstr(msg, "kept"));
	assert_non_null(strstr(msg, "float32"));
}

/* The message log: oldest first, repeats and empty text skipped, the
 * oldest dropped past MSGLOG_MAX. */
static void test_msglog(void **state)
{
	(void)state;
	static MsgLog l;
	msglog_add(&l, MSG_INFO, "");
	assert_int_equal(l.n, 0);
	msglog_add(&l, MSG_EXPLAIN, "why one");
	msglog_add(&l, MSG_EXPLAIN, "why one");
	msglog_add(&l, MSG_ERROR, "bad");
	assert_int_equal(l.n, 2);
	assert_string_equal(msglog_get(&l, 0)->text, "why one");
	assert_int_equal(msglog_get(&l, 1)->kind, MSG_ERROR);
	assert_string_equal(msglog_kind_name(MSG_VERIFY), "verify");
	char buf[32];
	for (int i = 0; i < MSGLOG_MAX + 5; i++) {
		snprintf(buf, sizeof buf, "m%d", i);
		msglog_add(&l, MSG_INFO, buf);
	}
	assert_int_equal(l.n, MSGLOG_MAX);
	assert_string_equal(msglog_get(&l, 0)->text, "m5");  /* 2 + MAX + 5 added, 7 dropped */
	snprintf(buf, sizeof buf, "m%d", MSGLOG_MAX + 4);
	assert_string_equal(msglog_get(&l, MSGLOG_MAX - 1)->text, buf);
	msglog_clear(&l);
	assert_int_equal(l.n, 0);
}

/* Every stop of the built-in tour (data/tour.txt) runs cleanly, in
 * order, from any state. */
static void test_tour_commands(void **state)
{
	(void)state;
	TuiSettings s = fresh();
	Tour *tour;
	char err[512];
	if (tour_open(NULL, &s, &tour, err, sizeof err))
		fail_msg("%s", err);
	assert_true(tour_count(tour) >= 9);
	for (size_t i = 0; i < tour_count(tour); i++) {
		const TourStep *t = tour_step(tour, i);
		assert_non_null(t->title);
		assert_non_null(t->text);
		for (size_t k = 0; t->commands[k]; k++) {
			char msg[512];
			unsigned b = run(&s, t->commands[k], msg);
			if (b & CMD_ERROR)
				fail_msg("tour step %zu: '%s': %s", i, t->commands[k], msg);
		}
	}
	assert_null(tour_step(tour, tour_count(tour)));
	/* the drop-commutes step leaves exactly commutes dropped */
	TuiSettings a = fresh();
	const TourStep *t = tour_step(tour, 2);
	for (size_t k = 0; t->commands[k]; k++) {
		char msg[512];
		run(&a, t->commands[k], msg);
	}
	assert_int_equal(a.opts.fold.dropped, ASSUME_COMMUTES);
	assert_int_equal(a.opts.fold.rotate, PART_ALL);
	/* the pair-mix stop: a gradual break of commutes */
	bool mix = false;
	for (size_t i = 0; i < tour_count(tour); i++) {
		TuiSettings b = fresh();
		const TourStep *u = tour_step(tour, i);
		for (size_t k = 0; u->commands[k]; k++) {
			char msg[512];
			run(&b, u->commands[k], msg);
		}
		mix |= b.opts.fold.kind == ROT_PAIR_MIX && (b.opts.fold.dropped & ASSUME_COMMUTES);
	}
	assert_true(mix);
	/* stop 4 no longer claims a Haar error rises over the offsets */
	assert_null(strstr(tour_step(tour, 3)->text, "rises"));
	tour_free(tour);
}

/* The script format: cards of '#' lines, ':' commands after them, the
 * commands before the first card apart, errors with their line. */
static void test_tour_script(void **state)
{
	(void)state;
	TourScript sc;
	char err[512];
	const char *text = ":seq 16\n\n# First card\n# its text,\n#\n#   on two lines\n"
			   ":drop commutes\n  :view offset  \n# Second\n\n# Third\n# words\n";
	assert_int_equal(tour_script_parse(text, "t.txt", &sc, err, sizeof err), 0);
	assert_int_equal(sc.setup.n_commands, 1);
	assert_string_equal(sc.setup.commands[0], "seq 16");
	assert_int_equal(sc.n_cards, 3);
	assert_string_equal(sc.cards[0].title, "First card");
	assert_string_equal(sc.cards[0].text, "its text, on two lines");
	assert_int_equal(sc.cards[0].n_commands, 2);
	assert_string_equal(sc.cards[0].commands[1], "view offset");
	assert_int_equal(sc.cards[0].lines[1], 8);
	assert_null(sc.cards[0].commands[2]);
	assert_string_equal(sc.cards[1].title, "Second");
	assert_string_equal(sc.cards[1].text, "");
	assert_int_equal(sc.cards[1].n_commands, 0);
	assert_non_null(sc.cards[1].commands);
	assert_string_equal(sc.cards[2].title, "Third");
	tour_script_free(&sc);
	assert_int_equal(tour_script_parse("# ok\nplain words\n", "t.txt", &sc, err, sizeof err), -1);
	assert_non_null(strstr(err, "t.txt:2:"));
	assert_int_equal(tour_script_parse("# ok\n:\n", "t.txt", &sc, err, sizeof err), -1);
	assert_non_null(strstr(err, "t.txt:2: an empty ':' command"));
	/* a bad command is named by file and line before anything runs */
	char path[] = "/tmp/ropefold-tour-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *bad = "# A card\n:drop commutes\n\n# Another\n:kind spin\n";
	assert_int_equal(write(fd, bad, strlen(bad)), (int)strlen(bad));
	close(fd);
	TuiSettings s = fresh();
	Tour *t;
	assert_int_equal(tour_open(path, &s, &t, err, sizeof err), -1);
	assert_non_null(strstr(err, ":5: kind: 'spin' is not"));
	unlink(path);
	assert_int_equal(tour_open("/nonexistent/tour.txt", &s, &t, err, sizeof err), -1);
	assert_non_null(strstr(err, "/nonexistent/tour.txt: cannot open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotate),
		cmocka_unit_test(test_drop_hold),
		cmocka_unit_test(test_toggle),
		cmocka_unit_test(test_kind_rope_precision),
		cmocka_unit_test(test_compare_words),
		cmocka_unit_test(test_msglog),
		cmocka_unit_test(test_frame),
		cmocka_unit_test(test_shape),
		cmocka_unit_test(test_load_layer),
		cmocka_unit_test(test_view_head_misc),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_completion),
		cmocka_unit_test(test_one_table),
		cmocka_unit_test(test_tour_commands),
		cmocka_unit_test(test_tour_script),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
