#include "config.h"

#include <fcntl.h>
#include <unistd.h>

#include "tests/testutil.h"

#include "data/checksum.h"

/* SipHash-2-4 against the reference vectors published with it (the
 * authors' vectors.h: key 00 01 ... 0f, message 00 01 ... of length i),
 * fed whole and in every split; the hex form; and a tensor's bytes read
 * from its file. */

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

/* A tensor's bytes are read from its file at its offset; a file shorter
 * than the tensor is an error naming it. */
static void test_tensor(void **state)
{
	(void)state;
	char path[] = "/tmp/ropefold-checksum-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unsigned char buf[100];
	for (int i = 0; i < 100; i++)
		buf[i] = (unsigned char)(i < 20 ? 0xee : i - 20);
	assert_int_equal(write(fd, buf, 100), 100);
	close(fd);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_vectors),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_tensor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
