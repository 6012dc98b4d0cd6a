#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fold_inverse.h"
#include "core/rope.h"
#include "core/rotation.h"
#include "core/rotation_desc.h"
#include "data/checksum.h"
#include "data/jsonfile.h"
#include "data/sidecar.h"

/* A rotation rebuilt from its angles matches the drawn one to roundoff;
 * anything further away is recorded as a full matrix. */
#define DESCRIBE_TOL 1e-12

struct Sidecar {
	json_t *root;
	json_t *layers;       /* the "layers" array (borrowed from root) */
	LayerShape shape;
	RopeSpec rope;
	bool checksums;       /* the tensors carry checksum_in/out */
};

uint64_t sidecar_layer_seed(uint64_t base, size_t layer)
{
	/* splitmix64 of the base and the layer index. */
	uint64_t z = base + 0x9e3779b97f4a7c15ull * ((uint64_t)layer + 1);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z & 0x7fffffffffffffffull;
}

/* ---- writing ------------------------------------------------------------- */

static json_t *fold_json(const FoldConfig *c)
{
	char rot[8];
	fold_rotate_format(c->rotate, rot, sizeof rot);
	json_t *drop = json_array();
	for (unsigned i = 0; i < ASSUME_COUNT; i++)
		if (c->dropped & (1u << i))
			json_array_append_new(drop, json_string(fold_assumption_name(i)));
	json_t *o = json_pack("{s:s, s:o, s:s, s:b}", "rotate", rot, "drop", drop, "kind",
			      rotation_kind_name(c->kind), "permute_heads", c->permute_heads);
	if (o && c->v_hadamard)   /* --vo hadamard (only then: older records stay as they were) */
		json_object_set_new(o, "v_kind", json_string("hadamard"));
	return o;
}

Sidecar *sidecar_new(const SidecarHead *h)
{
	Sidecar *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->shape = h->shape;
	s->rope = h->rope;
	s->layers = json_array();
	s->root = json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:o, s:{s:I, s:I, s:I, s:I}, "
		"s:{s:s, s:I}}",
		"tool", "ropefold", "version", h->version, "kind", h->undo_of ? "undo" : "fold",
		"input", h->input, "output", h->output, "format", h->format, "seed",
		(json_int_t)h->seed, "dtype", h->dtype, "fold", fold_json(h->fold), "shape",
		"d_model", (json_int_t)h->shape.d_model, "n_heads", (json_int_t)h->shape.n_heads,
		"n_kv_heads", (json_int_t)h->shape.n_kv_heads, "head_dim",
		(json_int_t)h->shape.head_dim, "rope", "layout", rope_layout_name(h->rope.layout),
		"rotary_dim", (json_int_t)h->rope.rotary_dim);
	if (!s->root || !s->layers) {
		json_decref(s->layers);
		json_decref(s->root);
		free(s);
		return NULL;
	}
	json_object_set_new(s->root, "undo_of", h->undo_of ? json_string(h->undo_of)
							   : json_null());
	json_object_set_new(s->root, "checksum", json_string(CHECKSUM_NAME));
	s->checksums = true;
	json_object_set(s->root, "layers", s->layers);
	json_decref(s->layers);
	return s;
}

static json_t *matrix_json(const double *m, size_t rows, size_t cols)
{
	json_t *a = json_array();
	for (size_t i = 0; i < rows; i++) {
		json_t *row = json_array();
		for (size_t j = 0; j < cols; j++)
			json_array_append_new(row, json_real(m[i * cols + j]));
		json_array_append_new(a, row);
	}
	return a;
}

static json_t *rotation_json(const double *R, const RopeSpec *rope, size_t d)
{
	RotationDesc desc;
	if (rotation_describe(R, rope, d, DESCRIBE_TOL, &desc) != RF_OK)
		return NULL;
	json_t *o = json_object();
	if (desc.commuting) {
		size_t np = rope->rotary_dim / 2, m = d - rope->rotary_dim;
		json_t *ang = json_array();
		for (size_t i = 0; i < np; i++)
			json_array_append_new(ang, json_real(desc.angles[i]));
		json_object_set_new(o, "angles", ang);
		if (m)
			json_object_set_new(o, "tail", matrix_json(desc.tail, m, m));
	} else {
		json_object_set_new(o, "matrix", matrix_json(desc.matrix, d, d));
	}
	rotation_desc_free(&desc);
	return o;
}

static json_t *rotations_json(const double *R, size_t n, const RopeSpec *rope, size_t d)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n && a; i++) {
		json_t *r = rotation_json(R + i * d * d, rope, d);
		if (!r) {
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, r);
	}
	return a;
}

