#include "config.h"

#include <unistd.h>

#include "data/npy.h"
#include "data/vocab.h"
#include "tests/testutil.h"

/* The .npy header as NumPy's format 1.0 defines it, and the data after. */
static void test_npy(void **state)
{
	(void)state;
	char path[] = "/tmp/ropefold-npy-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	float v[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
	char err[256];
	assert_int_equal(npy_write_f32(path, v, 2, 3, err, sizeof err), 0);
	FILE *f = fopen(path, "rb");
	unsigned char buf[256];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	unlink(path);
	assert_memory_equal(buf, "\x93NUMPY\x01\x00", 8);
	size_t hl = buf[8] | (size_t)buf[9] << 8;
	assert_int_equal((10 + hl) % 64, 0);
	assert_int_equal(n, 10 + hl + sizeof v);
	assert_int_equal(buf[10 + hl - 1], '\n');
	char *hdr = (char *)buf + 10;
	assert_non_null(strstr(hdr, "'descr': '<f4'"));
	assert_non_null(strstr(hdr, "'fortran_order': False"));
	assert_non_null(strstr(hdr, "'shape': (2, 3)"));
	float back[6];
	memcpy(back, buf + 10 + hl, sizeof back);   /* little-endian machines */
	assert_memory_equal(back, v, sizeof v);
}

static void test_npy_bad_path(void **state)
{
	(void)state;
	float v[1] = {0};
	char err[256];
	assert_int_equal(npy_write_f32("/nonexistent-dir/x.npy", v, 1, 1, err, sizeof err), -1);
	assert_non_null(strstr(err, "/nonexistent-dir/x.npy"));
}

static Vocab vocab_of(VocabStyle style, const char **pieces, size_t n)
{
	Vocab v;
	memset(&v, 0, sizeof v);
	v.n = n;
	v.style = style;
	v.piece = calloc(n, sizeof *v.piece);
	for (size_t i = 0; i < n; i++)
		v.piece[i] = strdup(pieces[i]);
	return v;
}

/* run.c's decode: the space after BOS dropped, <0xNN> as its byte, a lone
 * unprintable byte as nothing. */
/* A GGUF shorter than its magic and version: no vocabulary, no read past
 * the bytes (found by fuzz_vocab: the scan started at offset 8). */
static void test_gguf_short(void **state)
{
	(void)state;
	static const unsigned char bytes[7] = {0x08, 0xe2, 'a', '*', 0, 0, 's'};
	for (size_t n = 0; n <= sizeof bytes; n++) {
		char path[] = "/tmp/ropefold-vocab-XXXXXX";
		int fd = mkstemp(path);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, bytes, n), (ssize_t)n);
		close(fd);
		Vocab v;
		char err[256];
		err[0] = 0;
		int rc = vocab_load(path, MODEL_FMT_GGUF, &v, err, sizeof err);
		/* none, or refused in words; never a piece read from nowhere */
		assert_true(rc == 0 || (rc == -1 && err[0]));
		assert_int_equal(v.n, 0);
		vocab_free(&v);
		unlink(path);
	}
}

static void test_decode_llama2c(void **state)
{
	(void)state;
	const char *p[] = {"<unk>", "<s>", " Once", "<0x0A>", " upon", "<0x01>"};
	Vocab v = vocab_of(VOCAB_RAW, p, 6);
	char buf[64];
	size_t at = vocab_decode(&v, 1, 2, buf, 0, sizeof buf);
	at = vocab_decode(&v, 2, 4, buf, at, sizeof buf);
	at = vocab_decode(&v, 4, 3, buf, at, sizeof buf);
	at = vocab_decode(&v, 3, 5, buf, at, sizeof buf);
	assert_string_equal(buf, "Once upon\n");
	assert_int_equal(at, 10);
	vocab_free(&v);
}

/* SentencePiece's U+2581 and GPT-2's byte-level U+0120 (space), U+010A
 * (newline) become their bytes; text shown escapes control bytes. */
static void test_decode_styles(void **state)
{
	(void)state;
	const char *spm[] = {"\xe2\x96\x81hello", "\xe2\x96\x81world"};
	Vocab v = vocab_of(VOCAB_SPM, spm, 2);
	char buf[64];
	size_t at = vocab_decode(&v, 0, 0, buf, 0, sizeof buf);
	vocab_decode(&v, 0, 1, buf, at, sizeof buf);
	assert_string_equal(buf, " hello world");
	vocab_free(&v);
	const char *bpe[] = {"\xc4\xa0the", "\xc4\x8a"};
	v = vocab_of(VOCAB_BYTE_BPE, bpe, 2);
	at = vocab_decode(&v, 0, 0, buf, 0, sizeof buf);
	vocab_decode(&v, 0, 1, buf, at, sizeof buf);
	assert_string_equal(buf, " the\n");
	vocab_token_text(&v, 1, buf, sizeof buf);
	assert_string_equal(buf, "\\x0a");
	vocab_free(&v);
	vocab_printable("a\xff" "b\n", 4, true, buf, sizeof buf);
	assert_string_equal(buf, "a\\xffb\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_npy),            cmocka_unit_test(test_npy_bad_path),
		cmocka_unit_test(test_decode_llama2c), cmocka_unit_test(test_gguf_short), cmocka_unit_test(test_decode_styles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
