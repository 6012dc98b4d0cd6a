#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/infile.h"
#include "data/jsonfile.h"
#include "data/path.h"
#include "data/vocab.h"

/* A vocabulary past this many tokens is refused as absurd (published
 * models stay under 300k). */
#define VOCAB_MAX ((size_t)1 << 24)

void vocab_free(Vocab *v)
{
	for (size_t i = 0; v->piece && i < v->n; i++)
		free(v->piece[i]);
	free(v->piece);
	memset(v, 0, sizeof *v);
}

static int vocab_alloc(Vocab *v, size_t n, char *err, size_t errlen)
{
	if (n > VOCAB_MAX || !(v->piece = calloc(n ? n : 1, sizeof *v->piece))) {
		snprintf(err, errlen, "%s: %zu tokens: too many or out of memory", v->source, n);
		return -1;
	}
	v->n = n;
	return 0;
}

static int set_piece(Vocab *v, size_t i, const char *s, size_t len, char *err, size_t errlen)
{
	char *p = malloc(len + 1);
	if (!p) {
		snprintf(err, errlen, "%s: out of memory", v->source);
		return -1;
	}
	memcpy(p, s, len);
	p[len] = '\0';
	free(v->piece[i]);
	v->piece[i] = p;
	return 0;
}

/* SentencePiece's U+2581 or GPT-2's U+0120 in any piece says the style. */
static void guess_style(Vocab *v)
{
	for (size_t i = 0; i < v->n; i++) {
		if (!v->piece[i])
			continue;
		if (strstr(v->piece[i], "\xc4\xa0")) {
			v->style = VOCAB_BYTE_BPE;
			return;
		}
		if (strstr(v->piece[i], "\xe2\x96\x81"))
			v->style = VOCAB_SPM;
	}
}

/* ---- llama2.c: int32 max length, then per token f32 score, int32 length, bytes */

static int load_llama2c(const char *file, Vocab *v, char *err, size_t errlen)
{
	char *text;
	size_t n;
	snprintf(v->source, sizeof v->source, "%s", file);
	if (infile_slurp(file, (size_t)256 << 20, &text, &n, err, errlen))
		return -1;
	size_t count = 0, pos = 4;
	int rc = -1;
	while (pos + 8 <= n) {
		int32_t len;
		memcpy(&len, text + pos + 4, 4);
		if (len < 0 || (size_t)len > n - pos - 8) {
			snprintf(err, errlen, "%s: offset %zu: token %zu has length %d past the end of "
				 "the file", file, pos + 4, count, (int)len);
			goto out;
		}
		pos += 8 + (size_t)len;
		count++;
	}
	if (pos != n || n < 4) {
		snprintf(err, errlen, "%s: offset %zu: not a llama2.c tokenizer (a partial entry at "
			 "the end)", file, pos);
		goto out;
	}
	if (vocab_alloc(v, count, err, errlen))
		goto out;
	pos = 4;
	for (size_t i = 0; i < count; i++) {
		int32_t len;
		memcpy(&len, text + pos + 4, 4);
		if (set_piece(v, i, text + pos + 8, (size_t)len, err, errlen))
			goto out;
		pos += 8 + (size_t)len;
	}
	v->style = VOCAB_RAW;
	rc = 0;
out:
	free(text);
	return rc;
}

/* ---- HF tokenizer.json: model.vocab {piece: id} and added_tokens ---------- */

