#ifndef ROPEFOLD_DATA_VOCAB_H
#define ROPEFOLD_DATA_VOCAB_H

#include <stdbool.h>
#include <stddef.h>

#include "data/model.h"

/* The text of a checkpoint's tokens, where it carries them: a GGUF's
 * tokenizer.ggml.tokens, an HF folder's tokenizer.json vocabulary, or a
 * llama2.c tokenizer (tok512.bin, tokenizer.bin) beside the .bin. Only
 * for showing tokens and decoding a greedy continuation; ropefold never
 * tokenizes text. */

typedef enum {
	VOCAB_RAW = 0,      /* pieces are the bytes (llama2.c) */
	VOCAB_SPM,          /* SentencePiece: U+2581 is a space, <0xNN> a byte */
	VOCAB_BYTE_BPE      /* GPT-2 byte-level BPE: each code point one byte */
} VocabStyle;

typedef struct {
	size_t n;           /* pieces (ids 0 .. n-1; a missing id is "") */
	char **piece;       /* n NUL-terminated pieces as stored */
	VocabStyle style;
	char source[4200];  /* the file or key they came from */
} Vocab;

/* The vocabulary of the checkpoint opened from path (format: its format);
 * 0 with v->n == 0 when it carries none, -1 with err when one is there but
 * cannot be read. */
int vocab_load(const char *path, ModelFormat format, Vocab *v, char *err, size_t errlen);
/* Release. */
void vocab_free(Vocab *v);
/* The bytes token id stands for after token prev (llama2.c's run.c: the
 * space after BOS dropped, <0xNN> as its byte, a lone unprintable byte
 * as nothing), appended to buf (len bytes, kept NUL-terminated); returns
 * the new length. */
size_t vocab_decode(const Vocab *v, size_t prev, size_t id, char *buf, size_t at, size_t len);
/* The text of token id alone for showing (into buf, NUL-terminated):
 * decoded as above, then anything but printable UTF-8 (control bytes,
 * invalid sequences) written as \xNN; "" for an id past the vocabulary. */
void vocab_token_text(const Vocab *v, size_t id, char *buf, size_t len);
/* Text (n bytes) with everything but printable UTF-8 as \xNN (newline as
 * itself when keep_newlines), into buf. */
void vocab_printable(const char *text, size_t n, bool keep_newlines, char *buf, size_t len);

#endif
