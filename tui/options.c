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

static int parse_double(const char *s, double *out)
{
	char *end;
	if (!s || !*s)
		return -1;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

typedef struct {
	const char *name;
	unsigned group;
	bool takes_value;
	const char *meta;
	const char *help;
} FlagDef;

static const FlagDef flags[] = {
	{"--model", OPT_MODEL, true, "PATH", "checkpoint file or folder (default: a random layer)"},
	{"--layer", OPT_LAYER, true, "N", "layer of the checkpoint (default 0)"},
	{"--d-model", OPT_LAYER, true, "N", "random layer: model width D (default 64)"},
	{"--heads", OPT_LAYER, true, "N", "random layer: query heads H (default 4)"},
	{"--kv-heads", OPT_LAYER, true, "N", "random layer: key/value heads G (default 4)"},
	{"--head-dim", OPT_LAYER, true, "N", "random layer: head dim d, even (default 16)"},
	{"--seq", OPT_LAYER, true, "N", "sequence length T (default 32)"},
	{"--seed", OPT_MODEL, true, "N", "seed of the layer, input and rotations (default 1)"},
	{"--rope", OPT_MODEL, true, "interleaved|half", "RoPE pair layout (default half; a checkpoint's own)"},
	{"--rotary-dim", OPT_MODEL, true, "N", "rotary dim r <= d, even (default head dim)"},
	{"--rope-theta", OPT_MODEL, true, "X", "RoPE base theta (default 10000)"},
	{"--rope-scaling", OPT_MODEL, true, "none|linear:F|ntk:F|yarn:F|llama3:F", "frequency scaling (default none)"},
	{"--with-bias", OPT_LAYER, false, NULL, "random layer: give it q/k/v/o biases"},
	{"--input", OPT_LAYER, true, "random|embed", "activations: N(0,1) rows or token embeddings (default random)"},
	{"--tokens", OPT_LAYER, true, "LIST", "token ids for --input embed, comma-separated"},
	{"--precision", OPT_EVAL, true, "f64|f32", "compute precision (default f64)"},
	{"--tol", OPT_EVAL, true, "X", "relative tolerance (default 1e-9 in f64, 1e-3 in f32)"},
	{"--rotate", OPT_FOLD, true, "SET", "rotated parts: letters of qkvo, or none (default qkvo)"},
	{"--drop", OPT_FOLD, true, "LIST", "assumptions to drop: orthogonal,commutes,shared-qk,per-head,gqa-consistent,v-same,bias (default none)"},
	{"--kind", OPT_FOLD, true, "K", "R_q/R_k kind when commutes is dropped: haar, hadamard, pair-swap, pair-reflect, layout-mismatch (default haar)"},
	{"--permute-heads", OPT_FOLD, false, NULL, "also permute the kv groups with their query heads"},
	{"--json", OPT_JSON, false, NULL, "one JSON document on stdout"},
	{"--repeat", OPT_BENCH, true, "N", "timed runs after a warm-up (default 5)"},
	{"--out", OPT_FOLDIO, true, "PATH", "output checkpoint"},
	{"--layers", OPT_FOLDIO, true, "all|N|N..M", "layers to fold or verify (default all)"},
	{"--dtype", OPT_FOLDIO, true, "keep|f32|f64", "stored dtype of folded tensors (default keep)"},
	{"--undo", OPT_FOLDIO, true, "SIDECAR", "undo the fold recorded in a sidecar JSON"},
	{"--force", OPT_FOLDIO, false, NULL, "overwrite an existing output"},
	{"--help", ~0u, false, NULL, "this help"},
};

#define NFLAGS (sizeof flags / sizeof flags[0])

static const FlagDef *find_flag(const char *name, size_t len)
{
	for (size_t i = 0; i < NFLAGS; i++)
		if (strlen(flags[i].name) == len && !strncmp(flags[i].name, name, len))
			return &flags[i];
	return NULL;
}

#define FAIL(...)                                        \
	do {                                             \
		snprintf(err, errlen, __VA_ARGS__);      \
		return -1;                               \
	} while (0)

/* Set one flag's value; returns -1 with err filled on a bad value. */
static int set_flag(RunOptions *o, const char *f, const char *v, char *err,
		    size_t errlen)
{
	size_t n;
	double x;
	if (!strcmp(f, "--model")) {
		if (!*v)
			FAIL("--model: empty path");
		o->model_path = v;
	} else if (!strcmp(f, "--layer")) {
		if (parse_size(v, 0, 1u << 20, &o->layer))
			FAIL("--layer: '%s' is not a layer index (0 or more)", v);
	} else if (!strcmp(f, "--d-model")) {
		if (parse_size(v, 1, LAYER_MAX_DIM, &o->shape.d_model))
			FAIL("--d-model: '%s' is not a size from 1 to %zu", v, LAYER_MAX_DIM);
	} else if (!strcmp(f, "--heads")) {
		if (parse_size(v, 1, LAYER_MAX_HEADS, &o->shape.n_heads))
			FAIL("--heads: '%s' is not a count from 1 to %zu", v, LAYER_MAX_HEADS);
	} else if (!strcmp(f, "--kv-heads")) {
		if (parse_size(v, 1, LAYER_MAX_HEADS, &o->shape.n_kv_heads))
			FAIL("--kv-heads: '%s' is not a count from 1 to %zu", v, LAYER_MAX_HEADS);
	} else if (!strcmp(f, "--head-dim")) {
		if (parse_size(v, 2, LAYER_MAX_HEAD_DIM, &n) || n % 2)
			FAIL("--head-dim: '%s' is not an even size from 2 to %zu", v, LAYER_MAX_HEAD_DIM);
		o->shape.head_dim = n;
	} else if (!strcmp(f, "--seq")) {
		if (parse_size(v, 1, LAYER_MAX_SEQ, &o->seq))
			FAIL("--seq: '%s' is not a length from 1 to %zu", v, LAYER_MAX_SEQ);
	} else if (!strcmp(f, "--seed")) {
		if (parse_size(v, 0, SIZE_MAX, &n))
			FAIL("--seed: '%s' is not a non-negative integer", v);
		o->seed = n;
		o->fold.seed = n;
	} else if (!strcmp(f, "--rope")) {
		if (rope_layout_parse(v, &o->rope.layout))
			FAIL("--rope: '%s' is not 'interleaved' or 'half'", v);
		o->layout_set = true;
	} else if (!strcmp(f, "--rotary-dim")) {
		if (parse_size(v, 0, LAYER_MAX_HEAD_DIM, &n) || n % 2)
			FAIL("--rotary-dim: '%s' is not an even size up to the head dim", v);
		o->rope.rotary_dim = n;
		o->rotary_set = true;
	} else if (!strcmp(f, "--rope-theta")) {
		if (parse_double(v, &x) || !(x > 0) || x > 1e12)
			FAIL("--rope-theta: '%s' is not a positive number up to 1e12", v);
		o->rope.theta = x;
		o->theta_set = true;
	} else if (!strcmp(f, "--rope-scaling")) {
		if (rope_scaling_parse(v, &o->rope.scaling))
			FAIL("--rope-scaling: '%s' is not none, linear:F, ntk:F, yarn:F or llama3:F with F > 0", v);
		o->scaling_set = true;
	} else if (!strcmp(f, "--input")) {
		if (!strcmp(v, "random"))
			o->input = INPUT_RANDOM;
		else if (!strcmp(v, "embed"))
			o->input = INPUT_EMBED;
		else
			FAIL("--input: '%s' is not 'random' or 'embed'", v);
	} else if (!strcmp(f, "--tokens")) {
		const char *p = v;
		if (!*p)
			FAIL("--tokens: empty list");
		for (; *p; p++)
			if ((*p < '0' || *p > '9') && *p != ',')
				FAIL("--tokens: '%s' is not a comma-separated list of token ids", v);
		o->tokens = v;
	} else if (!strcmp(f, "--precision")) {
		if (!strcmp(v, "f64") || !strcmp(v, "float64"))
			o->precision = PREC_F64;
		else if (!strcmp(v, "f32") || !strcmp(v, "float32"))
			o->precision = PREC_F32;
		else
			FAIL("--precision: '%s' is not 'f64' or 'f32'", v);
	} else if (!strcmp(f, "--tol")) {
		if (parse_double(v, &x) || !(x > 0) || x >= 1e6)
			FAIL("--tol: '%s' is not a positive number", v);
		o->tol = x;
	} else if (!strcmp(f, "--rotate")) {
		if (fold_rotate_parse(v, &o->fold.rotate))
			FAIL("--rotate: '%s' is not a set of the letters q, k, v, o (each once) or 'none'", v);
	} else if (!strcmp(f, "--drop")) {
		const char *bad = NULL;
		if (fold_drop_parse(v, &o->fold.dropped, &bad))
			FAIL("--drop: unknown assumption in '%s' (known: orthogonal, commutes, shared-qk, per-head, gqa-consistent, v-same, bias)", v);
	} else if (!strcmp(f, "--kind")) {
		if (rotation_kind_parse(v, &o->fold.kind) || o->fold.kind == ROT_COMMUTING)
			FAIL("--kind: '%s' is not haar, hadamard, pair-swap, pair-reflect or layout-mismatch", v);
	} else if (!strcmp(f, "--repeat")) {
		if (parse_size(v, 1, 1000, &o->repeat))
			FAIL("--repeat: '%s' is not a count from 1 to 1000", v);
	} else if (!strcmp(f, "--out")) {
		if (!*v)
			FAIL("--out: empty path");
		o->out = v;
	} else if (!strcmp(f, "--layers")) {
		if (!*v)
			FAIL("--layers: empty value");
		o->layers = v;
	} else if (!strcmp(f, "--dtype")) {
		if (strcmp(v, "keep") && strcmp(v, "f32") && strcmp(v, "f64"))
			FAIL("--dtype: '%s' is not 'keep', 'f32' or 'f64'", v);
		o->dtype = v;
	} else if (!strcmp(f, "--undo")) {
		if (!*v)
			FAIL("--undo: empty path");
		o->undo = v;
	}
	return 0;
}

int opts_parse(int argc, char **argv, unsigned accept, RunOptions *o,
	       char *err, size_t errlen)
{
	bool head_dim_set = false;
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
		if (!fd || !(fd->group & accept))
			FAIL("%.*s: unknown flag for this mode (see --help)", (int)len, a);
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
			continue;
		}
		const char *v;
		if (eq) {
			v = eq + 1;
		} else {
			if (i + 1 >= argc)
				FAIL("%s: missing value (%s)", fd->name, fd->meta);
			v = argv[++i];
		}
		if (set_flag(o, fd->name, v, err, errlen))
			return -1;
		if (!strcmp(fd->name, "--head-dim"))
			head_dim_set = true;
	}
	/* Cross-flag checks on the random layer's shape. */
	if (o->shape.n_kv_heads > o->shape.n_heads)
		FAIL("--kv-heads: %zu is more than --heads %zu", o->shape.n_kv_heads, o->shape.n_heads);
	if (o->shape.n_heads % o->shape.n_kv_heads)
		FAIL("--heads: %zu is not divisible by --kv-heads %zu", o->shape.n_heads, o->shape.n_kv_heads);
	if (!o->rotary_set)
		o->rope.rotary_dim = o->shape.head_dim;
	else if (!o->model_path && o->rope.rotary_dim > o->shape.head_dim)
		FAIL("--rotary-dim: %zu exceeds the head dim %zu", o->rope.rotary_dim, o->shape.head_dim);
	const char *why;
	if (!o->model_path && layer_shape_check(&o->shape, &why) != RF_OK)
		FAIL("--d-model/--heads/--head-dim: %s", why);
	(void)head_dim_set;
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

void opts_print_help(void *stream, unsigned accept)
{
	FILE *f = stream;
	for (size_t i = 0; i < NFLAGS; i++) {
		if (!(flags[i].group & accept))
			continue;
		char left[64];
		snprintf(left, sizeof left, "%s%s%s", flags[i].name,
			 flags[i].meta ? " " : "", flags[i].meta ? flags[i].meta : "");
		if (strlen(left) > 24)
			fprintf(f, "  %s\n  %-24s %s\n", left, "", flags[i].help);
		else
			fprintf(f, "  %-24s %s\n", left, flags[i].help);
	}
}