/* ---- the plan's checksum ---------------------------------------------------- */

/* Feed a JSON value: a type tag, then integers as int64 and reals by
 * their IEEE bits (8 little-endian bytes), strings with their length,
 * arrays in order and objects by sorted key. A real is written with 17
 * significant digits, which read back to the same bits, so the writer and
 * a later reader feed the same bytes. */
static void feed_u64(Checksum *c, uint64_t u)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(u >> (8 * i));
	checksum_update(c, b, 8);
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void feed_json(Checksum *c, json_t *v);

static void feed_object(Checksum *c, json_t *o)
{
	size_t n = json_object_size(o), i = 0;
	const char **keys = malloc((n ? n : 1) * sizeof *keys);
	const char *key;
	json_t *val;
	if (!keys) {
		feed_u64(c, UINT64_MAX);  /* out of memory: a checksum nothing matches */
		return;
	}
	json_object_foreach(o, key, val)
		keys[i++] = key;
	qsort(keys, n, sizeof *keys, cmp_key);
	feed_u64(c, n);
	for (i = 0; i < n; i++) {
		feed_u64(c, strlen(keys[i]));
		checksum_update(c, keys[i], strlen(keys[i]));
		feed_json(c, json_object_get(o, keys[i]));
	}
	free(keys);
}

static void feed_json(Checksum *c, json_t *v)
{
	unsigned char tag = (unsigned char)json_typeof(v);
	checksum_update(c, &tag, 1);
	if (json_is_integer(v)) {
		feed_u64(c, (uint64_t)json_integer_value(v));
	} else if (json_is_real(v)) {
		double d = json_real_value(v);
		uint64_t u;
		memcpy(&u, &d, 8);
		feed_u64(c, u);
	} else if (json_is_string(v)) {
		feed_u64(c, json_string_length(v));
		checksum_update(c, json_string_value(v), json_string_length(v));
	} else if (json_is_array(v)) {
		feed_u64(c, json_array_size(v));
		for (size_t i = 0; i < json_array_size(v); i++)
			feed_json(c, json_array_get(v, i));
	} else if (json_is_object(v)) {
		feed_object(c, v);
	}
}

/* The checksum of what a layer entry says about the fold itself: its
 * index, seed, rotate_bias, permutation and rotations (not its tensors,
 * which carry their own, nor the rounding figure). */
static uint64_t plan_checksum(json_t *l)
{
	static const char *const keys[] = {"layer", "seed", "rotate_bias", "permutation",
					   "rotations"};
	/* an MLA layer: what draws its rotations again (below) */
	static const char *const mla_keys[] = {"layer", "seed", "attention", "mla"};
	const char *a = json_string_value(json_object_get(l, "attention"));
	bool mla = a && !strcmp(a, "mla");
	size_t n = mla ? sizeof mla_keys / sizeof mla_keys[0] : sizeof keys / sizeof keys[0];
	Checksum c;
	checksum_init(&c);
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(l, mla ? mla_keys[i] : keys[i]);
		unsigned char present = v != NULL;
		checksum_update(&c, &present, 1);
		if (v)
			feed_json(&c, v);
	}
	return checksum_final(&c);
}

static void set_plan_checksum(json_t *l)
{
	char hex[17];
	checksum_format(plan_checksum(l), hex);
	json_object_set_new(l, "checksum", json_string(hex));
}

int sidecar_add_layer(Sidecar *s, size_t layer, uint64_t seed, const FoldPlan *plan,
		      const RopeSpec *rope, double max_rel_rounding)
{
	size_t H = plan->n_heads, G = plan->n_kv_heads, d = plan->head_dim;
	json_t *perm = json_array();
	for (size_t g = 0; g < G; g++)
		json_array_append_new(perm, json_integer((json_int_t)plan->perm[g]));
	json_t *rq = rotations_json(plan->rq, H, rope, d), *rk = rotations_json(plan->rk, G, rope, d);
	json_t *rv = rotations_json(plan->rv, G, rope, d), *ro = rotations_json(plan->ro, H, rope, d);
	if (!rq || !rk || !rv || !ro) {
		json_decref(rq);
		json_decref(rk);
		json_decref(rv);
		json_decref(ro);
		json_decref(perm);
		return -1;
	}
	json_t *l = json_pack("{s:I, s:I, s:b, s:o, s:{s:o, s:o, s:o, s:o}, s:[], s:f}", "layer",
			      (json_int_t)layer, "seed", (json_int_t)seed, "rotate_bias",
			      plan->rotate_bias, "permutation", perm, "rotations", "q", rq, "k",
			      rk, "v", rv, "o", ro, "tensors", "max_rel_rounding",
			      isfinite(max_rel_rounding) ? max_rel_rounding : -1.0);
	if (!l)
		return -1;
	set_plan_checksum(l);
	return json_array_append_new(s->layers, l);
}

