#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rope.h"
#include "core/rotation.h"
#include "tui/options.h"

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

typedef struct {
	const char *name;
	unsigned group;
	bool takes_value;
	FlagCat cat;
	const char *meta;
	const char *help;
	const char *fold_help;  /* the help in fold, when it differs (or NULL) */
	/* What a value must be, for every message about it: the whole rule,
	 * or, for a whole number (hi > 0), its noun, "from lo to hi" added
	 * (the parser takes the same lo and hi). */
	const char *rule;
	size_t lo, hi;
} FlagDef;

/* Bounds of the flags whose values are not table ranges. The rules of
 * --rope-theta, --tol and --rope-scaling spell theirs (and rope.h's
 * ROPE_SCALING_FACTOR_*) in words; tests/test_options.c holds each rule
 * to the bound the parser keeps. */
#define OPT_MAX_LAYER ((size_t)1 << 20)
#define OPT_MAX_THETA 1e12
#define OPT_MAX_TOL 1e6

static const FlagDef flags[] = {
	{"--model", OPT_MODEL, true, CAT_OTHER, "PATH",
	 "checkpoint file or folder (default: a random layer)",
	 "the checkpoint to fold, a file or folder (required)", "a path to a checkpoint file or folder", 0, 0},
	{"--layer", OPT_LAYER | OPT_FOLDIO, true, CAT_OTHER, "N",
	 "layer of the checkpoint (default 0; needs --model)",
	 "fold only layer N: the same as --layers N", "a layer index", 0, OPT_MAX_LAYER},
	{"--d-model", OPT_LAYER, true, CAT_SHAPE, "N", "random layer only: model width D (default 64)", NULL, "a size", 1, LAYER_MAX_DIM},
	{"--heads", OPT_LAYER, true, CAT_SHAPE, "N", "random layer only: query heads H (default 4)", NULL, "a count", 1, LAYER_MAX_HEADS},
	{"--kv-heads", OPT_LAYER, true, CAT_SHAPE, "N", "random layer only: key/value heads G (default 4)", NULL, "a count", 1, LAYER_MAX_HEADS},
	{"--head-dim", OPT_LAYER, true, CAT_SHAPE, "N", "random layer only: head dim d, even (default 16)", NULL, "an even size", 2, LAYER_MAX_HEAD_DIM},
	{"--seq", OPT_LAYER | OPT_TOUR, true, CAT_EVAL, "N",
	 "sequence length T (default 32)", NULL, "a length", 1, LAYER_MAX_SEQ},
	{"--seed", OPT_MODEL | OPT_TOUR, true, CAT_OTHER, "N",
	 "seed of the layer, input and rotations (default 1)",
	 "seed of the rotations; layer i uses one derived from it (default 1)", "a whole number", 0, SIZE_MAX},
	{"--rope", OPT_MODEL, true, CAT_OTHER, "interleaved|half",
	 "RoPE pair layout; on a checkpoint, the layout the fold is built for (default half; a checkpoint's own)",
	 "the RoPE pair layout the fold is built for (default: the checkpoint's own)", "'interleaved' or 'half'", 0, 0},
	{"--rotary-dim", OPT_MODEL, true, CAT_OTHER, "N",
	 "rotary dim r <= d, even (default: the head dim; a checkpoint's own)",
	 "rotary dim r <= d, even (default: the checkpoint's own)", "an even size", 0, LAYER_MAX_HEAD_DIM},
	{"--rope-theta", OPT_MODEL, true, CAT_OTHER, "X",
	 "RoPE base theta (default 10000; a checkpoint's own)",
	 "RoPE base theta (default: the checkpoint's own)", "a decimal number above 0 and at most 1e12", 0, 0},
	{"--rope-scaling", OPT_MODEL, true, CAT_OTHER, "none|linear:F|ntk:F|yarn:F|llama3:F",
	 "frequency scaling (default none; a checkpoint's own)",
	 "frequency scaling (default: the checkpoint's own)", "none, or RULE:F with RULE linear, ntk, yarn or llama3 and F a decimal number from 1 to 1e6", 0, 0},
	{"--with-bias", OPT_LAYER, false, CAT_SHAPE, NULL, "random layer only: give it q/k/v/o biases", NULL, NULL, 0, 0},
	{"--input", OPT_LAYER, true, CAT_EVAL, "random|embed",
	 "activations: N(0,1) rows or a checkpoint's token embeddings (default random; embed with --tokens)", NULL, "'random' or 'embed'", 0, 0},
	{"--tokens", OPT_LAYER, true, CAT_EVAL, "LIST",
	 "token ids of the input, comma-separated: implies --input embed, T = their count", NULL, "a comma-separated list of token ids, each a whole number from 0 to 4294967295", 0, 0},
	{"--precision", OPT_EVAL, true, CAT_EVAL, "f64|f32", "compute precision (default f64)", NULL, "'f64' or 'f32'", 0, 0},
	{"--tol", OPT_EVAL, true, CAT_EVAL, "X", "relative tolerance (default 1e-9 in f64, 1e-3 in f32)", NULL, "a decimal number above 0 and below 1e6", 0, 0},
	{"--rotate", OPT_FOLD, true, CAT_OTHER, "SET", "rotated parts: letters of qkvo, or none (default qkvo)", NULL, "a set of the letters q, k, v, o (each once) or 'none'", 0, 0},
	{"--drop", OPT_FOLD, true, CAT_OTHER, "LIST",
	 "assumptions to drop: orthogonal,commutes,shared-qk,per-head,gqa-consistent,v-same,bias (default none; repeats add up)", NULL, "a comma-separated list of orthogonal, commutes, shared-qk, per-head, gqa-consistent, v-same, bias", 0, 0},
	{"--kind", OPT_FOLD, true, CAT_OTHER, "K",
	 "R_q/R_k kind, used only when commutes is dropped: haar, hadamard, pair-swap, pair-reflect, layout-mismatch (default haar)", NULL, "haar, hadamard, pair-swap, pair-reflect or layout-mismatch", 0, 0},
	{"--permute-heads", OPT_FOLD, false, CAT_OTHER, NULL, "also permute the kv groups with their query heads", NULL, NULL, 0, 0},
	{"--json", OPT_JSON, false, CAT_OTHER, NULL, "one JSON document on stdout", NULL, NULL, 0, 0},
	{"--repeat", OPT_BENCH, true, CAT_EVAL, "N", "timed runs after a warm-up (default 5)", NULL, "a count", 1, 1000},
	{"--out", OPT_FOLDIO, true, CAT_OTHER, "PATH", "output checkpoint", "output checkpoint (required)", "a path for the output checkpoint", 0, 0},
	{"--layers", OPT_FOLDIO, true, CAT_OTHER, "all|N|N..M", "layers to fold or verify (default all)",
	 "layers to fold (default all)", "all, N or N..M (layer indices, N <= M)", 0, 0},
	{"--dtype", OPT_FOLDIO, true, CAT_OTHER, "keep|f32|f64", "stored dtype of folded tensors (default keep)", NULL, "'keep', 'f32' or 'f64'", 0, 0},
	{"--undo", OPT_FOLDIO, true, CAT_OTHER, "SIDECAR", "undo the fold recorded in a sidecar JSON", NULL, "a path to a sidecar JSON", 0, 0},
	{"--force", OPT_FOLDIO, false, CAT_OTHER, NULL, "overwrite an existing output", NULL, NULL, 0, 0},
	{"--help", ~0u, false, CAT_OTHER, NULL, "this help", NULL, NULL, 0, 0},
};

