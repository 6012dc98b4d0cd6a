#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

#include "core/dtype.h"
#include "data/checksum.h"
#include "data/model.h"
#include "data/model_tensors.h"
#include "data/writer.h"
#include "tests/ckpt_fixtures.h"

/* The checkpoint writer on its own: replaced tensors stored in their new
 * dtype (bfloat16 by round-to-nearest-even on the float32 bits, the
 * definition PyTorch and ml_dtypes use; F64 laid out again in a GGUF),
 * the rounding and checksum it reports against the bytes it wrote, every
 * other byte copied, the sidecar text published beside OUT, and nothing
 * left behind by a writer that never commits or whose commit fails. */

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

/* bfloat16 of a float32 value: round to nearest even on its bits. */
static double bf16_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	u += 0x7fffu + ((u >> 16) & 1u);
	u &= 0xffff0000u;
	memcpy(&f, &u, 4);
	return f;
}

static size_t entries(const char *d)
{
	DIR *p = opendir(d);
	size_t n = 0;
	struct dirent *e;
	while (p && (e = readdir(p)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (p)
		closedir(p);
	return n;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static char buf[4096];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* W_q re-stored as BF16 and W_k as F64 in a GGUF: the file is laid out
 * again and reads back as written. */
static void test_round_trip(void **state)
{
	(void)state;
	char in[4300], out[4400], sc[4500], err[1024];
	fx_fold_gguf(dir, "rt.gguf", "F32", in, sizeof in);
	snprintf(out, sizeof out, "%s/rt-out.gguf", dir);
	Model *m = open_ok(in);
	const TensorRef *q = tensor(m, "blk.0.attn_q.weight"), *k = tensor(m, "blk.1.attn_k.weight");
	double *vq = values(q), *vk = values(k);
	double *ref = malloc(q->nelem * sizeof(double));
	double max_err = 0, max_abs = 0;
	for (size_t i = 0; i < q->nelem; i++) {
		vq[i] = (float)(vq[i] * 1.37);
		ref[i] = bf16_of((float)vq[i]);
		if (fabs(ref[i] - vq[i]) > max_err)
			max_err = fabs(ref[i] - vq[i]);
		if (fabs(vq[i]) > max_abs)
			max_abs = fabs(vq[i]);
	}
	for (size_t i = 0; i < k->nelem; i++)
		vk[i] = vk[i] / 3.0;   /* exact in F64 only */
	WriterOptions o = {false, true, NULL, NULL, NULL, NULL};
	Writer *w;
	WriterRounding rq, rk;
	if (writer_new(m, in, out, &o, &w, err, sizeof err) ||
	    writer_replace(w, q, STORE_BF16, err, sizeof err) ||
	    writer_replace(w, k, STORE_F64, err, sizeof err) || writer_start(w, err, sizeof err) ||
	    writer_put(w, k, vk, &rk, err, sizeof err) || writer_put(w, q, vq, &rq, err, sizeof err) ||
	    writer_commit(w, "{\"sidecar\": true}", err, sizeof err))
		fail_msg("%s", err);
	snprintf(sc, sizeof sc, "%s.fold.json", out);
	assert_string_equal(writer_sidecar_path(w), sc);
	writer_free(w);
	assert_close(rq.max_abs_err, max_err, 0);
	assert_close(rq.max_abs, max_abs, 0);
	assert_gt(max_err, 0);
	assert_close(rk.max_abs_err, 0, 0);
	assert_string_equal(read_all(sc), "{\"sidecar\": true}");

	Model *b = open_ok(out);
	const TensorRef *bq = tensor(b, "blk.0.attn_q.weight"), *bk = tensor(b, "blk.1.attn_k.weight");
	assert_int_equal(bq->dtype, STORE_BF16);
	assert_int_equal(bk->dtype, STORE_F64);
	double *gq = values(bq), *gk = values(bk);
	assert_le(tu_max_diff(gq, ref, q->nelem), 0);
	assert_le(tu_max_diff(gk, vk, k->nelem), 0);
	unsigned char *bytes = malloc(bq->nbytes);
	assert_int_equal(tensor_read_bytes(bq, bytes, err, sizeof err), 0);
	assert_true(checksum_bytes(bytes, bq->nbytes) == rq.checksum);
	free(bytes);
	/* every tensor not replaced: the same bytes */
	const TensorTable *ta = model_tensor_table(m);
	for (size_t i = 0; i < ta->n; i++) {
		const TensorRef *x = &ta->v[i], *y = tensor(b, x->name);
		if (x == q || x == k)
			continue;
		assert_int_equal(x->nbytes, y->nbytes);
		unsigned char *bx = malloc(x->nbytes), *by = malloc(y->nbytes);
		assert_int_equal(tensor_read_bytes(x, bx, err, sizeof err), 0);
		assert_int_equal(tensor_read_bytes(y, by, err, sizeof err), 0);
		assert_int_equal(memcmp(bx, by, x->nbytes), 0);
		free(bx);
		free(by);
	}
	free(gq);
	free(gk);
	free(vq);
	free(vk);
	free(ref);
	model_close(b);
	model_close(m);
}

/* A folder dir/name (into sub, 4200 bytes) holding an F32 HF fixture
 * (its path into in, 4300), opened; out (4400): sub/out, for the output. */
static Model *hf_in_folder(const char *name, char *sub, char *in, char *out)
{
	snprintf(sub, 4200, "%s/%s", dir, name);
	mkdir(sub, 0755);
	fx_fold_hf(sub, "hf", "F32", false, in, 4300);
	snprintf(out, 4400, "%s/out", sub);
	return open_ok(in);
}

/* The nearest value of p significant bits to x, ties to even, with
 * exponents below emin on emin's fixed quantum (IEEE 754's rounding to
 * a binary format: BF16 p = 8, F32 p = 24, both emin = -126). */
static double round_ref(double x, int p)
{
	if (x == 0)
		return x;
	int e = ilogb(x) < -126 ? -126 : ilogb(x);
	double q = ldexp(1.0, e - (p - 1));
	return nearbyint(x / q) * q;
}

/* Doubles that are no float stored as BF16 and F32: every value rounded
 * once, from the double (no double rounding through float), the
 * subnormals and signed zeros of the format kept, a carry into the
 * exponent taken; the rounding reported is the one the bytes hold. */
static void test_round_doubles(void **state)
{
	(void)state;
	const StoreDtype dts[] = {STORE_BF16, STORE_F32};
	const int prec[] = {8, 24};
	for (int k = 0; k < 2; k++) {
		char in[4300], out[4400], err[1024];
		fx_fold_gguf(dir, "rd.gguf", "F32", in, sizeof in);
		snprintf(out, sizeof out, "%s/rd-out-%d.gguf", dir, k);
		Model *m = open_ok(in);
		const TensorRef *q = tensor(m, "blk.0.attn_q.weight");
		double *v = values(q), *ref = malloc(q->nelem * sizeof(double));
		int p = prec[k];
		double max_err = 0, max_abs = 0, se = 0;
		uint64_t s = 0x243f6a8885a308d3ULL;
		for (size_t i = 0; i < q->nelem; i++) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			double mnt = 1.0 + (double)(s >> 11) * 0x1p-53;
			double x = ldexp((s & 1) ? -mnt : mnt, (int)(s >> 4) % 20 - 10);
			switch (i % 8) {
			case 1:   /* a tie of the format: half a last place */
				x = ldexp(1.0 + ldexp(2 * (double)(i % 5) + 1, -p), (int)(i % 7));
				break;
			case 2:   /* just above a tie: no double rounding */
				x = ldexp(1.0 + ldexp(1.0, -p) + 0x1p-50, 3);
				break;
			case 3:   /* rounds up into the next exponent */
				x = -(2.0 - ldexp(1.0, -p - 1) + 0x1p-45);
				break;
			case 4:   /* the format's subnormals, and below */
				x = ldexp(mnt, -126 - (int)(i % 30));
				break;
			case 5:
				x = (i & 8) ? -0.0 : 0.0;
				break;
			default:
				break;
			}
			v[i] = x;
			ref[i] = round_ref(x, p);
			double e = fabs(ref[i] - x);
			max_err = e > max_err ? e : max_err;
			max_abs = fabs(x) > max_abs ? fabs(x) : max_abs;
			se += e * e;
		}
		WriterOptions o = {false, true, NULL, NULL, NULL, NULL};
		Writer *w;
		WriterRounding r;
		if (writer_new(m, in, out, &o, &w, err, sizeof err) ||
		    writer_replace(w, q, dts[k], err, sizeof err) || writer_start(w, err, sizeof err) ||
		    writer_put(w, q, v, &r, err, sizeof err) ||
		    writer_commit(w, "{}", err, sizeof err))
			fail_msg("%s", err);
		writer_free(w);
		assert_true(r.max_abs_err == max_err);
		assert_true(r.max_abs == max_abs);
		assert_close(r.frob_err, sqrt(se), 1e-12);
		Model *b = open_ok(out);
		const TensorRef *bq = tensor(b, "blk.0.attn_q.weight");
		assert_int_equal(bq->dtype, dts[k]);
		double *g = values(bq);
		for (size_t i = 0; i < q->nelem; i++)
			if (!(g[i] == ref[i] && signbit(g[i]) == signbit(ref[i])))
				fail_msg("%s: value %zu: %a stored as %a, not %a",
					 dtype_name(dts[k]), i, v[i], g[i], ref[i]);
		free(g);
		free(v);
		free(ref);
		model_close(b);
		model_close(m);
	}
}

/* A write of a replaced tensor that fails (here: beyond the file size
 * limit, EFBIG) fails the commit with its line, which names the
 * temporary, even though writer_put handed the bytes to the writing
 * thread and returned; nothing is published and nothing left behind.
 * The tensor is the file's last, kept in its dtype, so the limit at its
 * offset lets the copy of every other byte through. */
static void test_write_fails(void **state)
{
	(void)state;
	char sub[4200], in[4300], out[4400], err[1024];
	Model *m = hf_in_folder("efbig", sub, in, out);
	const TensorTable *tt = model_tensor_table(m);
	const TensorRef *last = &tt->v[0];
	for (size_t i = 0; i < tt->n; i++)
		if (!strcmp(tt->v[i].file, last->file) && tt->v[i].offset > last->offset)
			last = &tt->v[i];
	double *v = values(last);
	WriterOptions opt = {false, true, NULL, NULL, NULL, NULL};
	Writer *w;
	if (writer_new(m, in, out, &opt, &w, err, sizeof err) ||
	    writer_replace(w, last, STORE_F32, err, sizeof err) || writer_start(w, err, sizeof err))
		fail_msg("%s", err);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = last->offset;
	void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int rc = writer_put(w, last, v, NULL, err, sizeof err);
	if (!rc)
		rc = writer_commit(w, "{}", err, sizeof err);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, was);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, strerror(EFBIG)));
	assert_non_null(strstr(err, sub));
	assert_non_null(strstr(err, "write at offset"));
	writer_free(w);
	assert_int_equal(entries(sub), 1);
	struct stat st;
	assert_int_not_equal(lstat(out, &st), 0);
	free(v);
	model_close(m);
}

