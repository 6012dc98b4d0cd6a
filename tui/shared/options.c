#include "config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/frame.h"
#include "core/residual.h"
#include "core/rope.h"
#include "core/rotation.h"
#include "tui/shared/names.h"
#include "tui/shared/options.h"

void opts_defaults(RunOptions *o)
{
	memset(o, 0, sizeof *o);
	o->shape.d_model = 64;
	o->shape.n_heads = 4;
	o->shape.n_kv_heads = 4;
	o->shape.head_dim = 16;
	o->seq = 32;
	o->seed = 1;
	o->rope = rope_spec_default(16);
	o->fold = fold_config_default();
	o->repeat = 5;
	o->top = 5;
	o->mla.kv_lora_rank = 32;
	o->mla.qk_nope_dim = 16;
	o->mla.qk_rope_dim = 8;
	o->mla.v_head_dim = 16;
}

/* Strict unsigned parse: digits only, within [lo, hi]. */
static int parse_size(const char *s, size_t lo, size_t hi, size_t *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno || v < lo || v > hi)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* Strict decimal number: all of s, no leading space, hex, inf or nan
 * (strtod would take them), finite. An underflow is its value (a tiny
 * number or 0: the caller's range decides), not an error. */
static int parse_double(const char *s, double *out)
{
	char *end;
	if (!s || !*s || !strchr("0123456789.+-", *s) || strpbrk(s, "xX"))
		return -1;
	double v = strtod(s, &end);
	if (*end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

/* What a flag is about, for the message when a mode refuses it. */
typedef enum {
	CAT_OTHER = 0,
	CAT_SHAPE,  /* shapes a random layer only: refused with a checkpoint */
	CAT_EVAL,   /* sets the evaluation: refused by modes that evaluate nothing */
} FlagCat;

/* Count the ids of a --tokens list: digits separated by single commas,
 * each id below 2^32. */
static int count_tokens(const char *s, size_t *n)
{
	*n = 0;
	for (const char *p = s;;) {
		size_t digits = 0;
		unsigned long long v = 0;
		for (; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 12)
				v = v * 10 + (unsigned long long)(*p - '0');
		if (!digits || digits > 10 || v > UINT32_MAX)
			return -1;
		(*n)++;
		if (!*p)
			return 0;
		if (*p++ != ',')
			return -1;
	}
}

typedef struct FlagDef FlagDef;

/* Put a flag's value (NULL for a switch) into o: 0, or -1 with the one
 * message in err. */
typedef int (*FlagSetter)(RunOptions *o, const FlagDef *fd, const char *v, char *err,
			  size_t errlen);

struct FlagDef {
	const char *name;
	unsigned group;         /* the OPT_* groups it belongs to */
	FlagCat cat;
	const char *meta;       /* the value's placeholder; NULL: a switch */
	/* The help, and in fold the help where it differs (or NULL). A "{SEP}"
	 * or "{SEP|LAST}" in these and in rule lists the names of `values`. */
	const char *help;
	const char *fold_help;
	/* What a value must be, for every message about it: the whole rule,
	 * or, for a whole number (hi > 0), its noun, "from lo to hi" added
	 * (the parser takes the same lo and hi). */
	const char *rule;
	size_t lo, hi;
	FlagSetter set;
	size_t field;           /* for the generic setters: offsetof(RunOptions, ...) */
	NameAt values;          /* the names a value is made of, or NULL */
};

/* Bounds of the flags whose values are not table ranges. The rules of
 * --rope-theta, --tol and --rope-scaling spell theirs (and rope.h's
 * ROPE_SCALING_FACTOR_*) in words; tests/test_options.c holds each rule
 * to the bound the parser keeps. */
#define OPT_MAX_LAYER ((size_t)1 << 20)
#define OPT_MAX_THETA 1e12
#define OPT_MAX_TOL 1e6

#define FAIL(...)                                        \
	do {                                             \
		snprintf(err, errlen, __VA_ARGS__);      \
		return -1;                               \
	} while (0)

/* text with its "{SEP}" or "{SEP|LAST}" listing fd's value names. */
static const char *expand(const FlagDef *fd, const char *text, char *buf, size_t n)
{
	return names_expand(text, fd->values, buf, n);
}

/* A flag's rule in words (FlagDef.rule), into buf. */
static const char *rule_text(const FlagDef *fd, char *buf, size_t n)
{
	char rule[200];
	expand(fd, fd->rule ? fd->rule : "a value", rule, sizeof rule);
	if (fd->hi)
		snprintf(buf, n, "%s from %zu to %zu", rule, fd->lo, fd->hi);
	else
		snprintf(buf, n, "%s", rule);
	return buf;
}

/* The one message of a value that breaks fd's rule: -1. */
static int bad_value(const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	char rule[256];
	snprintf(err, errlen, "%s: '%s' is not %s", fd->name, v, rule_text(fd, rule, sizeof rule));
	return -1;
}

/* A whole number within fd's range into *out, or the message. */
static int whole(const FlagDef *fd, const char *v, size_t *out, char *err, size_t errlen)
{
	return parse_size(v, fd->lo, fd->hi, out) ? bad_value(fd, v, err, errlen) : 0;
}

/* The member of o a generic setter writes. */
#define FIELD(o, fd, type) ((type *)((char *)(o) + (fd)->field))

/* ---- setters ---------------------------------------------------------------- */

static int set_size(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	return whole(fd, v, FIELD(o, fd, size_t), err, errlen);
}

/* An even whole number (--head-dim, --rotary-dim). */
static int set_even(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	size_t n;
	if (whole(fd, v, &n, err, errlen) || (n % 2 && bad_value(fd, v, err, errlen)))
		return -1;
	*FIELD(o, fd, size_t) = n;
	return 0;
}

static int set_rotary_dim(RunOptions *o, const FlagDef *fd, const char *v, char *err,
			  size_t errlen)
{
	if (set_even(o, fd, v, err, errlen))
		return -1;
	o->rotary_set = true;
	return 0;
}

/* A path (--model, --out, --undo): anything but empty. */
static int set_path(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	char rule[256];
	if (!*v)
		FAIL("%s: empty path (%s)", fd->name, rule_text(fd, rule, sizeof rule));
	*FIELD(o, fd, const char *) = v;
	return 0;
}

/* A switch: the bool member is set. */
static int set_switch(RunOptions *o, const FlagDef *fd, const char *v, char *err,
		      size_t errlen)
{
	(void)v;
	(void)err;
	(void)errlen;
	*FIELD(o, fd, bool) = true;
	return 0;
}

static int set_seed(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	size_t n;
	if (whole(fd, v, &n, err, errlen))
		return -1;
	o->seed = n;
	o->fold.seed = n;
	return 0;
}

static int set_rope(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	if (rope_layout_parse(v, &o->rope.layout))
		return bad_value(fd, v, err, errlen);
	o->layout_set = true;
	return 0;
}

static int set_theta(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	double x;
	if (parse_double(v, &x) || !(x > 0) || x > OPT_MAX_THETA)
		return bad_value(fd, v, err, errlen);
	o->rope.theta = x;
	o->theta_set = true;
	return 0;
}

static int set_scaling(RunOptions *o, const FlagDef *fd, const char *v, char *err,
		       size_t errlen)
{
	int r = rope_scaling_parse(v, &o->rope.scaling);
	if (r == -2)  /* the rule is right, its factor not */
		FAIL("--rope-scaling: '%s': F must be a decimal number from 1 to 1e6 "
		     "(F >= 1 as in HF's rules; at most a million times the trained "
		     "context)", v);
	if (r)
		return bad_value(fd, v, err, errlen);
	o->scaling_set = true;
	return 0;
}

static int set_input(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	if (!strcmp(v, "random"))
		o->input = INPUT_RANDOM;
	else if (!strcmp(v, "embed"))
		o->input = INPUT_EMBED;
	else
		return bad_value(fd, v, err, errlen);
	return 0;
}

static int set_tokens(RunOptions *o, const FlagDef *fd, const char *v, char *err,
		      size_t errlen)
{
	size_t n;
	char rule[256];
	if (!*v)
		FAIL("--tokens: empty list (%s)", rule_text(fd, rule, sizeof rule));
	if (count_tokens(v, &n))
		return bad_value(fd, v, err, errlen);
	if (n > LAYER_MAX_SEQ)
		FAIL("--tokens: %zu ids, more than the %zu a sequence may hold", n, LAYER_MAX_SEQ);
	o->tokens = v;
	return 0;
}

static int set_precision(RunOptions *o, const FlagDef *fd, const char *v, char *err,
			 size_t errlen)
{
	if (!strcmp(v, "f64") || !strcmp(v, "float64"))
		o->precision = PREC_F64;
	else if (!strcmp(v, "f32") || !strcmp(v, "float32"))
		o->precision = PREC_F32;
	else
		return bad_value(fd, v, err, errlen);
	return 0;
}

static int set_tol(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	double x;
	if (parse_double(v, &x) || !(x > 0) || x >= OPT_MAX_TOL)
		return bad_value(fd, v, err, errlen);
	o->tol = x;
	return 0;
}

static int set_rotate(RunOptions *o, const FlagDef *fd, const char *v, char *err,
		      size_t errlen)
{
	return fold_rotate_parse(v, &o->fold.rotate) ? bad_value(fd, v, err, errlen) : 0;
}

static int set_drop(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	const char *bad = NULL;
	unsigned bits;
	char rule[256];
	if (!*v)
		FAIL("--drop: empty list (%s)", rule_text(fd, rule, sizeof rule));
	if (fold_drop_parse(v, &bits, &bad))
		FAIL("--drop: unknown assumption in '%s' (%s)", v, rule_text(fd, rule, sizeof rule));
	o->fold.dropped |= bits;  /* repeated --drop lists add up */
	return 0;
}

static int set_kind(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	if (rotation_kind_parse_eps(v, &o->fold.kind, &o->fold.mix_eps) ||
	    o->fold.kind == ROT_COMMUTING)
		return bad_value(fd, v, err, errlen);
	return 0;
}

static int set_layers(RunOptions *o, const FlagDef *fd, const char *v, char *err,
		      size_t errlen)
{
	char rule[256];
	if (!*v)
		FAIL("--layers: empty value (%s)", rule_text(fd, rule, sizeof rule));
	o->layers = v;
	o->layers_flag = "--layers";
	return 0;
}

static int set_dtype(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	StoreDtype t;
	/* keep, a float, or a block quantization fold can quantize to (not
	 * Q8_K, ggml's intermediate of dot products) */
	if (strcmp(v, "keep") && (dtype_parse(v, &t) || t == STORE_Q8_K ||
				  strcmp(v, dtype_lower_name(t))))
		return bad_value(fd, v, err, errlen);
	o->dtype = v;
	return 0;
}

/* --residual: R1 of the whole residual stream. */
static int set_residual(RunOptions *o, const FlagDef *fd, const char *v, char *err,
			size_t errlen)
{
	ResKind k;
	if (residual_kind_parse(v, &k))
		return bad_value(fd, v, err, errlen);
	o->residual = v;
	return 0;
}

/* --vo: R2, V's rows and O's columns per kv group. */
static int set_vo(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "hadamard") && strcmp(v, "haar") && strcmp(v, "same"))
		return bad_value(fd, v, err, errlen);
	o->vo = v;
	return 0;
}

/* --r1: R1 on the layer's residual block, its norm fused or not. */
static int set_r1(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	return frame_r1_parse(v, &o->fold.r1) ? bad_value(fd, v, err, errlen) : 0;
}

/* --r3: a Hadamard on q and k after RoPE, online or folded. */
static int set_r3(RunOptions *o, const FlagDef *fd, const char *v, char *err, size_t errlen)
{
	return frame_r3_parse(v, &o->fold.r3) ? bad_value(fd, v, err, errlen) : 0;
}

#define AT(member) offsetof(RunOptions, member)

/* Every flag, once: its groups, help, rule and setter. */
static const FlagDef flags[] = {
	{"--model", OPT_MODEL, CAT_OTHER, "PATH",
	 "checkpoint file or folder (default: a random layer)",
	 "the checkpoint to fold, a file or folder (required)", "a path to a checkpoint file or folder", 0, 0,
	 set_path, AT(model_path), NULL},
	{"--against", OPT_AGAINST, CAT_OTHER, "PATH",
	 "compare mode: evaluate the layer against this checkpoint's stored layer, not a fold (needs --model)",
	 NULL, "a path to a checkpoint file or folder", 0, 0,
	 set_path, AT(against_path), NULL},
	{"--layer", OPT_LAYER | OPT_FOLDIO, CAT_OTHER, "N",
	 "layer of the checkpoint (default 0; needs --model)",
	 "fold only layer N: the same as --layers N", "a layer index", 0, OPT_MAX_LAYER,
	 set_size, AT(layer), NULL},
	{"--d-model", OPT_LAYER, CAT_SHAPE, "N", "random layer only: model width D (default 64)", NULL, "a size", 1, LAYER_MAX_DIM,
	 set_size, AT(shape.d_model), NULL},
	{"--heads", OPT_LAYER, CAT_SHAPE, "N", "random layer only: query heads H (default 4)", NULL, "a count", 1, LAYER_MAX_HEADS,
	 set_size, AT(shape.n_heads), NULL},
	{"--kv-heads", OPT_LAYER, CAT_SHAPE, "N", "random layer only: key/value heads G (default 4)", NULL, "a count", 1, LAYER_MAX_HEADS,
	 set_size, AT(shape.n_kv_heads), NULL},
	{"--head-dim", OPT_LAYER, CAT_SHAPE, "N", "random layer only: head dim d, even (default 16)", NULL, "an even size", 2, LAYER_MAX_HEAD_DIM,
	 set_even, AT(shape.head_dim), NULL},
	{"--seq", OPT_LAYER | OPT_TOUR | OPT_RUN_INPUT, CAT_EVAL, "N",
	 "sequence length T (default 32)", NULL, "a length", 1, LAYER_MAX_SEQ,
	 set_size, AT(seq), NULL},
	{"--seed", OPT_MODEL | OPT_TOUR, CAT_OTHER, "N",
	 "seed of the layer, input and rotations (default 1)",
	 "seed of the rotations; layer i uses one derived from it (default 1)", "a whole number", 0, SIZE_MAX,
	 set_seed, 0, NULL},
	{"--rope", OPT_MODEL, CAT_OTHER, "interleaved|half",
	 "RoPE pair layout; on a checkpoint, the layout the fold is built for (default half; a checkpoint's own)",
	 "the RoPE pair layout the fold is built for (default: the checkpoint's own)", "'interleaved' or 'half'", 0, 0,
	 set_rope, 0, NULL},
	{"--rotary-dim", OPT_MODEL, CAT_OTHER, "N",
	 "rotary dim r <= d, even (default: the head dim; a checkpoint's own)",
	 "rotary dim r <= d, even (default: the checkpoint's own)", "an even size", 0, LAYER_MAX_HEAD_DIM,
	 set_rotary_dim, AT(rope.rotary_dim), NULL},
	{"--rope-theta", OPT_MODEL, CAT_OTHER, "X",
	 "RoPE base theta (default 10000; a checkpoint's own)",
	 "RoPE base theta (default: the checkpoint's own)", "a decimal number above 0 and at most 1e12", 0, 0,
	 set_theta, 0, NULL},
	{"--rope-scaling", OPT_MODEL, CAT_OTHER, "none|linear:F|ntk:F|yarn:F|llama3:F",
	 "frequency scaling (default none; a checkpoint's own)",
	 "frequency scaling (default: the checkpoint's own)", "none, or RULE:F with RULE linear, ntk, yarn or llama3 and F a decimal number from 1 to 1e6", 0, 0,
	 set_scaling, 0, NULL},
	{"--with-bias", OPT_LAYER, CAT_SHAPE, NULL, "random layer only: give it q/k/v/o biases", NULL, NULL, 0, 0,
	 set_switch, AT(with_bias), NULL},
	{"--input", OPT_LAYER, CAT_EVAL, "random|embed",
	 "activations: N(0,1) rows or a checkpoint's token embeddings (default random; embed with --tokens)", NULL, "'random' or 'embed'", 0, 0,
	 set_input, 0, NULL},
	{"--tokens", OPT_LAYER | OPT_RUN_INPUT, CAT_EVAL, "LIST",
	 "token ids of the input, comma-separated: implies --input embed, T = their count", NULL, "a comma-separated list of token ids, each a whole number from 0 to 4294967295", 0, 0,
	 set_tokens, 0, NULL},
	{"--precision", OPT_EVAL | OPT_LOGITS, CAT_EVAL, "f64|f32", "compute precision (default f64)", NULL, "'f64' or 'f32'", 0, 0,
	 set_precision, 0, NULL},
	{"--tol", OPT_EVAL, CAT_EVAL, "X", "relative tolerance (default 1e-9 in f64, 1e-3 in f32)", NULL, "a decimal number above 0 and below 1e6", 0, 0,
	 set_tol, 0, NULL},
	{"--rotate", OPT_FOLD, CAT_OTHER, "SET", "rotated parts: letters of qkvo, or none (default qkvo)", NULL, "a set of the letters q, k, v, o (each once) or 'none'", 0, 0,
	 set_rotate, 0, NULL},
	{"--drop", OPT_FOLD, CAT_OTHER, "LIST",
	 "assumptions to drop: {,} (default none; repeats add up)", NULL, "a comma-separated list of {, }", 0, 0,
	 set_drop, 0, names_assumption},
	{"--kind", OPT_FOLD, CAT_OTHER, "K",
	 "R_q/R_k kind, used only when commutes is dropped: {, } (default haar; pair-mix:EPS turns neighbouring pairs into each other by EPS radians, bare 1e-3)", NULL, "{, | or } (pair-mix:EPS with 0 < EPS <= 1)", 0, 0,
	 set_kind, 0, names_kind},
	{"--permute-heads", OPT_FOLD, CAT_OTHER, NULL, "also permute the kv groups with their query heads", NULL, NULL, 0, 0,
	 set_switch, AT(fold.permute_heads), NULL},
	{"--json", OPT_JSON, CAT_OTHER, NULL, "one JSON document on stdout", NULL, NULL, 0, 0,
	 set_switch, AT(json), NULL},
	{"--repeat", OPT_BENCH, CAT_EVAL, "N", "timed runs after a warm-up (default 5)", NULL, "a count", 1, 1000,
	 set_size, AT(repeat), NULL},
	{"--out", OPT_FOLDIO | OPT_LOGITS, CAT_OTHER, "PATH", "output checkpoint", "output checkpoint (required)", "a path for the output checkpoint", 0, 0,
	 set_path, AT(out), NULL},
	{"--layers", OPT_FOLDIO, CAT_OTHER, "all|N|N..M", "layers to fold or verify (default all)",
	 "layers to fold (default all)", "all, N or N..M (layer indices, N <= M)", 0, 0,
	 set_layers, 0, NULL},
	{"--dtype", OPT_FOLDIO, CAT_OTHER, "keep|f32|f64|f16|bf16|q8_0|q4_k|...", "stored dtype of folded tensors (default keep; a block-quantized tensor's keep is f16)", NULL, "'keep', a float (f64, f32, f16, bf16) or a GGUF block quantization (q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs)", 0, 0,
	 set_dtype, 0, NULL},
	{"--undo", OPT_FOLDIO, CAT_OTHER, "SIDECAR", "undo the fold recorded in a sidecar JSON", NULL, "a path to a sidecar JSON", 0, 0,
	 set_path, AT(undo), NULL},
	{"--force", OPT_FOLDIO, CAT_OTHER, NULL, "overwrite an existing output", NULL, NULL, 0, 0,
	 set_switch, AT(force), NULL},
	{"--top", OPT_LOGITS, CAT_OTHER, "K", "the K most likely next tokens per position (default 5)", NULL, "a count", 1, 1000,
	 set_size, AT(top), NULL},
	{"--generate", OPT_LOGITS, CAT_OTHER, "N", "then continue greedily for N tokens and print them", NULL, "a count", 0, 100000,
	 set_size, AT(generate), NULL},
	{"--logits", OPT_VERIFY_LOGITS, CAT_OTHER, NULL, "also run both models and compare their logits", NULL, NULL, 0, 0,
	 set_switch, AT(logits), NULL},
	{"--residual", OPT_FOLDIO, CAT_OTHER, "hadamard|haar|none", "rotate the whole residual stream (R1), norms fused (default none)", NULL, "'hadamard', 'haar' or 'none'", 0, 0,
	 set_residual, 0, NULL},
	{"--vo", OPT_FOLDIO, CAT_OTHER, "hadamard|haar|same", "R2: V rows and O columns per kv group (same: --residual's kind)", NULL, "'hadamard', 'haar' or 'same'", 0, 0,
	 set_vo, 0, NULL},
	{"--r1", OPT_FRAME, CAT_OTHER, "none|fused|unfused",
	 "also rotate the layer's residual block by R1 (a randomised Hadamard of width D), its RMSNorm weight fused into W_q, W_k, W_v or not (default none)", NULL,
	 "{, | or }", 0, 0, set_r1, 0, names_frame_r1},
	{"--r3", OPT_FRAME, CAT_OTHER, "none|online|folded",
	 "also put a Hadamard on every head's q and k after RoPE (R3), applied at run time or folded into W_q, W_k (default none)", NULL,
	 "{, | or }", 0, 0, set_r3, 0, names_frame_r3},
	{"--plot", OPT_PLOT, CAT_OTHER, "PATH",
	 "also draw the offset curve and the worst head's heatmap (compare mode: A vs B): .svg, .png or .pdf", NULL,
	 "a path for the figure", 0, 0, set_path, AT(plot), NULL},
	{"--kv-lora-rank", OPT_LAYER, CAT_SHAPE, "N", "random MLA layer: k/v latent rank (default 32)", NULL, "a size", 1, LAYER_MAX_DIM,
	 set_size, AT(mla.kv_lora_rank), NULL},
	{"--q-lora-rank", OPT_LAYER, CAT_SHAPE, "N", "random MLA layer: q latent rank, 0 none (default 0)", NULL, "a size", 0, LAYER_MAX_DIM,
	 set_size, AT(mla.q_lora_rank), NULL},
	{"--qk-nope-dim", OPT_LAYER, CAT_SHAPE, "N", "random MLA layer: q/k dims without RoPE (default 16)", NULL, "a size", 1, LAYER_MAX_HEAD_DIM,
	 set_size, AT(mla.qk_nope_dim), NULL},
	{"--qk-rope-dim", OPT_LAYER, CAT_SHAPE, "N", "random MLA layer: RoPE dims, even (default 8)", NULL, "an even size", 2, LAYER_MAX_HEAD_DIM,
	 set_even, AT(mla.qk_rope_dim), NULL},
	{"--v-head-dim", OPT_LAYER, CAT_SHAPE, "N", "random MLA layer: value dims per head (default 16)", NULL, "a size", 1, LAYER_MAX_HEAD_DIM,
	 set_size, AT(mla.v_head_dim), NULL},
	{"--help", ~0u, CAT_OTHER, NULL, "this help", NULL, NULL, 0, 0,
	 set_switch, AT(help), NULL},
};

/* The help of a flag in logits, where it differs from the table's. */
static const struct {
	const char *name, *help;
} logits_helps[] = {
	{"--model", "the checkpoint to run, a file or folder (required)"},
	{"--seq", "T seeded random token ids (default 32)"},
	{"--seed", "seed of the random token ids of --seq (default 1)"},
	{"--tokens", "token ids, comma-separated: the teacher-forced input, T = their count"},
	{"--precision", "compute precision of the forward pass (default f32)"},
	{"--out", "write the T x V logits as a float32 NumPy .npy (format 1.0, C order)"},
	{"--rope", "RoPE pair layout put over the checkpoint's own (default: its own)"},
	{"--rotary-dim", "rotary dim r <= d, even, put over the checkpoint's own (default: its own)"},
	{"--rope-theta", "RoPE base theta put over the checkpoint's own (default: its own)"},
	{"--rope-scaling", "frequency scaling put over the checkpoint's own (default: its own)"},
};

static const char *logits_help(const char *name)
{
	for (size_t i = 0; i < sizeof logits_helps / sizeof logits_helps[0]; i++)
		if (!strcmp(logits_helps[i].name, name))
			return logits_helps[i].help;
	return NULL;
}

#define NFLAGS (sizeof flags / sizeof flags[0])
_Static_assert(NFLAGS <= OPTS_MAX_FLAGS, "more flags than a FlagSet holds: raise OPTS_MAX_FLAGS");

/* ---- sets of flags ------------------------------------------------------------ */

static bool set_has(const FlagSet *s, size_t i)
{
	return s->bits[i / 64] >> (i % 64) & 1;
}

static void set_add(FlagSet *s, size_t i)
{
	s->bits[i / 64] |= (uint64_t)1 << (i % 64);
}

/* The flags of seen that `pick` says yes to. */
static FlagSet set_where(const FlagSet *seen, bool (*pick)(const FlagDef *fd))
{
	FlagSet r = {{0}};
	for (size_t i = 0; i < NFLAGS; i++)
		if (set_has(seen, i) && pick(&flags[i]))
			set_add(&r, i);
	return r;
}

static const FlagDef *find_flag(const char *name, size_t len)
{
	for (size_t i = 0; i < NFLAGS; i++)
		if (strlen(flags[i].name) == len && !strncmp(flags[i].name, name, len))
			return &flags[i];
	return NULL;
}

/* The table index of a flag that exists. */
static size_t flag_index(const char *name)
{
	return (size_t)(find_flag(name, strlen(name)) - flags);
}

static bool given_in(const FlagSet *s, const char *name)
{
	return set_has(s, flag_index(name));
}

bool opts_given(const RunOptions *o, const char *flag)
{
	const FlagDef *fd = find_flag(flag, strlen(flag));
	return fd && set_has(&o->given, (size_t)(fd - flags));
}

/* Why a mode that does not take fd refuses it. The modes are told apart
 * by their flag groups: fold takes --model but not the random layer, the
 * tour only OPT_TOUR. */
static const char *refusal(const FlagDef *fd, unsigned accept)
{
	bool fold = (accept & OPT_MODEL) && (accept & OPT_FOLDIO) && !(accept & OPT_LAYER);
	if (accept == OPT_TOUR)
		return "the tour sets this itself at each stop (ropefold tui takes it)";
	if (accept & OPT_LOGITS)
		return fd->cat == CAT_SHAPE ? "sets the shape of a random layer; logits runs a checkpoint"
					    : "not a flag of logits (see --help)";
	if (fd->group == OPT_FRAME)
		return fold ? "shows R1 or R3 beside an evaluation (check, tui); fold rotates the residual "
			      "stream with --residual, and R3 cannot be folded"
			    : "shows R1 or R3 beside an evaluation (check, tui)";
	if (fd->cat == CAT_SHAPE)
		return fold ? "sets the shape of a random layer; fold reads the shape from the checkpoint"
			    : "sets the shape of a random layer, which this mode does not use";
	if (fd->cat == CAT_EVAL && !(accept & OPT_EVAL))
		return fold ? "fold writes weights; it evaluates nothing (ropefold check evaluates a fold)"
			    : "this mode evaluates nothing";
	if (!strcmp(fd->name, "--layers") && (accept & OPT_LAYER))
		return "picks the layers fold and verify rewrite or compare; this mode takes one layer: --layer N";
	return "not a flag of this mode (see --help)";
}

/* ---- one parse -------------------------------------------------------------- */

/* What one parse has seen: the flags in first-given order, and their values. */
typedef struct {
	FlagSet seen;
	const char *value[NFLAGS];
	unsigned char order[NFLAGS];   /* table indices, first-given order */
	size_t norder;
} Parse;

/* The first flag of mask in the order given. */
static const char *first_of(const Parse *p, const FlagSet *mask)
{
	for (size_t i = 0; i < p->norder; i++)
		if (set_has(mask, p->order[i]))
			return flags[p->order[i]].name;
	return NULL;
}

static bool is_shape(const FlagDef *fd)
{
	return fd->cat == CAT_SHAPE;
}

/* What --undo refuses: the fold flags and the model flags but --model,
 * the layers, and --dtype (undo restores the original dtypes). */
static bool undo_refuses(const FlagDef *fd)
{
	return ((fd->group & (OPT_FOLD | OPT_MODEL)) && strcmp(fd->name, "--model") &&
		strcmp(fd->name, "--help")) ||
	       !strcmp(fd->name, "--layer") || !strcmp(fd->name, "--layers") ||
	       !strcmp(fd->name, "--dtype") || !strcmp(fd->name, "--residual") ||
	       !strcmp(fd->name, "--vo");
}

/* Take flag fd with value v (NULL for a switch) into o. */
static int take(RunOptions *o, unsigned accept, Parse *p, const FlagDef *fd, const char *v,
		char *err, size_t errlen)
{
	if (!(fd->group & accept))
		FAIL("%s: %s", fd->name, refusal(fd, accept));
	size_t idx = (size_t)(fd - flags);
	/* One rule for every flag with a value: once, or refused (a silent
	 * last-wins hides typos in long command lines). --drop is a list:
	 * repeats add up. */
	if (fd->meta && set_has(&p->seen, idx) && strcmp(fd->name, "--drop"))
		FAIL("%s: given twice ('%s', then '%s'); give it once%s", fd->name, p->value[idx], v,
		     !strcmp(fd->name, "--rotate") ? " with the whole set" : "");
	if (fd->set(o, fd, v, err, errlen))
		return -1;
	if (fd->meta)
		p->value[idx] = v;
	if (!set_has(&p->seen, idx))
		p->order[p->norder++] = (unsigned char)idx;
	set_add(&p->seen, idx);
	return 0;
}

/* A random MLA layer: which flags made it one, and the flags that shape
 * only a standard layer (its rope part is --qk-rope-dim wide, its one RoPE
 * key shared by every head, and it has no biases). */
static int check_mla(RunOptions *o, char *err, size_t errlen)
{
	static const char *mla_flags[] = {"--kv-lora-rank", "--q-lora-rank", "--qk-nope-dim",
					  "--qk-rope-dim", "--v-head-dim"};
	static const char *std_flags[] = {"--kv-heads", "--head-dim", "--rotary-dim",
					  "--with-bias"};
	const char *by = NULL;
	for (size_t i = 0; i < 5 && !by; i++)
		if (opts_given(o, mla_flags[i]))
			by = mla_flags[i];
	o->mla_set = by != NULL;
	if (!by)
		return 0;
	for (size_t i = 0; i < 4; i++)
		if (opts_given(o, std_flags[i]))
			FAIL("%s: not with %s: a random MLA layer has one RoPE key shared by all heads, "
			     "rope dims from --qk-rope-dim and no biases", std_flags[i], by);
	MlaShape ms = o->mla;
	ms.d_model = o->shape.d_model;
	ms.n_heads = o->shape.n_heads;
	const char *why;
	if (mla_shape_check(&ms, &why) != RF_OK)
		FAIL("%s: a random MLA layer of this shape is refused: %s", by, why);
	return 0;
}

/* The rules between flags, on what this parse gave. */
static int check_cross(RunOptions *o, unsigned accept, const Parse *p, char *err,
		       size_t errlen)
{
	const FlagSet *seen = &p->seen;
	FlagSet shape = set_where(seen, is_shape);
	const char *f = first_of(p, &shape);
	if (o->model_path && f)
		FAIL("%s: sets the shape of a random layer; not with --model (the checkpoint has its own)", f);
	/* fold --undo: the sidecar says which fold, on which layers */
	if (given_in(seen, "--undo")) {
		FlagSet fold = set_where(seen, undo_refuses);
		if ((f = first_of(p, &fold)))
			FAIL("%s: not with --undo (the sidecar records the fold, its layers "
			     "and the original dtypes)", f);
	}
	/* fold and verify: --layer N is --layers N */
	if (given_in(seen, "--layer") && (accept & OPT_FOLDIO) && !(accept & OPT_LAYER)) {
		if (given_in(seen, "--layers"))
			FAIL("--layer: the one-layer form of --layers; give one of them");
		o->layers = p->value[flag_index("--layer")];
		o->layers_flag = "--layer";
	}
	if (given_in(seen, "--tokens")) {
		size_t n = 0;
		count_tokens(o->tokens, &n);
		if (given_in(seen, "--input") && o->input != INPUT_EMBED)
			FAIL("--tokens: token ids give an embedded input (--input embed); not with --input random");
		if (given_in(seen, "--seq") && o->seq != n)
			FAIL("--seq: %zu disagrees with the %zu ids of --tokens (T is their count; leave --seq out)",
			     o->seq, n);
		if (!o->model_path && !(accept & OPT_VERIFY_LOGITS))
			FAIL("--tokens: token ids pick a checkpoint's embeddings; give --model");
		o->input = INPUT_EMBED;
		o->seq = n;
	}
	if (!o->rotary_set)
		o->rope.rotary_dim = o->shape.head_dim;
	if (o->model_path)
		return 0;
	if (check_mla(o, err, errlen))
		return -1;
	if (o->mla_set)
		return 0;
	/* The random layer's shape. Name the flag this parse gave. */
	size_t H = o->shape.n_heads, G = o->shape.n_kv_heads;
	bool h_set = given_in(seen, "--heads"), g_set = given_in(seen, "--kv-heads");
	if (G > H && h_set && !g_set)
		FAIL("--heads: %zu query heads cannot share %zu kv heads (--kv-heads); give --kv-heads too",
		     H, G);
	if (G > H && g_set && !h_set)
		FAIL("--kv-heads: %zu is more than the %zu query heads (--heads)", G, H);
	if (G > H)
		FAIL("--kv-heads: %zu is more than --heads %zu", G, H);
	if (H % G && g_set && !h_set)
		FAIL("--kv-heads: %zu does not divide the %zu query heads (--heads)", G, H);
	if (H % G)
		FAIL("--heads: %zu is not divisible by --kv-heads %zu", H, G);
	if (o->rotary_set && o->rope.rotary_dim > o->shape.head_dim)
		FAIL("--rotary-dim: %zu exceeds the head dim %zu", o->rope.rotary_dim, o->shape.head_dim);
	const char *why;
	if (layer_shape_check(&o->shape, &why) != RF_OK)
		FAIL("--d-model/--heads/--head-dim: %s", why);
	return 0;
}

/* The parse's flags become o's, and the rules between them are checked. */
static int finish(RunOptions *o, unsigned accept, const Parse *p, char *err, size_t errlen)
{
	for (size_t i = 0; i < OPTS_MAX_FLAGS / 64; i++)
		o->given.bits[i] |= p->seen.bits[i];
	if (o->help)
		return 0;  /* --help skips the rules between flags */
	return check_cross(o, accept, p, err, errlen);
}

int opts_parse(int argc, char **argv, unsigned accept, RunOptions *o,
	       char *err, size_t errlen)
{
	Parse p;
	memset(&p, 0, sizeof p);
	err[0] = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || a[1] == 0) {
			if (o->n_positional >= sizeof o->positional / sizeof o->positional[0])
				FAIL("%s: too many arguments", a);
			o->positional[o->n_positional++] = a;
			continue;
		}
		if (!strcmp(a, "-h"))
			a = "--help";
		const char *eq = strchr(a, '=');
		size_t len = eq ? (size_t)(eq - a) : strlen(a);
		const FlagDef *fd = find_flag(a, len);
		if (!fd)
			FAIL("%.*s: unknown flag (see --help)", (int)len, a);
		const char *v = NULL;
		if (!fd->meta && eq && (fd->group & accept))
			FAIL("%s: takes no value", fd->name);
		if (fd->meta && eq) {
			v = eq + 1;
		} else if (fd->meta && (fd->group & accept)) {
			char rule[256];
			if (i + 1 >= argc)
				FAIL("%s: missing value (%s: %s)", fd->name, fd->meta,
				     rule_text(fd, rule, sizeof rule));
			/* "--undo --model X": the value forgotten, not a path
			 * called --model (write ./--model or --undo=--model) */
			const char *n = argv[i + 1], *neq = strchr(n, '=');
			if (n[0] == '-' && n[1] == '-' &&
			    find_flag(n, neq ? (size_t)(neq - n) : strlen(n)))
				FAIL("%s: missing value (%s: %s) before the flag %s", fd->name,
				     fd->meta, rule_text(fd, rule, sizeof rule), n);
			v = argv[++i];
		}
		if (take(o, accept, &p, fd, v, err, errlen))
			return -1;
	}
	return finish(o, accept, &p, err, errlen);
}

