#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rope.h"

void rope_pair_coords(RopeLayout layout, size_t rotary_dim, size_t i,
		      size_t *a, size_t *b)
{
	if (layout == ROPE_INTERLEAVED) {
		*a = 2 * i;
		*b = 2 * i + 1;
	} else {
		*a = i;
		*b = i + rotary_dim / 2;
	}
}

/* ---- frequency scaling (HF transformers' modeling_rope_utils) ---------- */

static double yarn_correction_dim(double rot, double dim, double base,
				  double max_pos)
{
	return dim * log(max_pos / (rot * 2.0 * M_PI)) / (2.0 * log(base));
}

static void scale_yarn(const RopeSpec *spec, double *w, size_t np)
{
	const RopeScaling *s = &spec->scaling;
	double dim = (double)spec->rotary_dim;
	double maxpos = s->original_max_pos > 0 ? s->original_max_pos : 4096.0;
	double bf = s->beta_fast > 0 ? s->beta_fast : 32.0;
	double bs = s->beta_slow > 0 ? s->beta_slow : 1.0;
	double lo = floor(yarn_correction_dim(bf, dim, spec->theta, maxpos));
	double hi = ceil(yarn_correction_dim(bs, dim, spec->theta, maxpos));
	if (lo < 0)
		lo = 0;
	if (hi > dim - 1)
		hi = dim - 1;
	if (lo == hi)
		hi += 0.001;
	for (size_t i = 0; i < np; i++) {
		double ramp = ((double)i - lo) / (hi - lo);
		ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
		double extra = 1.0 - ramp; /* share of the unscaled frequency */
		double interp = w[i] / s->factor;
		w[i] = interp * (1.0 - extra) + w[i] * extra;
	}
}

static void scale_llama3(const RopeSpec *spec, double *w, size_t np)
{
	const RopeScaling *s = &spec->scaling;
	double f = s->factor;
	double lf = s->low_freq_factor > 0 ? s->low_freq_factor : 1.0;
	double hf = s->high_freq_factor > 0 ? s->high_freq_factor : 4.0;
	double old = s->original_max_pos > 0 ? s->original_max_pos : 8192.0;
	double low_wl = old / lf, high_wl = old / hf;
	for (size_t i = 0; i < np; i++) {
		double wl = 2.0 * M_PI / w[i];
		if (wl < high_wl)
			continue;
		if (wl > low_wl) {
			w[i] /= f;
			continue;
		}
		double smooth = (old / wl - lf) / (hf - lf);
		w[i] = (1.0 - smooth) * w[i] / f + smooth * w[i];
	}
}

bool rope_uses_long_factors(const RopeSpec *spec, size_t seq)
{
	const RopeScaling *s = &spec->scaling;
	return s->kind == ROPE_SCALING_LONGROPE && (double)seq > s->original_max_pos;
}

RfStatus rope_frequencies(const RopeSpec *spec, double *freqs)
{
	return rope_frequencies_at(spec, 0, freqs);
}

RfStatus rope_frequencies_at(const RopeSpec *spec, size_t seq, double *freqs)
{
	size_t r = spec->rotary_dim, np = r / 2;
	double base = spec->theta;
	const RopeScaling *s = &spec->scaling;
	if (r == 0)
		return RF_OK;
	if (r % 2 || !(base > 0))
		return RF_ERR_ARG;
	if (s->kind != ROPE_SCALING_NONE && !(s->factor > 0))
		return RF_ERR_ARG;
	bool table = s->kind == ROPE_SCALING_LONGROPE || s->kind == ROPE_SCALING_FREQ_FACTORS;
	if (table && s->n_pairs != np)
		return RF_ERR_ARG;
	/* NTK-aware: the base grows by factor^(r/(r-2)), HF's dynamic rule at
	 * its full stretch; with a trained length L (a checkpoint's
	 * max_position_embeddings) HF's dynamic rule itself, which stretches
	 * only past L: by (factor T / L - (factor - 1))^(r/(r-2)) for a pass
	 * of T > L positions. With r = 2 there is one pair and no change. */
	if (s->kind == ROPE_SCALING_NTK && r > 2) {
		double L = s->original_max_pos, f = s->factor;
		if (L > 0)
			f = (double)seq > L ? s->factor * (double)seq / L - (s->factor - 1.0) : 1.0;
		base *= pow(f, (double)r / (double)(r - 2));
	}
	for (size_t i = 0; i < np; i++)
		freqs[i] = pow(base, -2.0 * (double)i / (double)r);
	switch (s->kind) {
	case ROPE_SCALING_LINEAR:
		for (size_t i = 0; i < np; i++)
			freqs[i] /= s->factor;
		break;
	case ROPE_SCALING_YARN:
		scale_yarn(spec, freqs, np);
		break;
	case ROPE_SCALING_LLAMA3:
		scale_llama3(spec, freqs, np);
		break;
	case ROPE_SCALING_LONGROPE:
	case ROPE_SCALING_FREQ_FACTORS: {
		/* HF's longrope inv_freq = 1 / (ext * theta^(2i/r)); ggml's
		 * rope_freqs divides the angle p w_i by its factor: the same */
		const double *f = rope_uses_long_factors(spec, seq) ? s->long_factors : s->factors;
		for (size_t i = 0; i < np; i++)
			freqs[i] /= f[i];
		break;
	}
	default:
		break;
	}
	return RF_OK;
}