static int refuse_publish(void *ctx, char *err, size_t errlen)
{
	(void)ctx;
	snprintf(err, errlen, "held back");
	return -1;
}

/* A writer freed before its commit, or whose commit fails before
 * publishing, leaves the folder as it was. */
static void test_nothing_left(void **state)
{
	(void)state;
	char sub[4200], in[4300], out[4400], err[1024];
	Model *m = hf_in_folder("left", sub, in, out);
	const TensorRef *o = tensor(m, "model.layers.0.self_attn.o_proj.weight");
	double *v = values(o);
	WriterOptions opt = {false, true, NULL, NULL, NULL, NULL};
	Writer *w;
	if (writer_new(m, in, out, &opt, &w, err, sizeof err) ||
	    writer_replace(w, o, STORE_F32, err, sizeof err) || writer_start(w, err, sizeof err) ||
	    writer_put(w, o, v, NULL, err, sizeof err))
		fail_msg("%s", err);
	assert_int_equal(entries(sub), 2);   /* hf/ and the temporary folder */
	writer_free(w);
	assert_int_equal(entries(sub), 1);
	opt.before_publish = refuse_publish;
	if (writer_new(m, in, out, &opt, &w, err, sizeof err) ||
	    writer_replace(w, o, STORE_F32, err, sizeof err) || writer_start(w, err, sizeof err) ||
	    writer_put(w, o, v, NULL, err, sizeof err))
		fail_msg("%s", err);
	assert_int_equal(writer_commit(w, "{}", err, sizeof err), -1);
	assert_string_equal(err, "held back");
	writer_free(w);
	assert_int_equal(entries(sub), 1);
	free(v);
	model_close(m);
}

