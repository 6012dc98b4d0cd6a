#include "config.h"

#include "tests/testutil.h"

#include "data/checksum.h"
#include "data/model.h"
#include "data/model_tensors.h"
#include "data/writer.h"
#include "tests/ckpt_fixtures.h"

/* What the writer adds for an untied head: a tensor the input does not
 * have (GGUF: a tensor info after the last, the count raised; safetensors:
 * a header entry), stored in parts in order (writer_put_part: the checksum
 * of all its bytes after the last part), and an aux file written from
 * text. The output reads back with every other tensor's bytes unchanged. */

static char *dir;

static int setup(void **state)
{
	(void)state;
	dir = fx_tmpdir();
	return dir ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	fx_rmtree(dir);
	free(dir);
	return 0;
}

static Model *open_ok(const char *path)
{
	Model *m;
	char err[512];
	if (model_open(path, &m, err, sizeof err))
		fail_msg("%s", err);
	return m;
}

static const TensorRef *tensor(const Model *m, const char *name)
{
	const TensorRef *t = tensor_table_find(model_tensor_table(m), name);
	if (!t)
		fail_msg("no tensor %s", name);
	return t;
}

static double *values(const TensorRef *t)
{
	char err[512];
	double *v = malloc(t->nelem * sizeof(double));
	assert_non_null(v);
	if (tensor_read(t, 0, t->nelem, v, err, sizeof err))
		fail_msg("%s", err);
	return v;
}

/* Every tensor of a also in b with the same bytes, but skip. */
static void same_bytes(const Model *a, const Model *b, const TensorRef *skip)
{
	char err[512];
	const TensorTable *ta = model_tensor_table(a);
	for (size_t i = 0; i < ta->n; i++) {
		const TensorRef *x = &ta->v[i], *y = tensor(b, x->name);
		if (x == skip)
			continue;
		assert_int_equal(x->nbytes, y->nbytes);
		unsigned char *bx = malloc(x->nbytes), *by = malloc(y->nbytes);
		assert_int_equal(tensor_read_bytes(x, bx, err, sizeof err), 0);
		assert_int_equal(tensor_read_bytes(y, by, err, sizeof err), 0);
		assert_int_equal(memcmp(bx, by, x->nbytes), 0);
		free(bx);
		free(by);
	}
}

/* GGUF: output.weight added as a copy of the embeddings times 2, in
 * three parts, W_q re-stored as F64 so that the file is laid out again. */
static void test_gguf_add_in_parts(void **state)
{
	(void)state;
	char in[4300], out[4400], err[1024];
	fx_fold_gguf(dir, "add.gguf", "F32", in, sizeof in);
	snprintf(out, sizeof out, "%s/add-out.gguf", dir);
	Model *m = open_ok(in);
	const TensorRef *e = tensor(m, "token_embd.weight"), *q = tensor(m, "blk.0.attn_q.weight");
	double *ve = values(e), *vq = values(q);
	for (size_t i = 0; i < e->nelem; i++)
		ve[i] *= 2;
	WriterOptions o = {false, true, NULL, NULL, NULL, NULL};
	Writer *w;
	const TensorRef *h;
	WriterRounding r[3], rq;
	size_t n = e->nelem, a = n / 3, b = 2 * n / 3;
	if (writer_new(m, in, out, &o, &w, err, sizeof err) ||
	    writer_add_tensor(w, e, "output.weight", STORE_F32, &h, err, sizeof err) ||
	    writer_replace(w, q, STORE_F64, err, sizeof err) || writer_start(w, err, sizeof err))
		fail_msg("%s", err);
	/* parts out of order are refused */
	assert_int_equal(writer_put_part(w, h, a, b - a, ve + a, &r[1], err, sizeof err), -1);
	if (writer_put_part(w, h, 0, a, ve, &r[0], err, sizeof err) ||
	    writer_put_part(w, h, a, b - a, ve + a, &r[1], err, sizeof err) ||
	    writer_put_part(w, h, b, n - b, ve + b, &r[2], err, sizeof err) ||
	    writer_put(w, q, vq, &rq, err, sizeof err) || writer_commit(w, "{}", err, sizeof err))
		fail_msg("%s", err);
	writer_free(w);
	assert_true(r[0].checksum == 0);
	Model *g = open_ok(out);
	const TensorRef *gh = tensor(g, "output.weight");
	assert_int_equal(gh->dtype, STORE_F32);
	assert_int_equal(gh->nelem, n);
	assert_int_equal(gh->shape[0], e->shape[0]);
	double *vh = values(gh);
	assert_le(tu_max_diff(vh, ve, n), 0);
	unsigned char *bytes = malloc(gh->nbytes);
	assert_int_equal(tensor_read_bytes(gh, bytes, err, sizeof err), 0);
	assert_true(checksum_bytes(bytes, gh->nbytes) == r[2].checksum);
	assert_int_equal(tensor(g, "blk.0.attn_q.weight")->dtype, STORE_F64);
	assert_int_equal(model_tensor_table(g)->n, model_tensor_table(m)->n + 1);
	same_bytes(m, g, q);
	free(bytes);
	free(vh);
	free(ve);
	free(vq);
	model_close(g);
	model_close(m);
}

/* An HF folder: lm_head.weight added in BF16 (shaped as a W_q: the
 * fixture has no embeddings), config.json written from text. */
static void test_hf_add_and_aux_text(void **state)
{
	(void)state;
	char in[4300], out[4400], err[1024], cfg[4500];
	fx_fold_hf(dir, "hf", "F32", false, in, sizeof in);
	snprintf(out, sizeof out, "%s/hf-out", dir);
	Model *m = open_ok(in);
	const TensorRef *e = tensor(m, "model.layers.0.self_attn.q_proj.weight");
	double *ve = values(e);
	WriterOptions o = {false, true, NULL, NULL, NULL, NULL};
	Writer *w;
	const TensorRef *h;
	const char *text = "{\"model_type\": \"llama\"}\n";
	if (writer_new(m, in, out, &o, &w, err, sizeof err))
		fail_msg("%s", err);
	assert_non_null(writer_aux_src(w, "config.json"));
	assert_null(writer_aux_src(w, "nothing.json"));
	if (writer_add_tensor(w, e, "lm_head.weight", STORE_BF16, &h, err, sizeof err) ||
	    writer_set_aux_text(w, "config.json", text, err, sizeof err) ||
	    writer_start(w, err, sizeof err) || writer_put(w, h, ve, NULL, err, sizeof err) ||
	    writer_commit(w, "{}", err, sizeof err))
		fail_msg("%s", err);
	writer_free(w);
	snprintf(cfg, sizeof cfg, "%s/config.json", out);
	FILE *f = fopen(cfg, "rb");
	assert_non_null(f);
	char got[256] = "";
	size_t k = fread(got, 1, sizeof got - 1, f);
	fclose(f);
	got[k] = '\0';
	assert_string_equal(got, text);
	/* the header names the new tensor, its dtype and shape */
	snprintf(cfg, sizeof cfg, "%s/model.safetensors", out);
	f = fopen(cfg, "rb");
	assert_non_null(f);
	static char head[65536];
	k = fread(head, 1, sizeof head - 1, f);
	fclose(f);
	head[k] = '\0';
	char want[128];
	snprintf(want, sizeof want, "\"lm_head.weight\":{\"dtype\":\"BF16\",\"shape\":[%zu,%zu]",
		 e->shape[0], e->shape[1]);
	assert_non_null(strstr(head + 8, want));
	model_close(m);
	free(ve);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gguf_add_in_parts),
		cmocka_unit_test(test_hf_add_and_aux_text),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