double rope_attention_factor(const RopeSpec *spec)
{
	const RopeScaling *s = &spec->scaling;
	if (s->kind != ROPE_SCALING_YARN && s->kind != ROPE_SCALING_LONGROPE)
		return 1.0;
	if (s->attention_factor > 0)
		return s->attention_factor;
	if (s->factor <= 1.0)
		return 1.0;
	/* longrope (HF _compute_longrope_parameters): at every length, the
	 * short factors' side too; an original length of 1 has no log */
	if (s->kind == ROPE_SCALING_LONGROPE)
		return s->original_max_pos > 1.0
		       ? sqrt(1.0 + log(s->factor) / log(s->original_max_pos)) : 1.0;
	return 0.1 * log(s->factor) + 1.0;
}

/* ---- tables ------------------------------------------------------------ */

RfStatus rope_table_init(RopeTable *t, const RopeSpec *spec, size_t seq)
{
	size_t np = spec->rotary_dim / 2;
	memset(t, 0, sizeof *t);
	t->seq = seq;
	t->npairs = np;
	t->layout = spec->layout;
	t->rotary_dim = spec->rotary_dim;
	size_t n = seq * np;
	if (n == 0)
		n = 1;
	t->freqs = calloc(np ? np : 1, sizeof(double));
	t->cos = malloc(n * sizeof(double));
	t->sin = malloc(n * sizeof(double));
	t->cos_f = malloc(n * sizeof(float));
	t->sin_f = malloc(n * sizeof(float));
	if (!t->freqs || !t->cos || !t->sin || !t->cos_f || !t->sin_f) {
		rope_table_done(t);
		return RF_ERR_NOMEM;
	}
	RfStatus st = rope_frequencies_at(spec, seq, t->freqs);
	if (st != RF_OK) {
		rope_table_done(t);
		return st;
	}
	double mscale = rope_attention_factor(spec);
	for (size_t p = 0; p < seq; p++) {
		for (size_t i = 0; i < np; i++) {
			double ang = (double)p * t->freqs[i];
			t->cos[p * np + i] = cos(ang) * mscale;
			t->sin[p * np + i] = sin(ang) * mscale;
			t->cos_f[p * np + i] = (float)t->cos[p * np + i];
			t->sin_f[p * np + i] = (float)t->sin[p * np + i];
		}
	}
	return RF_OK;
}

void rope_table_done(RopeTable *t)
{
	free(t->freqs);
	free(t->cos);
	free(t->sin);
	free(t->cos_f);
	free(t->sin_f);
	memset(t, 0, sizeof *t);
}

/* One head's rotation: (a, b) -> (a cos - b sin, a sin + b cos). */
#define ROPE_APPLY_BODY(REAL, COS, SIN)                                        \
	size_t np = t->npairs, r = t->rotary_dim;                              \
	size_t half = r / 2;                                                   \
	for (size_t p = 0; p < T; p++) {                                       \
		const REAL *c = t->COS + p * np, *s = t->SIN + p * np;         \
		for (size_t h = 0; h < nheads; h++) {                          \
			REAL *v = x + p * ld + h * head_dim;                   \
			if (t->layout == ROPE_INTERLEAVED) {                   \
				for (size_t i = 0; i < np; i++) {              \
					REAL a = v[2 * i], b = v[2 * i + 1];   \
					v[2 * i] = a * c[i] - b * s[i];        \
					v[2 * i + 1] = a * s[i] + b * c[i];    \
				}                                              \
			} else {                                               \
				for (size_t i = 0; i < np; i++) {              \
					REAL a = v[i], b = v[i + half];        \
					v[i] = a * c[i] - b * s[i];            \
					v[i + half] = a * s[i] + b * c[i];     \
				}                                              \
			}                                                      \
		}                                                              \
	}

void rope_apply_rows(const RopeTable *t, size_t T, size_t nheads,
		     size_t head_dim, double *x, size_t ld)
{
	ROPE_APPLY_BODY(double, cos, sin)
}

void rope_apply_rows_f(const RopeTable *t, size_t T, size_t nheads,
		       size_t head_dim, float *x, size_t ld)
{
	ROPE_APPLY_BODY(float, cos_f, sin_f)
}

size_t rope_coord_pair(RopeLayout layout, size_t rotary_dim, size_t c)
{
	size_t r = rotary_dim;
	if (c >= r)
		return r / 2;
	if (layout == ROPE_INTERLEAVED)
		return c / 2;
	return c < r / 2 ? c : c - r / 2;
}