/* What the writer refuses, each with its one line. */
static void test_refusals(void **state)
{
	(void)state;
	char in[4300], out[4400], err[1024];
	fx_fold_gguf(dir, "rf.gguf", "F32", in, sizeof in);
	snprintf(out, sizeof out, "%s/rf-out.gguf", dir);
	Model *m = open_ok(in);
	const TensorRef *q = tensor(m, "blk.0.attn_q.weight"), *k = tensor(m, "blk.0.attn_k.weight");
	WriterOptions o = {false, true, NULL, NULL, NULL, NULL};
	Writer *w;
	assert_int_equal(writer_new(m, in, out, &o, &w, err, sizeof err), 0);
	assert_int_equal(writer_replace(w, q, STORE_Q8_K, err, sizeof err), -1);
	assert_non_null(strstr(err, "cannot store dtype"));
	assert_non_null(strstr(err, "(F64, F32, F16, BF16)"));
	assert_int_equal(writer_replace(w, q, STORE_F32, err, sizeof err), 0);
	assert_int_equal(writer_start(w, err, sizeof err), 0);
	assert_int_equal(writer_replace(w, k, STORE_F32, err, sizeof err), -1);
	assert_int_equal(writer_start(w, err, sizeof err), -1);
	assert_non_null(strstr(err, "already started"));
	double *v = values(k);
	assert_int_equal(writer_put(w, k, v, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "not marked for replacement"));
	free(v);
	v = values(q);
	v[5] = 1e300;   /* beyond float32 */
	assert_int_equal(writer_put(w, q, v, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "overflows F32"));
	free(v);
	writer_free(w);
	assert_int_equal(access(out, F_OK), -1);
	model_close(m);
	/* llama2.c holds float32 only */
	int32_t hdr[7] = {32, 24, 1, 4, 2, 8, 4};
	FxBuf b = {0};
	fx_llama2c(&b, hdr);
	fx_write(dir, "l.bin", b.p, b.n);
	fx_free(&b);
	snprintf(in, sizeof in, "%s/l.bin", dir);
	snprintf(out, sizeof out, "%s/l-out.bin", dir);
	m = open_ok(in);
	LayerTensorRefs lt;
	assert_int_equal(model_layer_tensors(m, 0, &lt, err, sizeof err), 0);
	assert_int_equal(writer_new(m, in, out, &o, &w, err, sizeof err), 0);
	assert_int_equal(writer_replace(w, lt.t[ATT_Q], STORE_F64, err, sizeof err), -1);
	assert_non_null(strstr(err, "llama2.c files hold only F32"));
	writer_free(w);
	model_close(m);
}

