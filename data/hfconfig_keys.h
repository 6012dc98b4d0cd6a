#ifndef ROPEFOLD_DATA_HFCONFIG_KEYS_H
#define ROPEFOLD_DATA_HFCONFIG_KEYS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Typed reading of config.json keys for hfconfig.c and hfconfig_layers.c.
 * Every reader returns HFKEY_ABSENT (out untouched), HFKEY_NULL (out
 * untouched: HF writes null for "none"), HFKEY_SET, or -1 with one line
 * "PATH: PREFIXKEY: bad value ... (must be ...)" in err: a present key is
 * never silently replaced by its default. */
typedef struct {
	const char *path;     /* the file named in messages */
	const char *prefix;   /* "" or "rope_scaling." */
	char *err;
	size_t errlen;
} HfKeys;

enum { HFKEY_ABSENT = 0, HFKEY_NULL = 1, HFKEY_SET = 2 };

/* What a number must hold when present. */
typedef enum {
	NUM_POSITIVE,     /* > 0: bases, epsilons, factors, lengths */
	NUM_FRACTION      /* in (0, 1]: partial rotary */
} NumRule;

/* "object", "array", "string", ... for messages. */
const char *hfkey_type_name(const json_t *j);

/* A finite number obeying rule. */
int hfkey_number(const HfKeys *k, json_t *obj, const char *key, NumRule rule, double *out);
/* A whole number in [min, max]. */
int hfkey_whole(const HfKeys *k, json_t *obj, const char *key, size_t min, size_t max,
		size_t *out);
/* true or false. */
int hfkey_bool(const HfKeys *k, json_t *obj, const char *key, bool *out);
/* An array of at most maxn positive finite numbers into out; *n its length. */
int hfkey_numbers(const HfKeys *k, json_t *obj, const char *key, size_t maxn, double *out,
		  size_t *n);
/* An array of at most maxn whole numbers in [min, max] into out; *n its
 * length. */
int hfkey_wholes(const HfKeys *k, json_t *obj, const char *key, size_t maxn, size_t min,
		 size_t max, size_t *out, size_t *n);

#endif