/* ---- MLA layers ------------------------------------------------------------
 * An MLA fold's rotations are H (2 dn^2 + dr^2 + 2 dv^2) numbers a layer (a
 * million at DeepSeek-V2-Lite's size): the entry records what draws them
 * again instead, the configuration and the seed, and the checksum of the
 * plan drawn (every number by its bits), so that an undo that draws
 * different rotations (another ropefold, another LAPACK) is refused. */

static size_t get_size(json_t *o, const char *key, bool *ok);

static void feed_doubles(Checksum *c, const double *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t u;
		memcpy(&u, &v[i], 8);
		feed_u64(c, u);
	}
}

uint64_t sidecar_mla_plan_sum(const MlaPlan *p)
{
	size_t H = p->n_heads, nn = p->nope * p->nope, rr = p->rope * p->rope;
	size_t vv = p->v * p->v;
	Checksum c;
	checksum_init(&c);
	feed_u64(&c, H);
	feed_u64(&c, p->nope);
	feed_u64(&c, p->rope);
	feed_u64(&c, p->v);
	for (size_t h = 0; h < H; h++)
		feed_u64(&c, p->perm[h]);
	feed_doubles(&c, p->rq_nope, H * nn);
	feed_doubles(&c, p->rk_nope, H * nn);
	feed_doubles(&c, p->rq_pe, H * rr);
	feed_doubles(&c, p->rk_pe, rr);
	feed_doubles(&c, p->rv, H * vv);
	feed_doubles(&c, p->ro, H * vv);
	return checksum_final(&c);
}

int sidecar_add_mla_layer(Sidecar *s, size_t layer, uint64_t seed, const FoldConfig *cfg,
			  const MlaPlan *plan)
{
	char hex[17];
	checksum_format(sidecar_mla_plan_sum(plan), hex);
	json_t *m = fold_json(cfg);
	if (!m)
		return -1;
	json_object_set_new(m, "layout", cfg->layout_set ? json_string(rope_layout_name(cfg->layout))
							  : json_null());
	json_object_set_new(m, "plan", json_string(hex));
	json_t *l = json_pack("{s:I, s:I, s:s, s:o, s:[], s:f}", "layer", (json_int_t)layer, "seed",
			      (json_int_t)seed, "attention", "mla", "mla", m, "tensors",
			      "max_rel_rounding", -1.0);
	if (!l)
		return -1;
	set_plan_checksum(l);
	return json_array_append_new(s->layers, l);
}

bool sidecar_layer_is_mla(const Sidecar *s, size_t k)
{
	const char *a = json_string_value(json_object_get(json_array_get(s->layers, k),
							  "attention"));
	return a && !strcmp(a, "mla");
}

int sidecar_mla_config(const Sidecar *s, size_t k, size_t *layer, FoldConfig *cfg,
		       uint64_t *plan_sum, char *err, size_t errlen)
{
	json_t *l = json_array_get(s->layers, k);
	json_t *m = json_object_get(l, "mla");
	bool ok = json_is_object(l);
	*layer = ok ? get_size(l, "layer", &ok) : 0;
	if (!ok) {
		snprintf(err, errlen, "sidecar: layers[%zu]: no layer index", k);
		return -1;
	}
	if (!sidecar_layer_is_mla(s, k) || !json_is_object(m)) {
		snprintf(err, errlen, "sidecar: layer %zu: %s", *layer, sidecar_layer_is_mla(s, k)
			 ? "an MLA fold recorded by its seed alone (an older ropefold): it cannot "
			   "be undone" : "not an MLA fold");
		return -1;
	}
	*cfg = fold_config_default();
	uint64_t seed;
	const char *rot = json_string_value(json_object_get(m, "rotate"));
	const char *kind = json_string_value(json_object_get(m, "kind"));
	const char *lay = json_string_value(json_object_get(m, "layout"));
	const char *sum = json_string_value(json_object_get(m, "plan"));
	json_t *drop = json_object_get(m, "drop"), *ph = json_object_get(m, "permute_heads");
	ok = sidecar_layer_seed_of(s, k, &seed) && rot && !fold_rotate_parse(rot, &cfg->rotate) &&
	     kind && !rotation_kind_parse(kind, &cfg->kind) && json_is_boolean(ph) &&
	     json_is_array(drop) && sum && !checksum_parse(sum, plan_sum) &&
	     (json_is_null(json_object_get(m, "layout")) ||
	      (lay && !rope_layout_parse(lay, &cfg->layout)));
	cfg->dropped = 0;
	for (size_t i = 0; ok && i < json_array_size(drop); i++) {
		const char *n = json_string_value(json_array_get(drop, i));
		unsigned bit = n ? fold_assumption_parse(n) : 0;
		ok = bit != 0;
		cfg->dropped |= bit;
	}
	if (!ok) {
		snprintf(err, errlen, "sidecar: layer %zu: its MLA fold entry is malformed (needs "
			 "seed, rotate, drop, kind, permute_heads, layout and plan)", *layer);
		return -1;
	}
	cfg->seed = seed;
	cfg->permute_heads = json_is_true(ph);
	cfg->layout_set = lay != NULL;
	return 0;
}