static int load_tokenizer_json(const char *file, Vocab *v, char *err, size_t errlen)
{
	json_t *root;
	snprintf(v->source, sizeof v->source, "%s", file);
	if (jsonfile_load(file, (size_t)256 << 20, 0, &root, err, errlen))
		return -1;
	int rc = -1;
	json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
	json_t *added = json_object_get(root, "added_tokens");
	if (!json_is_object(vocab)) {
		snprintf(err, errlen, "%s: no model.vocab object", file);
		goto out;
	}
	size_t n = 0, idx;
	const char *key;
	json_t *val;
	json_object_foreach(vocab, key, val) {
		if (!json_is_integer(val) || json_integer_value(val) < 0 ||
		    (size_t)json_integer_value(val) >= VOCAB_MAX) {
			snprintf(err, errlen, "%s: model.vocab entry '%.40s' is not a token id", file, key);
			goto out;
		}
		if ((size_t)json_integer_value(val) + 1 > n)
			n = (size_t)json_integer_value(val) + 1;
	}
	json_array_foreach(added, idx, val) {
		json_t *id = json_object_get(val, "id");
		if (json_is_integer(id) && json_integer_value(id) >= 0 &&
		    (size_t)json_integer_value(id) < VOCAB_MAX && (size_t)json_integer_value(id) + 1 > n)
			n = (size_t)json_integer_value(id) + 1;
	}
	if (vocab_alloc(v, n, err, errlen))
		goto out;
	json_object_foreach(vocab, key, val)
		if (set_piece(v, (size_t)json_integer_value(val), key, strlen(key), err, errlen))
			goto out;
	json_array_foreach(added, idx, val) {
		json_t *id = json_object_get(val, "id"), *c = json_object_get(val, "content");
		if (json_is_integer(id) && json_integer_value(id) >= 0 &&
		    (size_t)json_integer_value(id) < n && json_is_string(c) &&
		    set_piece(v, (size_t)json_integer_value(id), json_string_value(c),
			      json_string_length(c), err, errlen))
			goto out;
	}
	guess_style(v);
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ---- GGUF: the tokenizer.ggml.tokens array of the metadata --------------- */

typedef struct {
	const unsigned char *p;
	size_t n, pos;
	bool bad;
} Scan;

static uint64_t scan_uint(Scan *s, size_t k)
{
	if (s->bad || k > s->n - s->pos) {
		s->bad = true;
		return 0;
	}
	uint64_t v = 0;
	for (size_t i = 0; i < k; i++)
		v |= (uint64_t)s->p[s->pos + i] << (8 * i);
	s->pos += k;
	return v;
}

/* A string's bytes (length first); NULL past the end. */
static const char *scan_str(Scan *s, size_t *len)
{
	uint64_t l = scan_uint(s, 8);
	if (s->bad || l > s->n - s->pos) {
		s->bad = true;
		return NULL;
	}
	const char *r = (const char *)s->p + s->pos;
	s->pos += (size_t)l;
	*len = (size_t)l;
	return r;
}

static const size_t gguf_size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static void scan_skip(Scan *s, unsigned t, int depth)
{
	size_t l;
	if (t > 12 || depth > 4) {
		s->bad = true;
	} else if (t == 8) {
		scan_str(s, &l);
	} else if (t == 9) {
		unsigned et = (unsigned)scan_uint(s, 4);
		uint64_t n = scan_uint(s, 8);
		if (et > 12 || n > s->n) {
			s->bad = true;
			return;
		}
		if (et != 8 && et != 9) {
			if (n * gguf_size[et] > s->n - s->pos)
				s->bad = true;
			else
				s->pos += (size_t)n * gguf_size[et];
			return;
		}
		for (uint64_t i = 0; i < n && !s->bad; i++)
			scan_skip(s, et, depth + 1);
	} else {
		scan_uint(s, gguf_size[t]);
	}
}

static int load_gguf(const char *file, Vocab *v, char *err, size_t errlen)
{
	InFile f;
	snprintf(v->source, sizeof v->source, "%s (tokenizer.ggml.tokens)", file);
	if (infile_open(&f, file, err, errlen))
		return -1;
	InHead h = {0};
	int rc = -1;
	/* The metadata precedes the tensor data; 64 MB holds any tokenizer. */
	size_t want = f.n < ((size_t)64 << 20) ? f.n : ((size_t)64 << 20);
	if (infile_head_need(&f, &h, want, err, errlen))
		goto out;
	/* magic and version (model.c has checked them), read through the
	 * bounds check: a file shorter than them is no vocabulary */
	Scan s = {h.p, want, 0, false};
	scan_uint(&s, 8);
	scan_uint(&s, 8);   /* tensor count */
	uint64_t nkv = scan_uint(&s, 8);
	for (uint64_t k = 0; k < nkv && !s.bad; k++) {
		size_t kl;
		const char *key = scan_str(&s, &kl);
		unsigned t = (unsigned)scan_uint(&s, 4);
		if (s.bad)
			break;
		bool tokens = kl == 21 && !memcmp(key, "tokenizer.ggml.tokens", 21) && t == 9;
		if (!tokens) {
			scan_skip(&s, t, 0);
			continue;
		}
		size_t at = s.pos;
		unsigned et = (unsigned)scan_uint(&s, 4);
		uint64_t n = scan_uint(&s, 8);
		if (s.bad || et != 8 || n > VOCAB_MAX || n > (want - s.pos) / 8) {
			snprintf(err, errlen, "%s: offset %zu: tokenizer.ggml.tokens is not an array of "
				 "strings", file, at);
			goto out;
		}
		if (vocab_alloc(v, (size_t)n, err, errlen))
			goto out;
		for (size_t i = 0; i < v->n; i++) {
			size_t l;
			const char *p = scan_str(&s, &l);
			if (!p) {
				snprintf(err, errlen, "%s: offset %zu: token %zu runs past the metadata",
					 file, s.pos, i);
				goto out;
			}
			if (set_piece(v, i, p, l, err, errlen))
				goto out;
		}
		guess_style(v);
		rc = 0;
		goto out;
	}
	rc = 0;   /* no tokens: no vocabulary */
out:
	if (rc)
		vocab_free(v);
	infile_head_free(&h);
	infile_close(&f);
	return rc;
}

static bool is_file(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int vocab_load(const char *path, ModelFormat format, Vocab *v, char *err, size_t errlen)
{
	memset(v, 0, sizeof *v);
	if (format == MODEL_FMT_GGUF)
		return load_gguf(path, v, err, errlen);
	char dir[4096], f[4200];
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(dir, sizeof dir, "%s", path);
	else
		path_dirname(path, dir, sizeof dir);
	if (format == MODEL_FMT_SAFETENSORS) {
		snprintf(f, sizeof f, "%s/tokenizer.json", dir);
		return is_file(f) ? load_tokenizer_json(f, v, err, errlen) : 0;
	}
	static const char *names[] = {"tok512.bin", "tokenizer.bin"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(f, sizeof f, "%s/%s", dir, names[i]);
		if (is_file(f))
			return load_llama2c(f, v, err, errlen);
	}
	return 0;
}

/* ---- decoding ----------------------------------------------------------------- */

static size_t put(char *buf, size_t at, size_t len, const char *s, size_t n)
{
	if (!len)
		return at;
	if (at + n >= len)
		n = at < len - 1 ? len - 1 - at : 0;
	memcpy(buf + at, s, n);
	buf[at + n] = '\0';
	return at + n;
}

/* GPT-2's bytes_to_unicode inverted: code point c stands for which byte. */
static int bpe_byte(unsigned c)
{
	if ((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))
		return (int)c;
	if (c < 256 || c >= 256 + 68)
		return -1;
	unsigned k = c - 256;   /* the k-th byte not mapped to itself */
	for (unsigned b = 0; b < 256; b++) {
		bool self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
		if (!self && k-- == 0)
			return (int)b;
	}
	return -1;
}

size_t vocab_decode(const Vocab *v, size_t prev, size_t id, char *buf, size_t at, size_t len)
{
	const char *p = id < v->n && v->piece[id] ? v->piece[id] : "";
	size_t n = strlen(p);
	unsigned b;
	if (n == 6 && !strncmp(p, "<0x", 3) && p[5] == '>' && sscanf(p + 3, "%2x", &b) == 1) {
		char c = (char)b;
		if (!((b >= 32 && b < 127) || strchr("\t\n\v\f\r", c) || b >= 128))
			return at;
		return put(buf, at, len, &c, 1);
	}
	if (v->style == VOCAB_RAW) {
		if (prev == 1 && p[0] == ' ')
			p++, n--;
		if (n == 1 && !((unsigned char)p[0] >= 32 && (unsigned char)p[0] < 127) &&
		    !strchr("\t\n\v\f\r", p[0]))
			return at;
		return put(buf, at, len, p, n);
	}
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)p[i];
		unsigned cp = c;
		size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		if (k > n - i)
			k = n - i;
		if (k == 2)
			cp = ((c & 0x1fu) << 6) | ((unsigned char)p[i + 1] & 0x3fu);
		else if (k == 3)
			cp = ((c & 0x0fu) << 12) | (((unsigned char)p[i + 1] & 0x3fu) << 6) |
			     ((unsigned char)p[i + 2] & 0x3fu);
		if (v->style == VOCAB_SPM && cp == 0x2581) {
			at = put(buf, at, len, " ", 1);
		} else if (v->style == VOCAB_BYTE_BPE && bpe_byte(cp) >= 0) {
			char ch = (char)bpe_byte(cp);
			at = put(buf, at, len, &ch, 1);
		} else {
			at = put(buf, at, len, p + i, k);
		}
		i += k;
	}
	return at;
}

