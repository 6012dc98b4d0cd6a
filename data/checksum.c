#include "config.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/checksum.h"

#define READ_CHUNK ((size_t)1 << 20)

/* The key 00 01 ... 0f as two little-endian words. */
static const uint64_t KEY0 = 0x0706050403020100ull, KEY1 = 0x0f0e0d0c0b0a0908ull;

static uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

/* Always inlined: called on a local state, the compiler keeps the four
 * words in registers (through a Checksum's own v each round went to
 * memory and back: 1.1 GB/s against 1.7, and the hash is both sides of
 * a fold's checksums). */
static inline __attribute__((always_inline)) void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13) ^ v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17) ^ v[2];
	v[2] = rotl(v[2], 32);
}

/* One 8-byte message word through the two compression rounds. */
static inline __attribute__((always_inline)) void sip_word(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
}

void checksum_init(Checksum *c)
{
	c->v[0] = KEY0 ^ 0x736f6d6570736575ull;
	c->v[1] = KEY1 ^ 0x646f72616e646f6dull;
	c->v[2] = KEY0 ^ 0x6c7967656e657261ull;
	c->v[3] = KEY1 ^ 0x7465646279746573ull;
	c->tail = 0;
	c->total = 0;
}

/* One byte into the pending word, which is compressed once full. */
static void feed_byte(Checksum *c, unsigned char b)
{
	c->tail |= (uint64_t)b << (8 * (c->total % 8));
	if (++c->total % 8 == 0) {
		sip_word(c->v, c->tail);
		c->tail = 0;
	}
}

void checksum_update(Checksum *c, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n && c->total % 8) {
		feed_byte(c, *b++);
		n--;
	}
	uint64_t v[4] = {c->v[0], c->v[1], c->v[2], c->v[3]};
	for (; n >= 8; b += 8, n -= 8) {
		uint64_t m;
		memcpy(&m, b, 8);
		sip_word(v, le64toh(m));
		c->total += 8;
	}
	memcpy(c->v, v, sizeof v);
	while (n--)
		feed_byte(c, *b++);
}

uint64_t checksum_final(Checksum *c)
{
	/* the last word: the remaining bytes and the length mod 256 on top */
	sip_word(c->v, c->tail | ((uint64_t)(c->total & 0xff) << 56));
	c->v[2] ^= 0xff;
	for (int i = 0; i < 4; i++)
		sip_round(c->v);
	return c->v[0] ^ c->v[1] ^ c->v[2] ^ c->v[3];
}

uint64_t checksum_bytes(const void *p, size_t n)
{
	Checksum c;
	checksum_init(&c);
	checksum_update(&c, p, n);
	return checksum_final(&c);
}

int checksum_tensor(const TensorRef *t, uint64_t *out, char *err, size_t errlen)
{
	int fd = open(t->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", t->file, strerror(errno));
		return -1;
	}
	unsigned char *buf = malloc(READ_CHUNK);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "%s: out of memory", t->file);
		return -1;
	}
	Checksum c;
	checksum_init(&c);
	size_t done = 0;
	int rc = 0;
	while (done < t->nbytes) {
		size_t want = t->nbytes - done < READ_CHUNK ? t->nbytes - done : READ_CHUNK;
		ssize_t k = pread(fd, buf, want, (off_t)(t->offset + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			snprintf(err, errlen, "%s: tensor %s: read at offset %zu: %s", t->file,
				 t->name, t->offset + done,
				 k < 0 ? strerror(errno) : "the file is shorter than its header says");
			rc = -1;
			break;
		}
		checksum_update(&c, buf, (size_t)k);
		done += (size_t)k;
	}
	free(buf);
	close(fd);
	if (!rc)
		*out = checksum_final(&c);
	return rc;
}

void checksum_format(uint64_t h, char buf[17])
{
	snprintf(buf, 17, "%016llx", (unsigned long long)h);
}

int checksum_parse(const char *s, uint64_t *out)
{
	uint64_t h = 0;
	for (int i = 0; i < 16; i++) {
		char ch = s[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
		if (d < 0)
			return -1;
		h = h << 4 | (uint64_t)d;
	}
	if (s[16])
		return -1;
	*out = h;
	return 0;
}