int sidecar_add_tensor(Sidecar *s, const SidecarTensor *t)
{
	size_t n = json_array_size(s->layers);
	json_t *a = n ? json_object_get(json_array_get(s->layers, n - 1), "tensors") : NULL;
	if (!a)
		return -1;
	char in[17], out[17];
	checksum_format(t->sum_in, in);
	checksum_format(t->sum_out, out);
	json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", t->name, "dtype_in",
			      t->dtype_in, "dtype_out", t->dtype_out, "checksum_in", in,
			      "checksum_out", out);
	if (e && t->quant_in > 0 && isfinite(t->quant_in)) {
		json_object_set_new(e, "quant_bound_in", json_real(t->quant_in));
		json_object_set_new(e, "quant_bound_in_frob", json_real(t->quant_in_frob));
	}
	return json_array_append_new(a, e);
}

void sidecar_set_rounding(Sidecar *s, double max_rel_rounding)
{
	size_t n = json_array_size(s->layers);
	if (n)
		json_object_set_new(json_array_get(s->layers, n - 1), "max_rel_rounding",
				    json_real(isfinite(max_rel_rounding) ? max_rel_rounding : -1.0));
}

static uint64_t residual_checksum(json_t *r);

char *sidecar_dump(const Sidecar *s)
{
	json_t *r = json_object_get(s->root, "residual");
	if (json_is_object(r)) {
		char hex[17];
		checksum_format(residual_checksum(r), hex);
		json_object_set_new(r, "checksum", json_string(hex));
	}
	return json_dumps(s->root, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
}

void sidecar_free(Sidecar *s)
{
	if (!s)
		return;
	json_decref(s->root);
	free(s);
}

/* ---- reading ------------------------------------------------------------- */

static size_t get_size(json_t *o, const char *key, bool *ok)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		*ok = false;
		return 0;
	}
	return (size_t)json_integer_value(v);
}

/* A rows x cols matrix of numbers into out. */
static bool read_matrix(json_t *a, size_t rows, size_t cols, double *out)
{
	if (!json_is_array(a) || json_array_size(a) != rows)
		return false;
	for (size_t i = 0; i < rows; i++) {
		json_t *row = json_array_get(a, i);
		if (!json_is_array(row) || json_array_size(row) != cols)
			return false;
		for (size_t j = 0; j < cols; j++) {
			json_t *v = json_array_get(row, j);
			if (!json_is_number(v))
				return false;
			out[i * cols + j] = json_number_value(v);
			if (!isfinite(out[i * cols + j]))
				return false;
		}
	}
	return true;
}

/* One rotation description into R (d x d). */
static bool read_rotation(json_t *o, const RopeSpec *rope, size_t d, double *R)
{
	if (!json_is_object(o))
		return false;
	json_t *mat = json_object_get(o, "matrix");
	if (mat)
		return read_matrix(mat, d, d, R);
	size_t np = rope->rotary_dim / 2, m = d - rope->rotary_dim;
	json_t *ang = json_object_get(o, "angles");
	if (!json_is_array(ang) || json_array_size(ang) != np)
		return false;
	RotationDesc desc = {true, calloc(np ? np : 1, sizeof(double)),
			     m ? malloc(m * m * sizeof(double)) : NULL, NULL};
	bool ok = desc.angles && (!m || desc.tail);
	for (size_t i = 0; ok && i < np; i++) {
		json_t *v = json_array_get(ang, i);
		ok = json_is_number(v) && isfinite(json_number_value(v));
		if (ok)
			desc.angles[i] = json_number_value(v);
	}
	if (ok && m)
		ok = read_matrix(json_object_get(o, "tail"), m, m, desc.tail);
	if (ok)
		rotation_rebuild(&desc, rope, d, R);
	rotation_desc_free(&desc);
	return ok;
}

