#include "config.h"

#include "tests/testutil.h"

#include "data/model.h"
#include "tests/ckpt_fixtures.h"

/* llama2.c legacy .bin: the 7-int32 header, the weight order, the shared
 * classifier flag, interleaved RoPE, bad headers. */

static const int32_t HDR[7] = {16, 24, 2, 4, 2, 10, 6};

static Model *open_buf(const FxBuf *b)
{
	Model *m = NULL;
	char err[512] = "";
	if (model_open_memory(b->p, b->n, NULL, "t.bin", &m, err, sizeof err))
		fail_msg("model_open_memory: %s", err);
	return m;
}

static void fails(const int32_t h[7], long trim, const char *want)
{
	FxBuf b = {0};
	int32_t hh[7];
	memcpy(hh, h, sizeof hh);
	/* Write a body sized for a valid header so only the header is wrong. */
	fx_llama2c(&b, HDR);
	for (int i = 0; i < 7; i++) {
		uint32_t u = (uint32_t)hh[i];
		unsigned char c[4] = {(unsigned char)u, (unsigned char)(u >> 8),
				      (unsigned char)(u >> 16), (unsigned char)(u >> 24)};
		memcpy(b.p + 4 * i, c, 4);
	}
	if (trim > 0)
		b.n -= (size_t)trim;
	else
		for (long i = 0; i < -trim; i++)
			fx_put(&b, "\0", 1);
	Model *m = NULL;
	char err[512] = "";
	if (model_open_memory(b.p, b.n, NULL, "t.bin", &m, err, sizeof err) == 0) {
		model_close(m);
		fail_msg("accepted a bad llama2.c file (wanted '%s')", want);
	}
	if (!strstr(err, want))
		fail_msg("error '%s' does not mention '%s'", err, want);
	fx_free(&b);
}

static void test_tied(void **state)
{
	(void)state;
	FxBuf b = {0};
	fx_llama2c(&b, HDR);
	Model *m = open_buf(&b);
	const ModelInfo *in = model_info(m);
	assert_int_equal(in->format, MODEL_FMT_LLAMA2C);
	assert_int_equal(in->rope.layout, ROPE_INTERLEAVED);
	assert_close(in->rope.theta, 10000, 0);
	assert_int_equal(in->n_layers, 2);
	assert_int_equal(in->shape.n_heads, 4);
	assert_int_equal(in->shape.n_kv_heads, 2);
	assert_int_equal(in->shape.head_dim, 4);
	assert_int_equal(in->vocab, 10);
	size_t dim = 16, L = 2, kv = 8, V = 10;
	Layer l;
	char err[256];
	assert_int_equal(model_load_layer(m, 1, &l, err, sizeof err), 0);
	/* Float indices of layer 1's tensors in the legacy order. */
	size_t att = V * dim, wq = att + L * dim, wk = wq + L * dim * dim;
	size_t wv = wk + L * kv * dim, wo = wv + L * kv * dim;
	assert_close(l.attn_norm[3], fx_l2c_value(att + dim + 3), 0);
	assert_close(l.wq[5], fx_l2c_value(wq + dim * dim + 5), 0);
	assert_close(l.wk[kv * dim - 1], fx_l2c_value(wk + kv * dim + kv * dim - 1), 0);
	assert_close(l.wv[0], fx_l2c_value(wv + kv * dim), 0);
	assert_close(l.wo[17], fx_l2c_value(wo + dim * dim + 17), 0);
	assert_close(l.norm_eps, 1e-5, 0);
	layer_free(&l);
	size_t tok = 9;
	double e[16];
	assert_int_equal(model_load_embeddings(m, &tok, 1, e, err, sizeof err), 0);
	assert_close(e[2], fx_l2c_value(9 * dim + 2), 0);
	model_close(m);
	fx_free(&b);
}

static void test_untied(void **state)
{
	(void)state;
	int32_t h[7];
	memcpy(h, HDR, sizeof h);
	h[5] = -10;
	FxBuf b = {0};
	fx_llama2c(&b, h);
	Model *m = open_buf(&b);
	assert_int_equal(model_info(m)->vocab, 10);
	model_close(m);
	/* The untied file read as tied has trailing bytes. */
	b.p[20] = 10;
	b.p[21] = b.p[22] = b.p[23] = 0;
	Model *m2 = NULL;
	char err[256];
	assert_int_not_equal(model_open_memory(b.p, b.n, NULL, "t.bin", &m2, err, sizeof err), 0);
	assert_non_null(strstr(err, "bytes after the last tensor"));
	fx_free(&b);
}

static void test_bad_headers(void **state)
{
	(void)state;
	int32_t h[7];
	memcpy(h, HDR, sizeof h);
	h[0] = 0;
	fails(h, 0, "offset 0: llama2.c header dim = 0");
	memcpy(h, HDR, sizeof h);
	h[3] = -4;
	fails(h, 0, "n_heads = -4");
	memcpy(h, HDR, sizeof h);
	h[3] = 3;
	fails(h, 0, "must divide dim");
	memcpy(h, HDR, sizeof h);
	h[4] = 3;
	fails(h, 0, "divisible by n_kv_heads");
	memcpy(h, HDR, sizeof h);
	h[6] = 0;
	fails(h, 0, "seq_len = 0");
	memcpy(h, HDR, sizeof h);
	h[1] = 1 << 23;
	fails(h, 0, "run past the end");
	fails(HDR, 4, "freq_cis_imag");      /* truncated by one float */
	fails(HDR, -4, "4 bytes after the last tensor");
	Model *m = NULL;
	char err[256];
	assert_int_not_equal(model_open_memory("\1\0\0\0\2\0", 6, NULL, "t.bin", &m, err, sizeof err), 0);
	assert_non_null(strstr(err, "too short"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tied),
		cmocka_unit_test(test_untied),
		cmocka_unit_test(test_bad_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