/* writer_new on its own: OUT's sidecar path may not be a file the run
 * reads when a sidecar is written (an undo writes none, and may name its
 * own sidecar so), OUT may not reach an input through a symlink, and a
 * trailing slash on a single file's OUT is refused. */
static void test_writer_paths(void **state)
{
	(void)state;
	char in[4300], out[4400], sc[4500], link[4500], err[1024];
	fx_fold_gguf(dir, "w.gguf", "F32", in, sizeof in);
	Model *m = open_ok(in);
	Writer *w = NULL;
	snprintf(out, sizeof out, "%s/w-out.gguf", dir);
	snprintf(sc, sizeof sc, "%s.fold.json", out);
	fx_write(dir, "w-out.gguf.fold.json", "{}", 2);
	WriterOptions o = {true, true, sc, NULL, NULL, NULL};
	assert_int_equal(writer_new(m, in, out, &o, &w, err, sizeof err), -1);
	assert_null(w);
	assert_non_null(strstr(err, "sidecar's path"));
	o.sidecar = false;
	assert_int_equal(writer_new(m, in, out, &o, &w, err, sizeof err), 0);
	writer_free(w);
	snprintf(link, sizeof link, "%s/w-link.gguf", dir);
	assert_int_equal(symlink(in, link), 0);
	assert_int_equal(writer_new(m, in, link, &o, &w, err, sizeof err), -1);
	assert_non_null(strstr(err, "which this run reads"));
	snprintf(link, sizeof link, "%s/newdir/", dir);
	assert_int_equal(writer_new(m, in, link, &o, &w, err, sizeof err), -1);
	assert_non_null(strstr(err, "trailing slash"));
	/* Without force the hint given is the caller's. */
	o.force = false;
	o.replace_hint = "say please";
	fx_write(dir, "w-out.gguf", "x", 1);
	assert_int_equal(writer_new(m, in, out, &o, &w, err, sizeof err), -1);
	assert_non_null(strstr(err, "exists (say please)"));
	model_close(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_doubles),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_nothing_left),
		cmocka_unit_test(test_write_fails),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_writer_paths),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