static bool read_rotations(json_t *a, size_t n, const RopeSpec *rope, size_t d, double *R)
{
	if (!json_is_array(a) || json_array_size(a) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!read_rotation(json_array_get(a, i), rope, d, R + i * d * d))
			return false;
	return true;
}

/* One entry of a layer's "tensors": its names, and both checksums when
 * the sidecar records them. */
static bool tensor_entry_ok(json_t *e, bool checksums)
{
	uint64_t h;
	const char *keys[] = {"name", "dtype_in", "dtype_out"};
	for (int i = 0; i < 3; i++)
		if (!json_is_string(json_object_get(e, keys[i])))
			return false;
	return !checksums ||
	       (json_is_string(json_object_get(e, "checksum_in")) &&
		json_is_string(json_object_get(e, "checksum_out")) &&
		!checksum_parse(json_string_value(json_object_get(e, "checksum_in")), &h) &&
		!checksum_parse(json_string_value(json_object_get(e, "checksum_out")), &h));
}

/* Every layer's tensor list: well formed, each name once. */
static int check_tensor_lists(json_t *layers, bool checksums, const char *path, char *err,
			      size_t errlen)
{
	for (size_t k = 0; k < json_array_size(layers); k++) {
		json_t *t = json_object_get(json_array_get(layers, k), "tensors");
		if (!t && !checksums)
			continue;
		if (!json_is_array(t)) {
			snprintf(err, errlen, "%s: layers[%zu]: no tensor list", path, k);
			return -1;
		}
		for (size_t i = 0; i < json_array_size(t); i++) {
			json_t *e = json_array_get(t, i);
			if (!tensor_entry_ok(e, checksums)) {
				snprintf(err, errlen, "%s: layers[%zu].tensors[%zu]: needs name, "
					 "dtype_in, dtype_out%s", path, k, i,
					 checksums ? " and two checksums of 16 hex digits" : "");
				return -1;
			}
			const char *n = json_string_value(json_object_get(e, "name"));
			for (size_t j = 0; j < i; j++) {
				json_t *o = json_object_get(json_array_get(t, j), "name");
				if (!strcmp(json_string_value(o), n)) {
					snprintf(err, errlen, "%s: layers[%zu]: tensor %s recorded twice",
						 path, k, n);
					return -1;
				}
			}
		}
	}
	return 0;
}

/* Every layer's plan against its recorded checksum: a sidecar whose
 * rotations were edited is refused. */
static int check_plan_checksums(json_t *layers, const char *path, char *err, size_t errlen)
{
	for (size_t k = 0; k < json_array_size(layers); k++) {
		json_t *l = json_array_get(layers, k);
		const char *rec = json_string_value(json_object_get(l, "checksum"));
		uint64_t want;
		const char *a = json_string_value(json_object_get(l, "attention"));
		if (!rec && a && !strcmp(a, "mla")) {
			snprintf(err, errlen, "%s: layers[%zu]: an MLA fold recorded by its seed alone "
				 "(an older ropefold): it cannot be undone", path, k);
			return -1;
		}
		if (!rec || checksum_parse(rec, &want)) {
			snprintf(err, errlen, "%s: layers[%zu]: no checksum of 16 hex digits", path, k);
			return -1;
		}
		if (plan_checksum(l) != want) {
			snprintf(err, errlen, "%s: layers[%zu]: the recorded rotations do not match "
				 "their checksum (the sidecar was changed after it was written)", path,
				 k);
			return -1;
		}
	}
	return 0;
}

/* What the residual entry says about R1 and the fused norms (not its
 * tensors, which carry their own checksums). */
static uint64_t residual_checksum(json_t *r)
{
	static const char *const keys[] = {"kind", "seed", "d_model", "norm_plus_one", "untied",
					   "vo", "norms"};
	Checksum c;
	checksum_init(&c);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		json_t *v = json_object_get(r, keys[i]);
		unsigned char present = v != NULL;
		checksum_update(&c, &present, 1);
		if (v)
			feed_json(&c, v);
	}
	return checksum_final(&c);
}

/* A residual entry, when there is one, against its checksum. */
static int check_residual_checksum(json_t *root, const char *path, char *err, size_t errlen)
{
	json_t *r = json_object_get(root, "residual");
	if (!r || json_is_null(r))
		return 0;
	const char *rec = json_string_value(json_object_get(r, "checksum"));
	uint64_t want;
	if (!json_is_object(r) || !rec || checksum_parse(rec, &want) ||
	    residual_checksum(r) != want) {
		snprintf(err, errlen, "%s: residual: the recorded rotation and norms do not match "
			 "their checksum (the sidecar was changed after it was written)", path);
		return -1;
	}
	return 0;
}