#define NFLAGS (sizeof flags / sizeof flags[0])
_Static_assert(NFLAGS <= 64, "RunOptions.given has one bit per flag");

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

static uint64_t flag_bit(const char *name)
{
	return (uint64_t)1 << flag_index(name);
}

bool opts_given(const RunOptions *o, const char *flag)
{
	const FlagDef *fd = find_flag(flag, strlen(flag));
	return fd && (o->given & ((uint64_t)1 << (fd - flags)));
}

/* Why a mode that does not take fd refuses it. The modes are told apart
 * by their flag groups: fold takes --model but not the random layer, the
 * tour only OPT_TOUR. */
static const char *refusal(const FlagDef *fd, unsigned accept)
{
	bool fold = (accept & OPT_MODEL) && (accept & OPT_FOLDIO) && !(accept & OPT_LAYER);
	if (accept == OPT_TOUR)
		return "the tour sets this itself at each stop (ropefold tui takes it)";
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

#define FAIL(...)                                        \
	do {                                             \
		snprintf(err, errlen, __VA_ARGS__);      \
		return -1;                               \
	} while (0)

/* A flag's rule in words (FlagDef.rule), into buf. */
static const char *rule_text(const FlagDef *fd, char *buf, size_t n)
{
	if (fd->hi)
		snprintf(buf, n, "%s from %zu to %zu", fd->rule, fd->lo, fd->hi);
	else
		snprintf(buf, n, "%s", fd->rule ? fd->rule : "a value");
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

/* Set one flag's value; returns -1 with err filled on a bad value. */
static int set_flag(RunOptions *o, const FlagDef *fd, const char *v, char *err,
		    size_t errlen)
{
	const char *f = fd->name;
	size_t n;
	double x;
	char rule[256];
	if (!strcmp(f, "--model")) {
		if (!*v)
			FAIL("--model: empty path (%s)", rule_text(fd, rule, sizeof rule));
		o->model_path = v;
	} else if (!strcmp(f, "--layer")) {
		return whole(fd, v, &o->layer, err, errlen);
	} else if (!strcmp(f, "--d-model")) {
		return whole(fd, v, &o->shape.d_model, err, errlen);
	} else if (!strcmp(f, "--heads")) {
		return whole(fd, v, &o->shape.n_heads, err, errlen);
	} else if (!strcmp(f, "--kv-heads")) {
		return whole(fd, v, &o->shape.n_kv_heads, err, errlen);
	} else if (!strcmp(f, "--head-dim")) {
		if (whole(fd, v, &n, err, errlen) || (n % 2 && bad_value(fd, v, err, errlen)))
			return -1;
		o->shape.head_dim = n;
	} else if (!strcmp(f, "--seq")) {
		return whole(fd, v, &o->seq, err, errlen);
	} else if (!strcmp(f, "--seed")) {
		if (whole(fd, v, &n, err, errlen))
			return -1;
		o->seed = n;
		o->fold.seed = n;
	} else if (!strcmp(f, "--rope")) {
		if (rope_layout_parse(v, &o->rope.layout))
			return bad_value(fd, v, err, errlen);
		o->layout_set = true;
	} else if (!strcmp(f, "--rotary-dim")) {
		if (whole(fd, v, &n, err, errlen) || (n % 2 && bad_value(fd, v, err, errlen)))
			return -1;
		o->rope.rotary_dim = n;
		o->rotary_set = true;
	} else if (!strcmp(f, "--rope-theta")) {
		if (parse_double(v, &x) || !(x > 0) || x > OPT_MAX_THETA)
			return bad_value(fd, v, err, errlen);
		o->rope.theta = x;
		o->theta_set = true;
	} else if (!strcmp(f, "--rope-scaling")) {
		int r = rope_scaling_parse(v, &o->rope.scaling);
		if (r == -2)  /* the rule is right, its factor not */
			FAIL("--rope-scaling: '%s': F must be a decimal number from 1 to 1e6 "
			     "(F >= 1 as in HF's rules; at most a million times the trained "
			     "context)", v);
		if (r)
			return bad_value(fd, v, err, errlen);
		o->scaling_set = true;
	} else if (!strcmp(f, "--input")) {
		if (!strcmp(v, "random"))
			o->input = INPUT_RANDOM;
		else if (!strcmp(v, "embed"))
			o->input = INPUT_EMBED;
		else
			return bad_value(fd, v, err, errlen);
	} else if (!strcmp(f, "--tokens")) {
		if (!*v)
			FAIL("--tokens: empty list (%s)", rule_text(fd, rule, sizeof rule));
		if (count_tokens(v, &n))
			return bad_value(fd, v, err, errlen);
		if (n > LAYER_MAX_SEQ)
			FAIL("--tokens: %zu ids, more than the %zu a sequence may hold", n, LAYER_MAX_SEQ);
		o->tokens = v;
	} else if (!strcmp(f, "--precision")) {
		if (!strcmp(v, "f64") || !strcmp(v, "float64"))
			o->precision = PREC_F64;
		else if (!strcmp(v, "f32") || !strcmp(v, "float32"))
			o->precision = PREC_F32;
		else
			return bad_value(fd, v, err, errlen);
	} else if (!strcmp(f, "--tol")) {
		if (parse_double(v, &x) || !(x > 0) || x >= OPT_MAX_TOL)
			return bad_value(fd, v, err, errlen);
		o->tol = x;
	} else if (!strcmp(f, "--rotate")) {
		if (fold_rotate_parse(v, &o->fold.rotate))
			return bad_value(fd, v, err, errlen);
	} else if (!strcmp(f, "--drop")) {
		const char *bad = NULL;
		unsigned bits;
		if (!*v)
			FAIL("--drop: empty list (%s)", rule_text(fd, rule, sizeof rule));
		if (fold_drop_parse(v, &bits, &bad))
			FAIL("--drop: unknown assumption in '%s' (%s)", v, rule_text(fd, rule, sizeof rule));
		o->fold.dropped |= bits;  /* repeated --drop lists add up */
	} else if (!strcmp(f, "--kind")) {
		if (rotation_kind_parse(v, &o->fold.kind) || o->fold.kind == ROT_COMMUTING)
			return bad_value(fd, v, err, errlen);
	} else if (!strcmp(f, "--repeat")) {
		return whole(fd, v, &o->repeat, err, errlen);
	} else if (!strcmp(f, "--out")) {
		if (!*v)
			FAIL("--out: empty path (%s)", rule_text(fd, rule, sizeof rule));
		o->out = v;
	} else if (!strcmp(f, "--layers")) {
		if (!*v)
			FAIL("--layers: empty value (%s)", rule_text(fd, rule, sizeof rule));
		o->layers = v;
		o->layers_flag = "--layers";
	} else if (!strcmp(f, "--dtype")) {
		if (strcmp(v, "keep") && strcmp(v, "f32") && strcmp(v, "f64"))
			return bad_value(fd, v, err, errlen);
		o->dtype = v;
	} else if (!strcmp(f, "--undo")) {
		if (!*v)
			FAIL("--undo: empty path (%s)", rule_text(fd, rule, sizeof rule));
		o->undo = v;
	}
	return 0;
}

/* The first flag of mask in argv order (order[] holds table indices). */
static const char *first_of(const unsigned char *order, size_t n, uint64_t mask)
{
	for (size_t i = 0; i < n; i++)
		if (mask & ((uint64_t)1 << order[i]))
			return flags[order[i]].name;
	return NULL;
}

/* The rules between flags, on what this argv gave (seen). */
static int check_cross(RunOptions *o, unsigned accept, uint64_t seen,
		       const unsigned char *order, size_t norder,
		       const char *const *value, char *err, size_t errlen)
{
	uint64_t shape = 0;
	for (size_t i = 0; i < NFLAGS; i++)
		if (flags[i].cat == CAT_SHAPE)
			shape |= (uint64_t)1 << i;
	const char *f = first_of(order, norder, seen & shape);
	if (o->model_path && f)
		FAIL("%s: sets the shape of a random layer; not with --model (the checkpoint has its own)", f);
	/* fold --undo: the sidecar says which fold, on which layers */
	if (seen & flag_bit("--undo")) {
		uint64_t fold = flag_bit("--layer") | flag_bit("--layers") |
				flag_bit("--dtype");  /* undo restores the original dtypes */
		for (size_t i = 0; i < NFLAGS; i++)
			if ((flags[i].group & (OPT_FOLD | OPT_MODEL)) && strcmp(flags[i].name, "--model") &&
			    strcmp(flags[i].name, "--help"))
				fold |= (uint64_t)1 << i;
		if ((f = first_of(order, norder, seen & fold)))
			FAIL("%s: not with --undo (the sidecar records the fold, its layers "
			     "and the original dtypes)", f);
	}
	/* fold and verify: --layer N is --layers N */
	uint64_t layer = flag_bit("--layer"), layers = flag_bit("--layers");
	if ((seen & layer) && (accept & OPT_FOLDIO) && !(accept & OPT_LAYER)) {
		if (seen & layers)
			FAIL("--layer: the one-layer form of --layers; give one of them");
		o->layers = value[flag_index("--layer")];
		o->layers_flag = "--layer";
	}
	if (seen & flag_bit("--tokens")) {
		size_t n = 0;
		count_tokens(o->tokens, &n);
		if ((seen & flag_bit("--input")) && o->input != INPUT_EMBED)
			FAIL("--tokens: token ids give an embedded input (--input embed); not with --input random");
		if ((seen & flag_bit("--seq")) && o->seq != n)
			FAIL("--seq: %zu disagrees with the %zu ids of --tokens (T is their count; leave --seq out)",
			     o->seq, n);
		if (!o->model_path)
			FAIL("--tokens: token ids pick a checkpoint's embeddings; give --model");
		o->input = INPUT_EMBED;
		o->seq = n;
	}
	if (!o->rotary_set)
		o->rope.rotary_dim = o->shape.head_dim;
	if (o->model_path)
		return 0;
	/* The random layer's shape. Name the flag this argv gave. */
	size_t H = o->shape.n_heads, G = o->shape.n_kv_heads;
	bool h_set = seen & flag_bit("--heads"), g_set = seen & flag_bit("--kv-heads");
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

int opts_parse(int argc, char **argv, unsigned accept, RunOptions *o,
	       char *err, size_t errlen)
{
	uint64_t seen = 0;                 /* flags of this argv */
	const char *value[NFLAGS] = {0};   /* their values */
	unsigned char order[NFLAGS];       /* table indices, first-given order */
	size_t norder = 0;
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
		if (!(fd->group & accept))
			FAIL("%s: %s", fd->name, refusal(fd, accept));
		size_t idx = (size_t)(fd - flags);
		uint64_t bit = (uint64_t)1 << idx;
		if (!fd->takes_value) {
			if (eq)
				FAIL("%s: takes no value", fd->name);
			if (!strcmp(fd->name, "--with-bias"))
				o->with_bias = true;
			else if (!strcmp(fd->name, "--permute-heads"))
				o->fold.permute_heads = true;
			else if (!strcmp(fd->name, "--json"))
				o->json = true;
			else if (!strcmp(fd->name, "--force"))
				o->force = true;
			else if (!strcmp(fd->name, "--help"))
				o->help = true;
		} else {
			const char *v;
			if (eq) {
				v = eq + 1;
			} else {
				char rule[256];
				if (i + 1 >= argc)
					FAIL("%s: missing value (%s: %s)", fd->name, fd->meta,
					     rule_text(fd, rule, sizeof rule));
				v = argv[++i];
			}
			/* One rule for every flag with a value: once, or refused
			 * (a silent last-wins hides typos in long command lines).
			 * --drop is a list: repeats add up. */
			if ((seen & bit) && strcmp(fd->name, "--drop"))
				FAIL("%s: given twice ('%s', then '%s'); give it once%s", fd->name,
				     value[idx], v,
				     !strcmp(fd->name, "--rotate") ? " with the whole set" : "");
			if (set_flag(o, fd, v, err, errlen))
				return -1;
			value[idx] = v;
		}
		if (!(seen & bit))
			order[norder++] = (unsigned char)idx;
		seen |= bit;
	}
	o->given |= seen;
	if (o->help)
		return 0;  /* --help skips the rules between flags */
	return check_cross(o, accept, seen, order, norder, value, err, errlen);
}

int opts_check_random(const RunOptions *o, char *err, size_t errlen)
{
	if (!o->model_path && opts_given(o, "--layer"))
		FAIL("--layer: picks a layer of a checkpoint; a random layer has just one (give --model)");
	return 0;
}

int opts_check_rope(const RunOptions *o, size_t head_dim, const char *source,
		    char *err, size_t errlen)
{
	if (o->rotary_set && o->rope.rotary_dim > head_dim)
		FAIL("--rotary-dim: %zu exceeds the head dim %zu of %s", o->rope.rotary_dim,
		     head_dim, source);
	return 0;
}

void opts_apply_rope(const RunOptions *o, RopeSpec *rope)
{
	if (o->layout_set)
		rope->layout = o->rope.layout;
	if (o->rotary_set)
		rope->rotary_dim = o->rope.rotary_dim;
	if (o->theta_set)
		rope->theta = o->rope.theta;
	if (o->scaling_set)
		rope->scaling = o->rope.scaling;
}

RopeOverride opts_rope_override(const RunOptions *o)
{
	RopeOverride r = {o->rope, o->layout_set, o->rotary_set, o->theta_set, o->scaling_set};
	return r;
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
}

void opts_print_help(void *stream, unsigned accept)
{
	FILE *f = stream;
	bool any_value = false;
	for (size_t i = 0; i < NFLAGS; i++) {
		if (!(flags[i].group & accept))
			continue;
		const char *help = (accept & OPT_FOLDIO) && flags[i].fold_help ? flags[i].fold_help
										  : flags[i].help;
		char left[64];
		snprintf(left, sizeof left, "%s%s%s", flags[i].name,
			 flags[i].meta ? " " : "", flags[i].meta ? flags[i].meta : "");
		if (strlen(left) > 24)
			fprintf(f, "  %s\n  %-24s %s\n", left, "", help);
		else
			fprintf(f, "  %-24s %s\n", left, help);
		any_value |= flags[i].takes_value;
	}
	if (any_value)
		fprintf(f, "\nA flag that takes a value is given once%s.\n",
			(accept & OPT_FOLD) ? "; --drop lists add up when repeated" : "");
}
