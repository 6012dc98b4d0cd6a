#include "config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/plan_ops.h"
#include "core/rope.h"
#include "core/rotation.h"
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
	return json_pack("{s:s, s:o, s:s, s:b}", "rotate", rot, "drop", drop, "kind",
			 rotation_kind_name(c->kind), "permute_heads", c->permute_heads);
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
	if (plan_describe_rotation(R, rope, d, DESCRIBE_TOL, &desc) != RF_OK)
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
	plan_desc_free(&desc);
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
	return l ? json_array_append_new(s->layers, l) : -1;
}

int sidecar_add_tensor(Sidecar *s, const char *name, const char *dtype_in,
		       const char *dtype_out)
{
	size_t n = json_array_size(s->layers);
	json_t *t = n ? json_object_get(json_array_get(s->layers, n - 1), "tensors") : NULL;
	if (!t)
		return -1;
	return json_array_append_new(t, json_pack("{s:s, s:s, s:s}", "name", name, "dtype_in",
						  dtype_in, "dtype_out", dtype_out));
}

void sidecar_set_rounding(Sidecar *s, double max_rel_rounding)
{
	size_t n = json_array_size(s->layers);
	if (n)
		json_object_set_new(json_array_get(s->layers, n - 1), "max_rel_rounding",
				    json_real(isfinite(max_rel_rounding) ? max_rel_rounding : -1.0));
}

char *sidecar_dump(const Sidecar *s)
{
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
		plan_build_rotation(&desc, rope, d, R);
	plan_desc_free(&desc);
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
	if (plan_identity(H, G, d, plan) != RF_OK) {
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
	json_t *t = json_object_get(json_array_get(s->layers, k), "tensors");
	for (size_t i = 0; i < json_array_size(t); i++) {
		json_t *e = json_array_get(t, i);
		const char *n = json_string_value(json_object_get(e, "name"));
		if (n && !strcmp(n, name))
			return json_string_value(json_object_get(e, "dtype_in"));
	}
	return NULL;
}