/* The "checksum" key: absent in an older sidecar, else the one we know. */
static int read_checksum_kind(json_t *root, bool *checksums, const char *path, char *err,
			      size_t errlen)
{
	json_t *c = json_object_get(root, "checksum");
	*checksums = c != NULL;
	if (c && (!json_is_string(c) || strcmp(json_string_value(c), CHECKSUM_NAME))) {
		snprintf(err, errlen, "%s: checksums of an unknown kind (this ropefold writes "
			 "and reads %s)", path, CHECKSUM_NAME);
		return -1;
	}
	return 0;
}

int sidecar_load(const char *path, const LayerShape *shape, Sidecar **out, char *err,
		 size_t errlen)
{
	*out = NULL;
	json_t *root;
	if (jsonfile_load(path, JSONFILE_SIDECAR_MAX, JSON_REJECT_DUPLICATES, &root, err, errlen))
		return -1;
	json_t *sh = json_object_get(root, "shape"), *rp = json_object_get(root, "rope");
	json_t *layers = json_object_get(root, "layers");
	const char *tool = json_string_value(json_object_get(root, "tool"));
	bool ok = tool && !strcmp(tool, "ropefold") && json_is_object(sh) &&
		  json_is_object(rp) && json_is_array(layers);
	if (!ok) {
		snprintf(err, errlen, "%s: not a ropefold fold sidecar (needs tool, shape, rope, "
			 "layers)", path);
		json_decref(root);
		return -1;
	}
	if (json_array_size(layers) == 0) {
		snprintf(err, errlen, "%s: records no layers; nothing to undo", path);
		json_decref(root);
		return -1;
	}
	bool checksums;
	if (read_checksum_kind(root, &checksums, path, err, errlen) ||
	    check_tensor_lists(layers, checksums, path, err, errlen) ||
	    (checksums && check_plan_checksums(layers, path, err, errlen)) ||
	    check_residual_checksum(root, path, err, errlen)) {
		json_decref(root);
		return -1;
	}
	LayerShape s = {get_size(sh, "d_model", &ok), get_size(sh, "n_heads", &ok),
			get_size(sh, "n_kv_heads", &ok), get_size(sh, "head_dim", &ok)};
	size_t r = get_size(rp, "rotary_dim", &ok);
	RopeLayout lay;
	const char *ls = json_string_value(json_object_get(rp, "layout"));
	if (!ok || !ls || rope_layout_parse(ls, &lay)) {
		snprintf(err, errlen, "%s: shape or rope entry malformed", path);
		json_decref(root);
		return -1;
	}
	if (memcmp(&s, shape, sizeof s) || r > s.head_dim || r % 2) {
		snprintf(err, errlen, "%s: recorded for D %zu, %zu heads, %zu kv heads, head dim "
			 "%zu (rotary dim %zu); this checkpoint has D %zu, %zu heads, %zu kv heads, "
			 "head dim %zu", path, s.d_model, s.n_heads, s.n_kv_heads, s.head_dim, r,
			 shape->d_model, shape->n_heads, shape->n_kv_heads, shape->head_dim);
		json_decref(root);
		return -1;
	}
	Sidecar *sc = calloc(1, sizeof *sc);
	if (!sc) {
		snprintf(err, errlen, "%s: out of memory", path);
		json_decref(root);
		return -1;
	}
	sc->root = root;
	sc->layers = layers;
	sc->checksums = checksums;
	sc->shape = s;
	sc->rope = rope_spec_default(s.head_dim);
	sc->rope.layout = lay;
	sc->rope.rotary_dim = r;
	*out = sc;
	return 0;
}

size_t sidecar_layer_count(const Sidecar *s)
{
	return json_array_size(s->layers);
}

bool sidecar_has_checksums(const Sidecar *s)
{
	return s->checksums;
}