int opts_set(RunOptions *o, unsigned accept, const char *flag, const char *value, char *err,
	     size_t errlen)
{
	Parse p;
	memset(&p, 0, sizeof p);
	err[0] = 0;
	const FlagDef *fd = find_flag(flag, strlen(flag));
	if (!fd)
		FAIL("%s: unknown flag (see --help)", flag);
	if (take(o, accept, &p, fd, fd->meta ? value : NULL, err, errlen))
		return -1;
	return finish(o, accept, &p, err, errlen);
}

int opts_check_random(const RunOptions *o, char *err, size_t errlen)
{
	if (!o->model_path && opts_given(o, "--layer"))
		FAIL("--layer: picks a layer of a checkpoint; a random layer has just one (give --model)");
	return 0;
}

RopeOverride opts_rope_override(const RunOptions *o)
{
	RopeOverride r = {o->rope, o->layout_set, o->rotary_set, o->theta_set, o->scaling_set};
	return r;
}

/* --residual and --vo onto a fold job: R1's kind, and R2 as V and O
 * rotations per kv group (same: the kind of R1; haar when R1 is none). */
static void opts_fold_residual(const RunOptions *o, FoldJob *j)
{
	ResKind k = RES_NONE;
	if (o->residual)
		residual_kind_parse(o->residual, &k);
	j->residual = k;
	j->vo = o->vo;
	if (!o->vo)
		return;
	j->fold.rotate |= PART_V | PART_O;
	j->fold.v_hadamard = !strcmp(o->vo, "hadamard") ||
			     (!strcmp(o->vo, "same") && k == RES_HADAMARD);
}