void rope_pair_rotation(RopeLayout layout, size_t rotary_dim, size_t head_dim,
			double scale, const double *angles, double *out)
{
	size_t d = head_dim;
	memset(out, 0, d * d * sizeof(double));
	for (size_t i = rotary_dim; i < d; i++)
		out[i * d + i] = 1.0;
	for (size_t i = 0; i < rotary_dim / 2; i++) {
		size_t a, b;
		rope_pair_coords(layout, rotary_dim, i, &a, &b);
		double c = cos(scale * angles[i]), s = sin(scale * angles[i]);
		out[a * d + a] = c;
		out[a * d + b] = -s;
		out[b * d + a] = s;
		out[b * d + b] = c;
	}
}

void rope_theta_matrix(const double *freqs, RopeLayout layout,
		       size_t rotary_dim, size_t head_dim, double p,
		       double *out)
{
	rope_pair_rotation(layout, rotary_dim, head_dim, p, freqs, out);
}

const char *rope_layout_name(RopeLayout layout)
{
	return layout == ROPE_INTERLEAVED ? "interleaved" : "half";
}

int rope_layout_parse(const char *s, RopeLayout *out)
{
	if (!strcmp(s, "half") || !strcmp(s, "half-split") || !strcmp(s, "neox")) {
		*out = ROPE_HALF;
		return 0;
	}
	if (!strcmp(s, "interleaved") || !strcmp(s, "gptj")) {
		*out = ROPE_INTERLEAVED;
		return 0;
	}
	return -1;
}

/* A decimal number, all of s: no leading space, hex, inf or nan (strtod
 * would take them). */
static bool decimal(const char *s, double *out)
{
	char *end;
	if (!strchr("0123456789.+-", *s) || !*s || strpbrk(s, "xX"))
		return false;
	*out = strtod(s, &end);
	return *end == 0 && isfinite(*out);
}

int rope_scaling_parse(const char *s, RopeScaling *out)
{
	static const struct {
		const char *name;
		RopeScalingKind kind;
	} names[] = {
		{"linear", ROPE_SCALING_LINEAR}, {"ntk", ROPE_SCALING_NTK},
		{"yarn", ROPE_SCALING_YARN},     {"llama3", ROPE_SCALING_LLAMA3},
	};
	memset(out, 0, sizeof *out);
	if (!strcmp(s, "none"))
		return 0;
	const char *colon = strchr(s, ':');
	if (!colon)
		return -1;
	size_t len = (size_t)(colon - s);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strlen(names[i].name) != len || strncmp(s, names[i].name, len))
			continue;
		double f;
		if (!decimal(colon + 1, &f) || !(f >= ROPE_SCALING_FACTOR_MIN) ||
		    f > ROPE_SCALING_FACTOR_MAX)
			return -2;
		out->kind = names[i].kind;
		out->factor = f;
		return 0;
	}
	return -1;
}

void rope_scaling_format(const RopeScaling *s, char *buf, size_t len)
{
	static const char *names[] = {"none", "linear", "ntk", "yarn", "llama3"};
	if (s->kind == ROPE_SCALING_LONGROPE)
		snprintf(buf, len, "longrope");
	else if (s->kind == ROPE_SCALING_FREQ_FACTORS)
		snprintf(buf, len, "rope_freqs");
	else if (s->kind == ROPE_SCALING_NONE || (size_t)s->kind >= 5)
		snprintf(buf, len, "none");
	else
		snprintf(buf, len, "%s:%g", names[s->kind], s->factor);
}

bool rope_spec_equal(const RopeSpec *x, const RopeSpec *y)
{
	const RopeScaling *a = &x->scaling, *b = &y->scaling;
	if (x->layout != y->layout || x->rotary_dim != y->rotary_dim || x->theta != y->theta ||
	    a->kind != b->kind || a->factor != b->factor ||
	    a->original_max_pos != b->original_max_pos ||
	    a->low_freq_factor != b->low_freq_factor ||
	    a->high_freq_factor != b->high_freq_factor || a->beta_fast != b->beta_fast ||
	    a->beta_slow != b->beta_slow || a->attention_factor != b->attention_factor ||
	    a->n_pairs != b->n_pairs)
		return false;
	for (size_t i = 0; i < a->n_pairs && i < ROPE_MAX_TABLE_PAIRS; i++)
		if (a->factors[i] != b->factors[i] || a->long_factors[i] != b->long_factors[i])
			return false;
	return true;
}

void rope_override_apply(const RopeOverride *o, RopeSpec *rope)
{
	if (o->layout)
		rope->layout = o->spec.layout;
	if (o->rotary_dim)
		rope->rotary_dim = o->spec.rotary_dim;
	if (o->theta)
		rope->theta = o->spec.theta;
	if (o->scaling)
		rope->scaling = o->spec.scaling;
}