static void tensor_of(json_t *e, SidecarTensor *out)
{
	out->name = json_string_value(json_object_get(e, "name"));
	out->dtype_in = json_string_value(json_object_get(e, "dtype_in"));
	out->dtype_out = json_string_value(json_object_get(e, "dtype_out"));
	out->sum_in = out->sum_out = 0;
	/* optional; a number that is not positive and finite is none */
	json_t *q = json_object_get(e, "quant_bound_in");
	json_t *qf = json_object_get(e, "quant_bound_in_frob");
	out->quant_in = json_is_number(q) ? json_number_value(q) : 0;
	out->quant_in_frob = json_is_number(qf) ? json_number_value(qf) : 0;
	if (!(out->quant_in > 0 && isfinite(out->quant_in)))
		out->quant_in = 0;
	if (!(out->quant_in_frob > 0 && isfinite(out->quant_in_frob)))
		out->quant_in_frob = 0;
	json_t *a = json_object_get(e, "checksum_in"), *b = json_object_get(e, "checksum_out");
	if (a && b) {
		checksum_parse(json_string_value(a), &out->sum_in);
		checksum_parse(json_string_value(b), &out->sum_out);
	}
}

size_t sidecar_tensor_count(const Sidecar *s, size_t k)
{
	return json_array_size(json_object_get(json_array_get(s->layers, k), "tensors"));
}

void sidecar_tensor_get(const Sidecar *s, size_t k, size_t i, SidecarTensor *out)
{
	tensor_of(json_array_get(json_object_get(json_array_get(s->layers, k), "tensors"), i),
		  out);
}

int sidecar_tensor_find(const Sidecar *s, size_t k, const char *name, SidecarTensor *out)
{
	for (size_t i = 0; i < sidecar_tensor_count(s, k); i++) {
		sidecar_tensor_get(s, k, i, out);
		if (!strcmp(out->name, name))
			return 0;
	}
	return -1;
}

bool sidecar_layer_seed_of(const Sidecar *s, size_t k, uint64_t *seed)
{
	json_t *v = json_object_get(json_array_get(s->layers, k), "seed");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*seed = (uint64_t)json_integer_value(v);
	return true;
}

bool sidecar_layer_index(const Sidecar *s, size_t k, size_t *layer)
{
	json_t *v = json_object_get(json_array_get(s->layers, k), "layer");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*layer = (size_t)json_integer_value(v);
	return true;
}

uint64_t sidecar_seed(const Sidecar *s)
{
	return (uint64_t)json_integer_value(json_object_get(s->root, "seed"));
}

const char *sidecar_format(const Sidecar *s)
{
	const char *f = json_string_value(json_object_get(s->root, "format"));
	return f ? f : "?";
}

int sidecar_layer_plan(const Sidecar *s, size_t k, size_t *layer, FoldPlan *plan,
		       char *err, size_t errlen)
{
	const LayerShape *sh = &s->shape;
	size_t H = sh->n_heads, G = sh->n_kv_heads, d = sh->head_dim;
	json_t *l = json_array_get(s->layers, k);
	bool ok = json_is_object(l);
	*layer = ok ? get_size(l, "layer", &ok) : 0;
	if (!ok) {
		snprintf(err, errlen, "sidecar: layers[%zu]: no layer index", k);
		return -1;
	}
	if (fold_identity_plan(H, G, d, plan) != RF_OK) {
		snprintf(err, errlen, "sidecar: layer %zu: out of memory", *layer);
		return -1;
	}
	json_t *perm = json_object_get(l, "permutation"), *rot = json_object_get(l, "rotations");
	json_t *rb = json_object_get(l, "rotate_bias");
	ok = json_is_array(perm) && json_array_size(perm) == G && json_is_object(rot) &&
	     json_is_boolean(rb);
	unsigned char *seen = calloc(G, 1);
	for (size_t g = 0; ok && g < G; g++) {
		json_t *v = json_array_get(perm, g);
		ok = seen && json_is_integer(v) && json_integer_value(v) >= 0 &&
		     (size_t)json_integer_value(v) < G && !seen[json_integer_value(v)];
		if (ok) {
			plan->perm[g] = (size_t)json_integer_value(v);
			seen[plan->perm[g]] = 1;
		}
	}
	free(seen);
	if (ok) {
		plan->rotate_bias = json_is_true(rb);
		ok = read_rotations(json_object_get(rot, "q"), H, &s->rope, d, plan->rq) &&
		     read_rotations(json_object_get(rot, "k"), G, &s->rope, d, plan->rk) &&
		     read_rotations(json_object_get(rot, "v"), G, &s->rope, d, plan->rv) &&
		     read_rotations(json_object_get(rot, "o"), H, &s->rope, d, plan->ro);
	}
	if (!ok) {
		snprintf(err, errlen, "sidecar: layer %zu: permutation or rotations malformed "
			 "(need a permutation of %zu kv groups and q[%zu], k[%zu], v[%zu], o[%zu] "
			 "rotations)", *layer, G, H, G, G, H);
		fold_plan_free(plan);
		return -1;
	}
	return 0;
}

