#include "config.h"

#include <math.h>
#include <stdio.h>

#include "data/hfconfig_keys.h"

const char *hfkey_type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "real";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

/* The value of key: NULL with *rc ABSENT or NULL when there is none. */
static json_t *lookup(json_t *obj, const char *key, int *rc)
{
	json_t *j = json_object_get(obj, key);
	*rc = !j ? HFKEY_ABSENT : json_is_null(j) ? HFKEY_NULL : HFKEY_SET;
	return *rc == HFKEY_SET ? j : NULL;
}

static int bad_type(const HfKeys *k, const char *key, const json_t *j, const char *must)
{
	snprintf(k->err, k->errlen, "%s: %s%s: bad value of type %s (must be %s)", k->path,
		 k->prefix, key, hfkey_type_name(j), must);
	return -1;
}

/* A number against rule: NULL when it obeys, else what it must be. */
static const char *number_rule(double v, NumRule rule)
{
	if (!isfinite(v) || !(v > 0))
		return rule == NUM_FRACTION ? "in (0, 1]" : "a positive number";
	if (rule == NUM_FRACTION && v > 1)
		return "in (0, 1]";
	return NULL;
}

int hfkey_number(const HfKeys *k, json_t *obj, const char *key, NumRule rule, double *out)
{
	int rc;
	json_t *j = lookup(obj, key, &rc);
	if (!j)
		return rc;
	if (!json_is_number(j))
		return bad_type(k, key, j, "a number");
	double v = json_number_value(j);
	const char *must = number_rule(v, rule);
	if (must) {
		snprintf(k->err, k->errlen, "%s: %s%s: bad value %g (must be %s)", k->path, k->prefix,
			 key, v, must);
		return -1;
	}
	*out = v;
	return HFKEY_SET;
}

/* A whole number in [min, max] from j; what it must be otherwise. */
static bool whole_of(json_t *j, size_t min, size_t max, size_t *out)
{
	if (!json_is_integer(j))
		return false;
	json_int_t v = json_integer_value(j);
	if (v < 0 || (unsigned long long)v < min || (unsigned long long)v > max)
		return false;
	*out = (size_t)v;
	return true;
}

static int bad_whole(const HfKeys *k, const char *key, long idx, json_t *j, size_t min,
		     size_t max)
{
	char where[96] = "";
	if (idx >= 0)
		snprintf(where, sizeof where, "[%ld]", idx);
	if (!json_is_integer(j)) {
		snprintf(k->err, k->errlen, "%s: %s%s%s: bad value of type %s (must be a whole "
			 "number)", k->path, k->prefix, key, where, hfkey_type_name(j));
	} else if (max >= (size_t)1 << 40) {
		snprintf(k->err, k->errlen, "%s: %s%s%s: bad value %lld (must be a whole number of at "
			 "least %zu)", k->path, k->prefix, key, where,
			 (long long)json_integer_value(j), min);
	} else {
		snprintf(k->err, k->errlen, "%s: %s%s%s: bad value %lld (must be a whole number from "
			 "%zu to %zu)", k->path, k->prefix, key, where,
			 (long long)json_integer_value(j), min, max);
	}
	return -1;
}

int hfkey_whole(const HfKeys *k, json_t *obj, const char *key, size_t min, size_t max,
		size_t *out)
{
	int rc;
	json_t *j = lookup(obj, key, &rc);
	if (!j)
		return rc;
	if (!whole_of(j, min, max, out))
		return bad_whole(k, key, -1, j, min, max);
	return HFKEY_SET;
}

int hfkey_bool(const HfKeys *k, json_t *obj, const char *key, bool *out)
{
	int rc;
	json_t *j = lookup(obj, key, &rc);
	if (!j)
		return rc;
	if (!json_is_boolean(j))
		return bad_type(k, key, j, "true or false");
	*out = json_is_true(j);
	return HFKEY_SET;
}

/* The array of key, at most maxn entries; NULL with *rc when absent or
 * null or bad (-1, err filled). */
static json_t *array_of(const HfKeys *k, json_t *obj, const char *key, size_t maxn, int *rc)
{
	json_t *a = lookup(obj, key, rc);
	if (!a)
		return NULL;
	if (!json_is_array(a)) {
		*rc = bad_type(k, key, a, "an array");
		return NULL;
	}
	if (json_array_size(a) > maxn) {
		snprintf(k->err, k->errlen, "%s: %s%s: %zu entries, more than the %zu it can have",
			 k->path, k->prefix, key, json_array_size(a), maxn);
		*rc = -1;
		return NULL;
	}
	return a;
}

int hfkey_numbers(const HfKeys *k, json_t *obj, const char *key, size_t maxn, double *out,
		  size_t *n)
{
	int rc;
	json_t *a = array_of(k, obj, key, maxn, &rc);
	if (!a)
		return rc;
	size_t i;
	json_t *e;
	json_array_foreach(a, i, e) {
		double v = json_is_number(e) ? json_number_value(e) : NAN;
		if (!json_is_number(e) || number_rule(v, NUM_POSITIVE)) {
			if (json_is_number(e))
				snprintf(k->err, k->errlen, "%s: %s%s[%zu]: bad value %g (must be a "
					 "positive number)", k->path, k->prefix, key, i, v);
			else
				snprintf(k->err, k->errlen, "%s: %s%s[%zu]: bad value of type %s "
					 "(must be a number)", k->path, k->prefix, key, i,
					 hfkey_type_name(e));
			return -1;
		}
		out[i] = v;
	}
	*n = json_array_size(a);
	return HFKEY_SET;
}

int hfkey_wholes(const HfKeys *k, json_t *obj, const char *key, size_t maxn, size_t min,
		 size_t max, size_t *out, size_t *n)
{
	int rc;
	json_t *a = array_of(k, obj, key, maxn, &rc);
	if (!a)
		return rc;
	size_t i;
	json_t *e;
	json_array_foreach(a, i, e)
		if (!whole_of(e, min, max, &out[i]))
			return bad_whole(k, key, (long)i, e, min, max);
	*n = json_array_size(a);
	return HFKEY_SET;
}
