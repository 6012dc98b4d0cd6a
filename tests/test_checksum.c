#include "config.h"

#include <fcntl.h>
#include <unistd.h>

#include "tests/testutil.h"

#include "data/checksum.h"
#include "data/checksum_ahead.h"

/* SipHash-2-4 against the reference vectors published with it (the
 * authors' vectors.h: key 00 01 ... 0f, message 00 01 ... of length i),
 * fed whole and in every split; the hex form; a tensor's bytes read
 * from its file; and the same checksums computed ahead on a thread. */

static const struct {
	size_t len;
	uint64_t want;
} vectors[] = {
	{0, 0x726fdb47dd0e0e31ull},  {1, 0x74f839c593dc67fdull},
	{7, 0xab0200f58b01d137ull},  {8, 0x93f5f5799a932462ull},
	{9, 0x9e0082df0ba9e4b0ull},  {15, 0xa129ca6149be45e5ull},
	{16, 0x3f2acc7f57c29bdbull}, {31, 0x32d892fad841c342ull},
	{63, 0x958a324ceb064572ull},
};

static void test_reference_vectors(void **state)
{
	(void)state;
	unsigned char msg[64];
	for (int i = 0; i < 64; i++)
		msg[i] = (unsigned char)i;
	for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
		size_t n = vectors[v].len;
		if (checksum_bytes(msg, n) != vectors[v].want)
			fail_msg("length %zu: %016llx, want %016llx", n,
				 (unsigned long long)checksum_bytes(msg, n),
				 (unsigned long long)vectors[v].want);
		/* fed in two and three pieces, at every split */
		for (size_t a = 0; a <= n; a++) {
			for (size_t b = a; b <= n; b++) {
				Checksum c;
				checksum_init(&c);
				checksum_update(&c, msg, a);
				checksum_update(&c, msg + a, b - a);
				checksum_update(&c, msg + b, n - b);
				if (checksum_final(&c) != vectors[v].want)
					fail_msg("length %zu split at %zu, %zu", n, a, b);
			}
		}
	}
}

static void test_hex(void **state)
{
	(void)state;
	char buf[17];
	uint64_t h;
	checksum_format(0xa129ca6149be45e5ull, buf);
	assert_string_equal(buf, "a129ca6149be45e5");
	assert_int_equal(checksum_parse(buf, &h), 0);
	assert_true(h == 0xa129ca6149be45e5ull);
	checksum_format(1, buf);
	assert_string_equal(buf, "0000000000000001");
	const char *bad[] = {"", "a129ca6149be45e", "a129ca6149be45e5f", "A129CA6149BE45E5",
			     "a129ca6149be45eg", "0x29ca6149be45e5"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(checksum_parse(bad[i], &h), -1);
}

/* A file (path: a mkstemp template) of 20 bytes 0xee, then the reference
 * message 00 01 ... 4f. */
static void write_message_file(char *path)
{
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unsigned char buf[100];
	for (int i = 0; i < 100; i++)
		buf[i] = (unsigned char)(i < 20 ? 0xee : i - 20);
	assert_int_equal(write(fd, buf, 100), 100);
	close(fd);
}

/* A tensor's bytes are read from its file at its offset; a file shorter
 * than the tensor is an error naming it. */
static void test_tensor(void **state)
{
	(void)state;
	char path[] = "/tmp/ropefold-checksum-XXXXXX";
	write_message_file(path);
	TensorRef t;
	memset(&t, 0, sizeof t);
	t.name = (char *)"w";
	t.file = path;
	t.offset = 20;
	t.nbytes = 63;
	char err[256];
	uint64_t h = 0;
	assert_int_equal(checksum_tensor(&t, &h, err, sizeof err), 0);
	assert_true(h == 0x958a324ceb064572ull);
	t.nbytes = 81;
	assert_int_equal(checksum_tensor(&t, &h, err, sizeof err), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "shorter"));
	unlink(path);
	assert_int_equal(checksum_tensor(&t, &h, err, sizeof err), -1);
	assert_non_null(strstr(err, "No such file"));
}

/* Checksums computed ahead on their own thread are those of the
 * reference vectors, asked for in order, out of order, twice, or not
 * listed at all; a tensor that cannot be read is an error naming its
 * file, and the rest still arrive. A helper stopped before anything was
 * asked for, and none at all, are fine. */
static void test_ahead(void **state)
{
	(void)state;
	char path[] = "/tmp/ropefold-ahead-XXXXXX";
	write_message_file(path);
	enum { NV = sizeof vectors / sizeof vectors[0] };
	TensorRef t[NV + 2];
	const TensorRef *list[NV + 1];
	memset(t, 0, sizeof t);
	for (size_t i = 0; i < NV + 2; i++) {
		t[i].name = (char *)"w";
		t[i].file = path;
		t[i].offset = 20;
		t[i].nbytes = i < NV ? vectors[i].len : i == NV ? 81 : 63;
	}
	/* the unreadable one (81 bytes from 20) in the middle of the list */
	size_t n = 0;
	for (size_t i = 0; i < NV; i++) {
		if (i == NV / 2)
			list[n++] = &t[NV];
		list[n++] = &t[i];
	}
	char err[256];
	uint64_t h;
	for (int round = 0; round < 2; round++) {
		ChecksumAhead *c = round ? checksum_ahead_start(list, n) : NULL;
		assert_true(!round || c);
		/* the last first, then in order with the first asked twice */
		assert_int_equal(checksum_ahead_get(c, &t[NV - 1], &h, err, sizeof err), 0);
		assert_true(h == vectors[NV - 1].want);
		for (size_t i = 0; i < NV; i++) {
			assert_int_equal(checksum_ahead_get(c, &t[i], &h, err, sizeof err), 0);
			assert_true(h == vectors[i].want);
		}
		assert_int_equal(checksum_ahead_get(c, &t[0], &h, err, sizeof err), 0);
		assert_true(h == vectors[0].want);
		/* not listed: computed when asked */
		assert_int_equal(checksum_ahead_get(c, &t[NV + 1], &h, err, sizeof err), 0);
		assert_true(h == 0x958a324ceb064572ull);
		err[0] = 0;
		assert_int_equal(checksum_ahead_get(c, &t[NV], &h, err, sizeof err), -1);
		assert_non_null(strstr(err, path));
		assert_non_null(strstr(err, "shorter"));
		checksum_ahead_free(c);
	}
	checksum_ahead_free(checksum_ahead_start(list, n));
	checksum_ahead_free(NULL);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_vectors),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_tensor),
		cmocka_unit_test(test_ahead),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