const char *sidecar_tensor_dtype_in(const Sidecar *s, size_t k, const char *name)
{
	SidecarTensor t;
	return sidecar_tensor_find(s, k, name, &t) ? NULL : t.dtype_in;
}

/* ---- the residual frame ------------------------------------------------------ */

static json_t *residual_obj(const Sidecar *s)
{
	json_t *r = json_object_get(s->root, "residual");
	return json_is_object(r) ? r : NULL;
}

int sidecar_set_residual(Sidecar *s, const SidecarResidual *r)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:b, s:b, s:o, s:[], s:[]}", "kind", r->kind,
			      "seed", (json_int_t)r->seed, "d_model", (json_int_t)r->d_model,
			      "norm_plus_one", r->plus_one, "untied", r->untied, "vo",
			      r->vo ? json_string(r->vo) : json_null(), "norms", "tensors");
	return o ? json_object_set_new(s->root, "residual", o) : -1;
}

int sidecar_add_norm(Sidecar *s, const char *name, const double *v, size_t n)
{
	json_t *r = residual_obj(s);
	if (!r)
		return -1;
	json_t *vals = json_array();
	for (size_t i = 0; vals && i < n; i++)
		json_array_append_new(vals, json_real(v[i]));
	return json_array_append_new(json_object_get(r, "norms"),
				     json_pack("{s:s, s:o}", "name", name, "values", vals));
}

int sidecar_add_model_tensor(Sidecar *s, const SidecarTensor *t)
{
	json_t *r = residual_obj(s);
	if (!r)
		return -1;
	char in[17], out[17];
	checksum_format(t->sum_in, in);
	checksum_format(t->sum_out, out);
	return json_array_append_new(json_object_get(r, "tensors"),
				     json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", t->name,
					       "dtype_in", t->dtype_in, "dtype_out", t->dtype_out,
					       "checksum_in", in, "checksum_out", out));
}

bool sidecar_residual(const Sidecar *s, SidecarResidual *out, bool *bad)
{
	*bad = false;
	json_t *r = json_object_get(s->root, "residual");
	if (!r || json_is_null(r))
		return false;
	bool ok = json_is_object(r);
	json_t *vo = ok ? json_object_get(r, "vo") : NULL;
	out->kind = json_string_value(json_object_get(r, "kind"));
	out->seed = ok ? (uint64_t)json_integer_value(json_object_get(r, "seed")) : 0;
	out->d_model = ok ? get_size(r, "d_model", &ok) : 0;
	out->plus_one = json_is_true(json_object_get(r, "norm_plus_one"));
	out->untied = json_is_true(json_object_get(r, "untied"));
	out->vo = json_string_value(vo);
	json_t *ts = json_object_get(r, "tensors");
	ok = ok && out->kind && json_is_integer(json_object_get(r, "seed")) &&
	     json_is_array(json_object_get(r, "norms")) && json_is_array(ts);
	for (size_t i = 0; ok && i < json_array_size(ts); i++)
		ok = tensor_entry_ok(json_array_get(ts, i), s->checksums);
	*bad = !ok;
	return ok;
}

int sidecar_norm_values(const Sidecar *s, const char *name, double *v, size_t n)
{
	json_t *r = residual_obj(s), *norms = r ? json_object_get(r, "norms") : NULL;
	for (size_t i = 0; i < json_array_size(norms); i++) {
		json_t *e = json_array_get(norms, i);
		const char *nm = json_string_value(json_object_get(e, "name"));
		json_t *vals = json_object_get(e, "values");
		if (!nm || strcmp(nm, name))
			continue;
		if (json_array_size(vals) != n)
			return -1;
		for (size_t j = 0; j < n; j++) {
			json_t *x = json_array_get(vals, j);
			if (!json_is_number(x) || !isfinite(json_number_value(x)))
				return -1;
			v[j] = json_number_value(x);
		}
		return 0;
	}
	return -1;
}

size_t sidecar_model_tensor_count(const Sidecar *s)
{
	json_t *r = residual_obj(s);
	return r ? json_array_size(json_object_get(r, "tensors")) : 0;
}

void sidecar_model_tensor_get(const Sidecar *s, size_t i, SidecarTensor *out)
{
	tensor_of(json_array_get(json_object_get(residual_obj(s), "tensors"), i), out);
}

int sidecar_model_tensor_find(const Sidecar *s, const char *name, SidecarTensor *out)
{
	for (size_t i = 0; i < sidecar_model_tensor_count(s); i++) {
		sidecar_model_tensor_get(s, i, out);
		if (out->name && !strcmp(out->name, name))
			return 0;
	}
	return -1;
}