/* The length of the valid UTF-8 sequence at p (n bytes left), 0 if none. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t k = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3
		 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (!k || k > n || (k == 2 && p[0] < 0xc2))
		return 0;
	for (size_t i = 1; i < k; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return k;
}

void vocab_printable(const char *text, size_t n, bool keep_newlines, char *buf, size_t len)
{
	size_t at = 0;
	if (len)
		buf[0] = '\0';
	const unsigned char *p = (const unsigned char *)text;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_len(p + i, n - i);
		bool ctl = k == 1 && (p[i] < 32 || p[i] == 127) && !(keep_newlines && p[i] == '\n');
		if (!k || ctl) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\x%02x", p[i]);
			at = put(buf, at, len, esc, 4);
			i++;
		} else {
			at = put(buf, at, len, text + i, k);
			i += k;
		}
	}
}

void vocab_token_text(const Vocab *v, size_t id, char *buf, size_t len)
{
	char raw[512];
	raw[0] = '\0';
	size_t n = vocab_decode(v, (size_t)-1, id, raw, 0, sizeof raw);
	if (!n && id < v->n && v->piece[id]) {   /* a byte shown as its piece */
		snprintf(raw, sizeof raw, "%s", v->piece[id]);
		n = strlen(raw);
	}
	vocab_printable(raw, n, false, buf, len);
}