void opts_fold_job(const RunOptions *o, FoldJob *j)
{
	memset(j, 0, sizeof *j);
	j->model_path = o->model_path;
	j->out = o->out;
	j->fold = o->fold;
	j->seed = o->seed;
	j->rope = opts_rope_override(o);
	j->layers = o->layers;
	j->layers_flag = o->layers_flag;
	j->store_set = o->dtype && strcmp(o->dtype, "keep");
	j->store = STORE_F32;
	if (j->store_set)
		dtype_parse(o->dtype, &j->store);
	j->undo = o->undo;
	j->force = o->force;
	/* A written fold is an exact rewrite: angles a learned QK-norm does
	 * not commute with are left out. (check and the explorer's own
	 * evaluation draw arbitrary angles, what the theorem alone predicts.) */
	j->fold.qk_norm_exact = true;
	opts_fold_residual(o, j);
}

void opts_workload_spec(const RunOptions *o, WorkloadSpec *spec)
{
	memset(spec, 0, sizeof *spec);
	spec->model_path = o->model_path;
	spec->layer = o->layer;
	spec->shape = o->shape;
	spec->with_bias = o->with_bias;
	spec->rope = opts_rope_override(o);
	spec->seq = o->seq;
	spec->seed = o->seed;
	spec->embed = o->input == INPUT_EMBED;
	spec->tokens = o->tokens;
	spec->precision = o->precision;
	spec->mla = o->mla_set;
	spec->mla_shape = o->mla;
	spec->mla_shape.d_model = o->shape.d_model;
	spec->mla_shape.n_heads = o->shape.n_heads;
}

void opts_print_help(void *stream, unsigned accept)
{
	FILE *f = stream;
	bool any_value = false;
	for (size_t i = 0; i < NFLAGS; i++) {
		if (!(flags[i].group & accept))
			continue;
		char help[512];
		const char *h = (accept & OPT_FOLDIO) && flags[i].fold_help ? flags[i].fold_help
									    : flags[i].help;
		if ((accept & OPT_LOGITS) && logits_help(flags[i].name))
			h = logits_help(flags[i].name);
		expand(&flags[i], h, help, sizeof help);
		char left[64];
		snprintf(left, sizeof left, "%s%s%s", flags[i].name,
			 flags[i].meta ? " " : "", flags[i].meta ? flags[i].meta : "");
		if (strlen(left) > 24)
			fprintf(f, "  %s\n  %-24s %s\n", left, "", help);
		else
			fprintf(f, "  %-24s %s\n", left, help);
		any_value |= flags[i].meta != NULL;
	}
	if (any_value)
		fprintf(f, "\nA flag that takes a value is given once%s.\n",
			(accept & OPT_FOLD) ? "; --drop lists add up when repeated" : "");
}
