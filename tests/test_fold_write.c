#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

#include "core/dtype.h"
#include "core/verify.h"
#include "data/default_model.h"
#include "data/model.h"
#include "data/model_tensors.h"
#include "data/writer.h"
#include "tests/ckpt_fixtures.h"
#include "tui/cli/check.h"
#include "tui/cli/fold.h"
#include "tui/cli/info.h"
#include "tui/cli/verify.h"
#include "tui/explorer/fold_actions.h"
#include "tui/shared/findings_text.h"

/* ropefold fold on checkpoints of every format written here from seeded
 * layers: the fold verifies as a commuting fold of its input, every byte
 * outside the rewritten tensors is unchanged, --undo restores the input
 * (bit for bit when the fold was stored wider than the original), the
 * fused layouts are written back through the inverse of the reader's
 * split, and the path rules hold (exit 2, nothing left behind). */

#define NL FX_FOLD_LAYERS

/* snprintf into an array, failing the test when the path does not fit. */
#define PJ(buf, ...)                                                         \
	do {                                                                 \
		if (snprintf(buf, sizeof buf, __VA_ARGS__) >= (int)sizeof buf) \
			fail_msg("path too long");                           \
	} while (0)

typedef struct {
	char *dir;
	char in[4300], out[4300], undo[4300];
} Fx;

/* The words of a verdict, for failure messages. */
static const char *why_text(const VerifyVerdict *v)
{
	static char buf[FINDINGS_WHY_MAX];
	findings_verify_why(v, buf, sizeof buf);
	return buf;
}

static const char *relation_text(const VerifyVerdict *v)
{
	static char buf[FINDINGS_RELATION_MAX];
	findings_verify_relation(v, buf, sizeof buf);
	return buf;
}

static int setup(void **state)
{
	Fx *f = calloc(1, sizeof *f);
	f->dir = fx_tmpdir();
	if (!f->dir)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	Fx *f = *state;
	fx_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Run a mode (fold, info, verify, ...) with stdout sent to capture;
 * returns the exit status. */
static int run_v(int (*mode)(int, char **), const char *capture, const char *a0, va_list ap)
{
	char *argv[32];
	int argc = 0;
	for (const char *a = a0; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	argv[argc] = NULL;
	fflush(stdout);
	int saved = dup(1), out = open(capture, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(out >= 0);
	dup2(out, 1);
	close(out);
	int rc = mode(argc, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	return rc;
}

/* Run ropefold fold with stdout silenced; returns the exit status. */
static int run_fold(const char *a0, ...)
{
	va_list ap;
	va_start(ap, a0);
	int rc = run_v(cli_fold, "/dev/null", a0, ap);
	va_end(ap);
	return rc;
}

/* Run a mode with its stdout in the file capture. */
static int run_mode(int (*mode)(int, char **), const char *capture, const char *a0, ...)
{
	va_list ap;
	va_start(ap, a0);
	int rc = run_v(mode, capture, a0, ap);
	va_end(ap);
	return rc;
}

static int check_mode(int argc, char **argv)
{
	return cli_check(argc, argv, false);
}

/* The file holds the text s. */
static bool file_has(const char *path, const char *s)
{
	FILE *f = fopen(path, "rb");
	static char buf[1 << 16];
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	return strstr(buf, s) != NULL;
}

static Model *open_ok(const char *path)
{
	Model *m;
	char err[512];
	if (model_open(path, &m, err, sizeof err))
		fail_msg("%s", err);
	return m;
}

/* Every layer of b against a: the relation verify names. */
static void assert_relation(const char *pa, const char *pb, VerifyRelation want_rel,
			    size_t only_layer)
{
	Model *ma = open_ok(pa), *mb = open_ok(pb);
	double ua = dtype_unit_roundoff(model_info(ma)->dtype);
	double ub = dtype_unit_roundoff(model_info(mb)->dtype);
	VerifyOptions vo = {ua > ub ? ua : ub, 0};
	char err[512];
	for (size_t i = 0; i < model_info(ma)->n_layers; i++) {
		Layer a, b;
		if (model_load_layer(ma, i, &a, err, sizeof err) ||
		    model_load_layer(mb, i, &b, err, sizeof err))
			fail_msg("%s", err);
		VerifyVerdict v;
		assert_int_equal(verify_layers(&a, &b, &vo, &v), RF_OK);
		if (!v.equivalent)
			fail_msg("%s layer %zu: not equivalent: %s", pb, i, why_text(&v));
		VerifyRelation want = only_layer == SIZE_MAX || only_layer == i
					      ? want_rel : VERIFY_REL_IDENTICAL;
		if (v.relation != want)
			fail_msg("%s layer %zu: relation %s, expected %s (%s)", pb, i,
				 verify_relation_name(v.relation), verify_relation_name(want),
				 relation_text(&v));
		verify_verdict_free(&v);
		layer_free(&a);
		layer_free(&b);
	}
	model_close(ma);
	model_close(mb);
}

/* Tensors other than the rewritten ones hold the same values. */
static void assert_others_equal(const char *pa, const char *pb)
{
	Model *ma = open_ok(pa), *mb = open_ok(pb);
	const TensorTable *ta = model_tensor_table(ma), *tb = model_tensor_table(mb);
	size_t kept = 0;
	assert_int_equal(ta->n, tb->n);
	for (size_t i = 0; i < ta->n; i++) {
		const TensorRef *x = &ta->v[i], *y = tensor_table_find(tb, x->name);
		assert_non_null(y);
		bool attn = strstr(x->name, "attn_q") || strstr(x->name, "attn_k.") ||
			    strstr(x->name, "attn_v") || strstr(x->name, "attn_output.weight") ||
			    strstr(x->name, "q_proj") || strstr(x->name, "k_proj") ||
			    strstr(x->name, "v_proj") || strstr(x->name, "o_proj.weight") ||
			    strstr(x->name, "qkv") || strstr(x->name, "query_key_value") ||
			    strstr(x->name, "dense.weight") || strstr(x->name, ".wq.") ||
			    strstr(x->name, ".wk.") || strstr(x->name, ".wv.") ||
			    strstr(x->name, ".wo.");
		if (attn)
			continue;
		assert_int_equal(x->nbytes, y->nbytes);
		unsigned char *bx = malloc(x->nbytes), *by = malloc(y->nbytes);
		char err[512];
		assert_true(bx && by);
		if (tensor_read_bytes(x, bx, err, sizeof err) || tensor_read_bytes(y, by, err, sizeof err))
			fail_msg("%s", err);
		if (memcmp(bx, by, x->nbytes))
			fail_msg("%s: tensor %s changed", pb, x->name);
		free(bx);
		free(by);
		kept++;
	}
	assert_true(kept > 0);
	model_close(ma);
	model_close(mb);
}

static bool same_bytes(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool eq = fa && fb;
	while (eq) {
		int x = getc(fa), y = getc(fb);
		eq = x == y;
		if (x == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return eq;
}

/* Entries of the folder (dot files too), for "nothing left behind". */
static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	return n;
}

static bool exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* ---- fixtures ----------------------------------------------------------- */

static const LayerShape shape = {32, 4, 2, 8};

static void make_layers(Layer *l, bool bias, bool bf16)
{
	fx_fold_layers(l, bias, bf16);
}

static void free_layers(Layer *l)
{
	for (size_t i = 0; i < NL; i++)
		layer_free(&l[i]);
}

static void write_gguf(Fx *f, const char *name, const char *dtype)
{
	fx_fold_gguf(f->dir, name, dtype, f->in, sizeof f->in);
}

static void write_hf(Fx *f, const char *sub, const char *dtype, bool bias)
{
	fx_fold_hf(f->dir, sub, dtype, bias, f->in, sizeof f->in);
}

/* ---- tests ---------------------------------------------------------------- */

/* GGUF F32: fold, verify, untouched tensors, undo through --dtype f64. */
static void test_gguf(void **state)
{
	Fx *f = *state;
	write_gguf(f, "m.gguf", "F32");
	PJ(f->out, "%s/folded.gguf", f->dir);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, NULL), 0);
	assert_relation(f->in, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
	assert_others_equal(f->in, f->out);
	char sc[4500];
	PJ(sc, "%s.fold.json", f->out);
	assert_true(exists(sc));
	/* Kept in F32 the undo is exact only up to f32 rounding. */
	PJ(f->undo, "%s/undone.gguf", f->dir);
	assert_int_equal(run_fold("--model", f->out, "--out", f->undo, "--undo", sc, NULL), 0);
	assert_relation(f->in, f->undo, VERIFY_REL_ROUNDING, SIZE_MAX);
	/* Stored as F64 (the file laid out again), the undo is bit for bit. */
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--dtype", "f64", "--force",
				  NULL), 0);
	Model *m = open_ok(f->out);
	assert_string_equal(dtype_name(model_info(m)->dtype), "F64");
	model_close(m);
	assert_relation(f->in, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
	assert_others_equal(f->in, f->out);
	assert_int_equal(run_fold("--model", f->out, "--out", f->undo, "--undo", sc, "--force",
				  NULL), 0);
	assert_true(same_bytes(f->in, f->undo));
}

/* GGUF F16 (narrow) and Q8_0 (rotated tensors as F16 by default, F32 or
 * quantized again with --dtype). */
static void test_gguf_narrow(void **state)
{
	Fx *f = *state;
	write_gguf(f, "h.gguf", "F16");
	PJ(f->out, "%s/h-folded.gguf", f->dir);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, NULL), 0);
	assert_relation(f->in, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
	write_gguf(f, "q.gguf", "Q8_0");
	PJ(f->out, "%s/q-folded.gguf", f->dir);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, NULL), 0);
	Model *m = open_ok(f->out);
	assert_string_equal(model_info(m)->attn_dtypes[1].v[0].name, "F16");
	model_close(m);
	assert_relation(f->in, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
	assert_others_equal(f->in, f->out);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--dtype", "f32", "--force",
				  NULL), 0);
	assert_relation(f->in, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
	assert_others_equal(f->in, f->out);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--dtype", "q8_0", "--force",
				  NULL), 0);
	m = open_ok(f->out);
	assert_string_equal(model_info(m)->attn_dtypes[1].v[0].name, "Q8_0");
	model_close(m);
	assert_relation(f->in, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
	assert_others_equal(f->in, f->out);
}

/* llama2.c: F32 only; --layers picks one layer. */
static void test_llama2c(void **state)
{
	Fx *f = *state;
	int32_t h[7] = {32, 24, NL, 4, 2, 8, 4};
	FxBuf b = {0};
	fx_llama2c(&b, h);
	/* The fixture's values are too regular for verify's Procrustes (W_v
	 * of low rank): seeded attention weights instead. */
	Layer l[NL];
	make_layers(l, false, false);
	size_t D = 32, Gd = 16, at = 28 + 4 * (8 * D + NL * D);
	for (int part = 0; part < 4; part++) {
		for (size_t i = 0; i < NL; i++) {
			const double *src[4] = {l[i].wq, l[i].wk, l[i].wv, l[i].wo};
			size_t n = part == 1 || part == 2 ? Gd * D : D * D;
			for (size_t k = 0; k < n; k++) {
				float v = (float)src[part][k];
				memcpy(b.p + at + 4 * k, &v, 4);
			}
			at += 4 * n;
		}
	}
	free_layers(l);
	fx_write(f->dir, "m.bin", b.p, b.n);
	fx_free(&b);
	PJ(f->in, "%s/m.bin", f->dir);
	PJ(f->out, "%s/folded.bin", f->dir);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--layers", "1", NULL), 0);
	assert_relation(f->in, f->out, VERIFY_REL_COMMUTING_FOLD, 1);
	assert_others_equal(f->in, f->out);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--dtype", "f64", "--force",
				  NULL), 2);
}

/* HF folders: BF16 with --dtype f32 undoes bit for bit; Qwen2 biases. */
static void test_hf_folder(void **state)
{
	Fx *f = *state;
	write_hf(f, "hf", "BF16", false);
	PJ(f->out, "%s/hf-folded", f->dir);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--dtype", "f32", NULL), 0);
	assert_relation(f->in, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
	assert_others_equal(f->in, f->out);
	char p[4500], q[4500], sc[4500];
	PJ(p, "%s/tokenizer.json", f->out);
	assert_true(exists(p));
	PJ(sc, "%s/fold.json", f->out);
	assert_true(exists(sc));
	PJ(f->undo, "%s/hf-undone", f->dir);
	assert_int_equal(run_fold("--model", f->out, "--out", f->undo, "--undo", sc, NULL), 0);
	PJ(p, "%s/model.safetensors", f->in);
	PJ(q, "%s/model.safetensors", f->undo);
	assert_true(same_bytes(p, q));

	write_hf(f, "qwen", "F32", true);
	PJ(f->out, "%s/qwen-folded", f->dir);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, NULL), 0);
	Model *m = open_ok(f->out);
	assert_true(model_info(m)->biases);
	model_close(m);
	assert_relation(f->in, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
	assert_others_equal(f->in, f->out);
}

/* A BF16 HF folder f->dir/sub whose index puts the first half of the
 * tensors in shard[0] and the rest in shard[1] (paths as the index writes
 * them, "sub/a.safetensors" made in its subfolder). */
static void write_sharded(Fx *f, const char *sub, const char *const shard[2])
{
	Layer l[NL];
	make_layers(l, false, true);
	FxTensor t[32];
	size_t nt = fx_llama_tensors(l, NL, NULL, 0, "hf", "BF16", t);
	char dir[4300], cfg[1024], idx[4096], p[4500];
	PJ(dir, "%s/%s", f->dir, sub);
	mkdir(dir, 0755);
	fx_hf_config(cfg, sizeof cfg, "llama", &shape, NL, 8, "");
	fx_write(dir, "config.json", cfg, strlen(cfg));
	fx_write(dir, "tokenizer.json", "{}", 2);
	size_t half = nt / 2, k = 0;
	k += (size_t)snprintf(idx + k, sizeof idx - k, "{\"weight_map\": {");
	for (int sh = 0; sh < 2; sh++) {
		PJ(p, "%s/%s", dir, shard[sh]);
		for (char *c = p + strlen(dir) + 1; (c = strchr(c, '/')); *c++ = '/') {
			*c = '\0';
			mkdir(p, 0755);
		}
		size_t a = sh ? half : 0, n = sh ? nt - half : half;
		FxBuf b = {0};
		fx_safetensors(&b, t + a, n);
		assert_int_equal(fx_write(dir, shard[sh], b.p, b.n), 0);
		fx_free(&b);
		for (size_t i = a; i < a + n; i++)
			k += (size_t)snprintf(idx + k, sizeof idx - k, "%s\"%s\": \"%s\"",
					      i ? ", " : "", t[i].name, shard[sh]);
	}
	snprintf(idx + k, sizeof idx - k, "}}");
	fx_write(dir, "model.safetensors.index.json", idx, strlen(idx));
	free_layers(l);
	PJ(f->in, "%s", dir);
}

/* A sharded HF folder with its index: every shard rewritten, the index
 * copied, undo through F32 bit for bit. */
static void test_sharded(void **state)
{
	Fx *f = *state;
	const char *const files[3] = {"model-00001-of-00002.safetensors",
				      "model-00002-of-00002.safetensors",
				      "model.safetensors.index.json"};
	write_sharded(f, "sharded", files);
	char dir[4300];
	PJ(dir, "%s", f->in);
	PJ(f->out, "%s/sharded-folded", f->dir);
	assert_int_equal(run_fold("--model", dir, "--out", f->out, "--dtype", "f32", NULL), 0);
	assert_relation(dir, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
	assert_others_equal(dir, f->out);
	char sc[4500], p[4500], q[4500];
	PJ(sc, "%s/fold.json", f->out);
	PJ(f->undo, "%s/sharded-undone", f->dir);
	assert_int_equal(run_fold("--model", f->out, "--out", f->undo, "--undo", sc, NULL), 0);
	for (int i = 0; i < 3; i++) {
		PJ(p, "%s/%s", dir, files[i]);
		PJ(q, "%s/%s", f->undo, files[i]);
		assert_true(same_bytes(p, q));
	}
}

/* Shards the index puts in subfolders: OUT mirrors the input's relative
 * paths (not flattened, so the copied index still names them), and two
 * shards with one base name in two folders are both written. The output
 * passes info, check and verify; --force replaces it; undo restores every
 * shard bit for bit at its path. */
static void test_shard_subfolders(void **state)
{
	Fx *f = *state;
	static const char *const cases[2][2] = {
		{"sub/a.safetensors", "./sub//b.safetensors"},
		{"a/x.safetensors", "b/x.safetensors"},
	};
	static const char *const norm[2][2] = {
		{"sub/a.safetensors", "sub/b.safetensors"},
		{"a/x.safetensors", "b/x.safetensors"},
	};
	for (int c = 0; c < 2; c++) {
		char sub[64], p[4500], q[4500], sc[4500], log[4500];
		snprintf(sub, sizeof sub, "subshards%d", c);
		write_sharded(f, sub, cases[c]);
		PJ(f->out, "%s/%s-folded", f->dir, sub);
		PJ(log, "%s/log.txt", f->dir);
		assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--dtype", "f32", NULL),
				 0);
		for (int k = 0; k < 2; k++) {
			PJ(p, "%s/%s", f->out, norm[c][k]);
			assert_true(exists(p));
			PJ(p, "%s/%s", f->out, strrchr(norm[c][k], '/') + 1);
			assert_false(exists(p));
		}
		PJ(p, "%s/tokenizer.json", f->out);
		assert_true(exists(p));
		PJ(p, "%s/model.safetensors.index.json", f->in);
		PJ(q, "%s/model.safetensors.index.json", f->out);
		assert_true(same_bytes(p, q));
		assert_int_equal(run_mode(cli_info, log, f->out, NULL), 0);
		assert_true(file_has(log, "layers"));
		assert_int_equal(run_mode(check_mode, log, "--model", f->out, NULL), 0);
		assert_int_equal(run_mode(cli_verify, log, f->in, f->out, NULL), 0);
		assert_true(file_has(log, "B is equivalent to A in every chosen layer"));
		assert_relation(f->in, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
		assert_others_equal(f->in, f->out);
		/* A second fold replaces the first, subfolders included. */
		assert_int_equal(run_fold("--model", f->in, "--out", f->out, NULL), 2);
		assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--dtype", "f32",
					  "--seed", "9", "--force", NULL), 0);
		assert_int_equal(run_mode(cli_verify, log, f->in, f->out, NULL), 0);
		PJ(sc, "%s/fold.json", f->out);
		PJ(f->undo, "%s/%s-undone", f->dir, sub);
		assert_int_equal(run_fold("--model", f->out, "--out", f->undo, "--undo", sc, NULL),
				 0);
		for (int k = 0; k < 2; k++) {
			PJ(p, "%s/%s", f->in, norm[c][k]);
			PJ(q, "%s/%s", f->undo, norm[c][k]);
			assert_true(same_bytes(p, q));
		}
	}
}

/* --force does not replace a folder OUT with a subfolder no shard goes
 * to, nor the folder the input's shards are in. */
static void test_shard_subfolder_force(void **state)
{
	Fx *f = *state;
	static const char *const shards[2] = {"sub/a.safetensors", "sub/b.safetensors"};
	write_sharded(f, "forced", shards);
	char p[4500];
	PJ(f->out, "%s/forced-out", f->dir);
	mkdir(f->out, 0755);
	fx_write(f->out, "config.json", "{}", 2);
	PJ(p, "%s/other", f->out);
	mkdir(p, 0755);
	fx_write(p, "keep.txt", "x", 1);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--force", NULL), 2);
	PJ(p, "%s/other/keep.txt", f->out);
	assert_true(exists(p));
	/* OUT = the input's shard folder (a checkpoint folder by the look of
	 * it): replacing it would delete the shards being read. */
	PJ(f->out, "%s/sub", f->in);
	fx_write(f->out, "config.json", "{}", 2);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--force", NULL), 2);
	PJ(p, "%s/sub/a.safetensors", f->in);
	assert_true(exists(p));
	Model *m = open_ok(f->in);
	model_close(m);
}

/* A single safetensors file: its config.json goes beside OUT. */
static void test_single_file(void **state)
{
	Fx *f = *state;
	write_hf(f, "single", "F32", false);
	char in[4500], outdir[4500];
	PJ(in, "%s/model.safetensors", f->in);
	PJ(outdir, "%s/elsewhere", f->dir);
	mkdir(outdir, 0755);
	PJ(f->out, "%s/folded.safetensors", outdir);
	assert_int_equal(run_fold("--model", in, "--out", f->out, NULL), 0);
	assert_relation(in, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
	/* Beside the input too (config.json already there). */
	PJ(f->out, "%s/folded.safetensors", f->in);
	assert_int_equal(run_fold("--model", in, "--out", f->out, "--dtype", "f64", NULL), 0);
	assert_relation(in, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
}

/* Fused layouts: the values put back are exactly what the reader split. */
static void assert_pack_inverse(const char *path)
{
	Model *m = open_ok(path);
	char err[512];
	for (size_t i = 0; i < model_info(m)->n_layers; i++) {
		Layer l;
		LayerTensorRefs lt;
		if (model_load_layer(m, i, &l, err, sizeof err) ||
		    model_layer_tensors(m, i, &lt, err, sizeof err))
			fail_msg("%s", err);
		for (int a = 0; a < ATT_COUNT; a++) {
			const TensorRef *t = lt.t[a];
			if (!t)
				continue;
			double *want = malloc(t->nelem * sizeof(double));
			double *got = malloc(t->nelem * sizeof(double));
			if (tensor_read(t, 0, t->nelem, want, err, sizeof err))
				fail_msg("%s", err);
			assert_int_equal(model_tensor_pack(&l, lt.qkv_kind, (AttnTensor)a, got), 0);
			if (memcmp(want, got, t->nelem * sizeof(double)))
				fail_msg("%s: %s of layer %zu does not pack back", path,
					 model_tensor_label((AttnTensor)a), i);
			free(want);
			free(got);
		}
		layer_free(&l);
	}
	model_close(m);
}

static void write_fused(Fx *f, const char *sub, bool neox)
{
	LayerShape s = {32, 4, 4, 8};
	Layer ref;
	fx_layer(&ref, &s, true, 21);
	size_t D = 32, Hd = 32;
	static double qkv[3 * 32 * 32], bqkv[96], nb[32];
	const double *src[3] = {ref.wq, ref.wk, ref.wv}, *bsrc[3] = {ref.bq, ref.bk, ref.bv};
	for (size_t h = 0; h < 4; h++) {
		for (size_t j = 0; j < 3; j++) {
			size_t at = neox ? (h * 3 + j) * 8 : j * Hd + h * 8;
			memcpy(qkv + at * D, src[j] + h * 8 * D, 8 * D * sizeof(double));
			memcpy(bqkv + at, bsrc[j] + h * 8, 8 * sizeof(double));
		}
	}
	for (size_t i = 0; i < 32; i++)
		nb[i] = 0.03125 * (double)i;
	char dir[4200], cfg[1024];
	PJ(dir, "%s/%s", f->dir, sub);
	mkdir(dir, 0755);
	FxTensor t[6];
	size_t nt;
	if (neox) {
		FxTensor u[6] = {
			{"gpt_neox.layers.0.attention.query_key_value.weight", "F32", 2,
			 {96, 32, 0, 0}, qkv},
			{"gpt_neox.layers.0.attention.query_key_value.bias", "F32", 1, {96, 0, 0, 0},
			 bqkv},
			{"gpt_neox.layers.0.attention.dense.weight", "F32", 2, {32, 32, 0, 0}, ref.wo},
			{"gpt_neox.layers.0.attention.dense.bias", "F32", 1, {32, 0, 0, 0}, ref.bo},
			{"gpt_neox.layers.0.input_layernorm.weight", "F32", 1, {32, 0, 0, 0},
			 ref.attn_norm},
			{"gpt_neox.layers.0.input_layernorm.bias", "F32", 1, {32, 0, 0, 0}, nb},
		};
		memcpy(t, u, sizeof u);
		nt = 6;
		PJ(cfg, "{\"model_type\": \"gpt_neox\", \"hidden_size\": 32, "
			 "\"num_attention_heads\": 4, \"num_hidden_layers\": 1, \"rotary_pct\": 0.5, "
			 "\"rotary_emb_base\": 10000, \"layer_norm_eps\": 1e-5}");
	} else {
		FxTensor u[3] = {
			{"model.layers.0.self_attn.qkv_proj.weight", "F32", 2, {96, 32, 0, 0}, qkv},
			{"model.layers.0.self_attn.o_proj.weight", "F32", 2, {32, 32, 0, 0}, ref.wo},
			{"model.layers.0.input_layernorm.weight", "F32", 1, {32, 0, 0, 0},
			 ref.attn_norm},
		};
		memcpy(t, u, sizeof u);
		nt = 3;
		fx_hf_config(cfg, sizeof cfg, "phi3", &s, 1, 8, ", \"partial_rotary_factor\": 0.5");
	}
	fx_write(dir, "config.json", cfg, strlen(cfg));
	FxBuf b = {0};
	fx_safetensors(&b, t, nt);
	fx_write(dir, "model.safetensors", b.p, b.n);
	fx_free(&b);
	layer_free(&ref);
	PJ(f->in, "%s", dir);
}

static void test_fused(void **state)
{
	Fx *f = *state;
	const char *subs[2] = {"phi3", "neox"};
	for (int k = 0; k < 2; k++) {
		write_fused(f, subs[k], k == 1);
		assert_pack_inverse(f->in);
		PJ(f->out, "%s/%s-folded", f->dir, subs[k]);
		assert_int_equal(run_fold("--model", f->in, "--out", f->out, NULL), 0);
		assert_pack_inverse(f->out);
		assert_relation(f->in, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
		assert_others_equal(f->in, f->out);
		/* Partial rotary: the non-rotary block is Haar, recorded as a
		 * tail matrix; undo through F64 is bit for bit. */
		char sc[4500], p[4500], q[4500];
		assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--dtype", "f64",
					  "--force", NULL), 0);
		PJ(sc, "%s/fold.json", f->out);
		PJ(f->undo, "%s/%s-undone", f->dir, subs[k]);
		assert_int_equal(run_fold("--model", f->out, "--out", f->undo, "--undo", sc, NULL),
				 0);
		PJ(p, "%s/model.safetensors", f->in);
		PJ(q, "%s/model.safetensors", f->undo);
		assert_true(same_bytes(p, q));
	}
}

/* ---- QK-norm weights over all heads (OLMo2) --------------------------------- */

/* Every layer of b is equivalent to a, and some has its heads permuted. */
static void assert_heads_permuted(const char *pa, const char *pb)
{
	Model *ma = open_ok(pa), *mb = open_ok(pb);
	VerifyOptions vo = {dtype_unit_roundoff(model_info(ma)->dtype), 0};
	char err[512];
	size_t permuted = 0;
	for (size_t i = 0; i < model_info(ma)->n_layers; i++) {
		Layer a, b;
		if (model_load_layer(ma, i, &a, err, sizeof err) ||
		    model_load_layer(mb, i, &b, err, sizeof err))
			fail_msg("%s", err);
		assert_false(a.qk_norm_per_head);
		VerifyVerdict v;
		assert_int_equal(verify_layers(&a, &b, &vo, &v), RF_OK);
		if (!v.equivalent)
			fail_msg("%s layer %zu: not equivalent: %s", pb, i, why_text(&v));
		permuted += v.heads_permuted;
		verify_verdict_free(&v);
		layer_free(&a);
		layer_free(&b);
	}
	assert_true(permuted > 0);
	model_close(ma);
	model_close(mb);
}

/* QK-norm tensors over all heads (H*d, G*d) for each layer of make_layers,
 * one value per head so that a reorder shows: q_norm[l] then k_norm[l]
 * in qk (NL x (H + G) x d), named in GGUF or HF style into t. */
static size_t add_norms(FxTensor *t, size_t nt, const char *scheme, const double *qv,
			const double *kv, double *qk)
{
	static char names[2 * NL][96];
	size_t H = shape.n_heads, G = shape.n_kv_heads, d = shape.head_dim;
	bool gguf = !strcmp(scheme, "gguf");
	for (size_t l = 0; l < NL; l++) {
		double *q = qk + l * (H + G) * d, *k = q + H * d;
		for (size_t i = 0; i < (H + G) * d; i++)
			q[i] = i < H * d ? qv[i / d] : kv[(i - H * d) / d];
		for (int w = 0; w < 2; w++) {
			char *nm = names[2 * l + (size_t)w];
			snprintf(nm, 96, gguf ? "blk.%zu.attn_%c_norm.weight"
					      : "model.layers.%zu.self_attn.%c_norm.weight",
				 l, w ? 'k' : 'q');
			t[nt++] = (FxTensor){nm, "F32", 1, {w ? G * d : H * d, 0, 0, 0}, w ? k : q};
		}
	}
	return nt;
}

/* OLMo2-style QK-norm weights over all heads move with their heads under
 * --permute-heads: the written checkpoint verifies (heads permuted), and
 * --undo puts them back bit for bit. A GGUF file, and an HF folder of a
 * family that stores w - 1 (Gemma's "+1" norm) with a stored value so
 * small that 1 + w rounds to 1 in double: only a reorder of the stored
 * values, not of the loaded weights, undoes it bit for bit. */
static void test_qk_norm_all_heads(void **state)
{
	Fx *f = *state;
	Layer l[NL];
	static double qk[NL * 6 * 8];
	FxTensor t[48];
	char sc[4500], p[4500], q[4500];
	make_layers(l, false, false);
	size_t nt = fx_llama_tensors(l, NL, NULL, 0, "gguf", "F32", t);
	const double qv[4] = {1.25, 0.75, 1.5, 0.5}, kv[2] = {0.625, 1.375};
	nt = add_norms(t, nt, "gguf", qv, kv, qk);
	FxKv kvs[] = {{"general.architecture", 's', "olmo2", 0},
		      {"olmo2.block_count", 'u', NULL, NL},
		      {"olmo2.embedding_length", 'u', NULL, 32},
		      {"olmo2.attention.head_count", 'u', NULL, 4},
		      {"olmo2.attention.head_count_kv", 'u', NULL, 2}};
	FxBuf b = {0};
	fx_gguf(&b, 3, kvs, 5, t, nt, 32);
	fx_write(f->dir, "olmo2.gguf", b.p, b.n);
	fx_free(&b);
	PJ(f->in, "%s/olmo2.gguf", f->dir);
	PJ(f->out, "%s/olmo2-folded.gguf", f->dir);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--permute-heads", "--seed",
				  "5", "--dtype", "f64", NULL), 0);
	assert_heads_permuted(f->in, f->out);
	PJ(sc, "%s.fold.json", f->out);
	assert_true(file_has(sc, "blk.1.attn_k_norm.weight"));
	PJ(f->undo, "%s/olmo2-undone.gguf", f->dir);
	assert_int_equal(run_fold("--model", f->out, "--out", f->undo, "--undo", sc, NULL), 0);
	assert_true(same_bytes(f->in, f->undo));

	/* Gemma-style: stored w - 1; 2^-100 + 1 == 1 in double. */
	nt = fx_llama_tensors(l, NL, NULL, 0, "hf", "F32", t);
	const double gq[4] = {ldexp(1, -100), 0.25, -0.5, 0.125}, gk[2] = {0.375, ldexp(1, -100)};
	nt = add_norms(t, nt, "hf", gq, gk, qk);
	char dir[4300], cfg[1024];
	PJ(dir, "%s/gemma", f->dir);
	mkdir(dir, 0755);
	fx_hf_config(cfg, sizeof cfg, "gemma", &shape, NL, 8, "");
	fx_write(dir, "config.json", cfg, strlen(cfg));
	fx_safetensors(&b, t, nt);
	fx_write(dir, "model.safetensors", b.p, b.n);
	fx_free(&b);
	free_layers(l);
	Model *m = open_ok(dir);
	Layer g;
	char err[512];
	if (model_load_layer(m, 0, &g, err, sizeof err))
		fail_msg("%s", err);
	assert_true(g.q_norm[0] == 1.0 && g.q_norm[8] == 1.25);
	layer_free(&g);
	model_close(m);
	PJ(f->out, "%s/gemma-folded", f->dir);
	assert_int_equal(run_fold("--model", dir, "--out", f->out, "--permute-heads", "--seed",
				  "5", "--dtype", "f64", NULL), 0);
	assert_heads_permuted(dir, f->out);
	PJ(sc, "%s/fold.json", f->out);
	PJ(f->undo, "%s/gemma-undone", f->dir);
	assert_int_equal(run_fold("--model", f->out, "--out", f->undo, "--undo", sc, NULL), 0);
	PJ(p, "%s/model.safetensors", dir);
	PJ(q, "%s/model.safetensors", f->undo);
	assert_true(same_bytes(p, q));
	/* Without --permute-heads the norms stay as they are. */
	PJ(f->out, "%s/gemma-kept", f->dir);
	assert_int_equal(run_fold("--model", dir, "--out", f->out, NULL), 0);
	PJ(sc, "%s/fold.json", f->out);
	assert_false(file_has(sc, "q_norm"));
	assert_relation(dir, f->out, VERIFY_REL_COMMUTING_FOLD, SIZE_MAX);
}

/* Path rules: same file, existing OUT, unwritable target, failures. */
static void test_refusals(void **state)
{
	Fx *f = *state;
	write_gguf(f, "r.gguf", "F32");
	char hard[4300];
	PJ(hard, "%s/hardlink.gguf", f->dir);
	assert_int_equal(link(f->in, hard), 0);
	assert_int_equal(run_fold("--model", f->in, "--out", f->in, "--force", NULL), 2);
	assert_int_equal(run_fold("--model", f->in, "--out", hard, "--force", NULL), 2);
	assert_int_equal(run_fold("--model", f->in, "--out", "/proc/ropefold.gguf", NULL), 2);
	assert_int_equal(run_fold("--model", f->in, NULL), 2);
	assert_int_equal(run_fold("--out", "x.gguf", NULL), 2);
	PJ(f->out, "%s/sub", f->dir);
	mkdir(f->out, 0755);
	PJ(f->out, "%s/sub/out.gguf", f->dir);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, NULL), 0);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, NULL), 2);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--force", NULL), 0);
	/* A folder where a file goes is refused even with --force. */
	PJ(f->out, "%s/sub", f->dir);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--force", NULL), 2);

	/* Injected failures: no OUT and no temporary left. */
	char dir[4300];
	PJ(dir, "%s/fail", f->dir);
	mkdir(dir, 0755);
	PJ(f->out, "%s/out.gguf", dir);
	const char *modes[] = {"layer:1", "commit"};
	for (int k = 0; k < 2; k++) {
		setenv("ROPEFOLD_TEST_FAIL", modes[k], 1);
		assert_int_equal(run_fold("--model", f->in, "--out", f->out, NULL), 2);
		unsetenv("ROPEFOLD_TEST_FAIL");
		assert_false(exists(f->out));
		assert_int_equal(count_entries(dir), 0);
	}
	write_hf(f, "hf-fail", "F32", false);
	PJ(f->out, "%s/hf-out", dir);
	setenv("ROPEFOLD_TEST_FAIL", "layer:1", 1);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, NULL), 2);
	unsetenv("ROPEFOLD_TEST_FAIL");
	assert_int_equal(count_entries(dir), 0);
	/* Shards in subfolders: no subfolder or temporary left either, and
	 * an OUT already there (--force) is left as it was. */
	static const char *const shards[2] = {"a/x.safetensors", "b/c/x.safetensors"};
	char in[4300], p[4500];
	write_sharded(f, "sub-fail", shards);
	PJ(in, "%s", f->in);
	for (int k = 0; k < 2; k++) {
		setenv("ROPEFOLD_TEST_FAIL", modes[k], 1);
		assert_int_equal(run_fold("--model", in, "--out", f->out, NULL), 2);
		unsetenv("ROPEFOLD_TEST_FAIL");
		assert_int_equal(count_entries(dir), 0);
	}
	assert_int_equal(run_fold("--model", in, "--out", f->out, "--seed", "3", NULL), 0);
	PJ(p, "%s/b/c/x.safetensors", f->out);
	char keep[4500];
	PJ(keep, "%s/kept.safetensors", f->dir);
	assert_int_equal(link(p, keep), 0);
	for (int k = 0; k < 2; k++) {
		setenv("ROPEFOLD_TEST_FAIL", modes[k], 1);
		assert_int_equal(run_fold("--model", in, "--out", f->out, "--force", NULL), 2);
		unsetenv("ROPEFOLD_TEST_FAIL");
		assert_int_equal(count_entries(dir), 1);
		assert_true(same_bytes(p, keep));
		struct stat a, b;
		assert_int_equal(stat(p, &a), 0);
		assert_int_equal(stat(keep, &b), 0);
		assert_true(a.st_ino == b.st_ino);
	}
	fx_rmtree(f->out);
	unlink(keep);
	PJ(f->in, "%s", in);
	/* An undo sidecar of another shape is bad input. */
	char sc[4500];
	PJ(sc, "%s/bad.json", f->dir);
	fx_write(f->dir, "bad.json", "{\"tool\": \"ropefold\"}", 20);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--undo", sc, NULL), 2);
	assert_false(exists(f->out));
}

/* A JSON file (the test fails when it does not parse). */
static json_t *load_json(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		fail_msg("%s: %s", path, je.text);
	return j;
}

/* Copy a file. */
static void copy_file(const char *from, const char *to)
{
	FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
	assert_non_null(a);
	assert_non_null(b);
	int c;
	while ((c = getc(a)) != EOF)
		putc(c, b);
	fclose(a);
	assert_int_equal(fclose(b), 0);
}

/* Check an undo's --json summary against the fold's: the seeds the
 * sidecar recorded, no sidecar, and bit for bit only as claimed. */
static void assert_undo_json(const char *path, json_t *fold, bool exact)
{
	json_t *u = load_json(path);
	assert_true(json_is_true(json_object_get(u, "undo")));
	assert_true(json_is_null(json_object_get(u, "sidecar")));
	/* the sidecar had checksums: checked, and bit for bit decided by them */
	assert_true(json_is_true(json_object_get(u, "checksums")));
	assert_int_equal(json_is_true(json_object_get(u, "bit_for_bit")), exact);
	json_t *mr = json_object_get(u, "max_rel_rounding");
	/* 0 when restored bit for bit; otherwise unknown, not a number */
	if (exact)
		assert_true(json_is_number(mr) && json_number_value(mr) == 0);
	else
		assert_true(json_is_null(mr));
	json_t *ul = json_object_get(u, "layers"), *fl = json_object_get(fold, "layers");
	assert_int_equal(json_array_size(ul), NL);
	assert_int_equal(json_array_size(fl), NL);
	for (size_t i = 0; i < NL; i++) {
		json_t *a = json_array_get(ul, i), *b = json_array_get(fl, i);
		json_int_t seed = json_integer_value(json_object_get(b, "seed"));
		assert_true(seed != 0);
		assert_int_equal(json_integer_value(json_object_get(a, "layer")),
				 json_integer_value(json_object_get(b, "layer")));
		assert_int_equal(json_integer_value(json_object_get(a, "seed")), seed);
		assert_int_equal(json_is_true(json_object_get(a, "bit_for_bit")), exact);
	}
	json_decref(u);
}

/* What an undo says: the layers it undid with the seeds the sidecar
 * recorded, "bit for bit" only when the restored tensors provably are the
 * original's stored values (and then they are), no rounding figure it
 * cannot know, and no sidecar in its output (which is the original). */
static void test_undo_report(void **state)
{
	Fx *f = *state;
	write_gguf(f, "m.gguf", "F32");
	char sc[4500], cap[4500], foldj[4500], line[256];
	PJ(cap, "%s/report.txt", f->dir);
	PJ(foldj, "%s/fold.json.out", f->dir);

	/* Kept in F32: the undo rounds again, so it cannot claim bit for bit. */
	PJ(f->out, "%s/kept.gguf", f->dir);
	assert_int_equal(run_mode(cli_fold, foldj, "--model", f->in, "--out", f->out, "--json",
				  NULL), 0);
	json_t *fold = load_json(foldj);
	/* fold's own summary keeps its keys */
	assert_true(json_is_string(json_object_get(fold, "sidecar")));
	assert_true(json_is_number(json_object_get(fold, "max_rel_rounding")));
	assert_null(json_object_get(fold, "bit_for_bit"));
	PJ(sc, "%s.fold.json", f->out);
	PJ(f->undo, "%s/kept-undone.gguf", f->dir);
	assert_int_equal(run_mode(cli_fold, cap, "--model", f->out, "--out", f->undo, "--undo", sc,
				  NULL), 0);
	json_int_t seed0 = json_integer_value(json_object_get(json_array_get(
		json_object_get(fold, "layers"), 0), "seed"));
	PJ(line, "undid the fold of layer 0 (seed %lld): within f32 rounding", (long long)seed0);
	assert_true(file_has(cap, line));
	assert_true(file_has(cap, "restored within the stored dtype's rounding (f32)"));
	assert_false(file_has(cap, "seed 0"));
	assert_false(file_has(cap, "relative rounding error"));
	assert_false(file_has(cap, "): bit for bit"));
	assert_true(file_has(cap, "no sidecar written"));
	char usc[4600];
	PJ(usc, "%s.fold.json", f->undo);
	assert_false(exists(usc));
	assert_int_equal(run_mode(cli_fold, cap, "--model", f->out, "--out", f->undo, "--undo", sc,
				  "--force", "--json", NULL), 0);
	assert_undo_json(cap, fold, false);
	json_decref(fold);

	/* Stored as F64: restored bit for bit, and said so. */
	PJ(f->out, "%s/wide.gguf", f->dir);
	assert_int_equal(run_mode(cli_fold, foldj, "--model", f->in, "--out", f->out, "--dtype",
				  "f64", "--json", NULL), 0);
	fold = load_json(foldj);
	PJ(sc, "%s.fold.json", f->out);
	PJ(f->undo, "%s/wide-undone.gguf", f->dir);
	assert_int_equal(run_mode(cli_fold, cap, "--model", f->out, "--out", f->undo, "--undo", sc,
				  NULL), 0);
	assert_true(same_bytes(f->in, f->undo));
	seed0 = json_integer_value(json_object_get(json_array_get(
		json_object_get(fold, "layers"), 0), "seed"));
	PJ(line, "undid the fold of layer 0 (seed %lld): bit for bit", (long long)seed0);
	assert_true(file_has(cap, line));
	assert_true(file_has(cap, "restored bit for bit"));
	assert_false(file_has(cap, "relative rounding error"));
	PJ(usc, "%s.fold.json", f->undo);
	assert_false(exists(usc));
	assert_int_equal(run_mode(cli_fold, cap, "--model", f->out, "--out", f->undo, "--undo", sc,
				  "--force", "--json", NULL), 0);
	assert_undo_json(cap, fold, true);
	json_decref(fold);

	/* An undo over an earlier fold's OUT (--force) takes that OUT's
	 * sidecar away: OUT is the original now. */
	PJ(usc, "%s/kept.gguf.fold.json", f->dir);
	char kept[4500];
	PJ(kept, "%s/kept.gguf", f->dir);
	assert_true(exists(usc));
	assert_int_equal(run_mode(cli_fold, cap, "--model", f->out, "--out", kept, "--undo", sc,
				  "--force", "--json", NULL), 0);
	assert_false(exists(usc));
	assert_true(same_bytes(f->in, kept));
	json_t *u = load_json(cap);
	assert_string_equal(json_string_value(json_object_get(u, "removed_sidecar")), usc);
	json_decref(u);
	/* ... but never the sidecar the undo reads. */
	char copy[4500];
	PJ(copy, "%s/wide-copy.gguf", f->dir);
	copy_file(f->out, copy);
	assert_int_equal(run_fold("--model", copy, "--out", f->out, "--undo", sc, "--force", NULL),
			 0);
	assert_true(exists(sc));
	assert_true(same_bytes(f->in, f->out));

	/* An HF folder: no fold.json in the undone folder. */
	write_hf(f, "hfu", "BF16", false);
	PJ(f->out, "%s/hfu-folded", f->dir);
	assert_int_equal(run_fold("--model", f->in, "--out", f->out, "--dtype", "f32", NULL), 0);
	PJ(sc, "%s/fold.json", f->out);
	PJ(f->undo, "%s/hfu-undone", f->dir);
	assert_int_equal(run_mode(cli_fold, cap, "--model", f->out, "--out", f->undo, "--undo", sc,
				  NULL), 0);
	assert_true(file_has(cap, "restored bit for bit"));
	PJ(usc, "%s/fold.json", f->undo);
	assert_false(exists(usc));
	char p[4500], q[4500];
	PJ(p, "%s/model.safetensors", f->in);
	PJ(q, "%s/model.safetensors", f->undo);
	assert_true(same_bytes(p, q));
}

/* The explorer's :export on the built-in default model folds the layer
 * shown, as for a loaded checkpoint. */
static void test_tui_export_default(void **state)
{
	Fx *f = *state;
	TuiSettings s;
	memset(&s, 0, sizeof s);
	opts_defaults(&s.opts);
	s.source = SOURCE_DEFAULT;
	s.opts.layer = 1;
	char msg[1024], out[4400], model[4096], err[512];
	if (default_model_path(getenv("ROPEFOLD_DATADIR"), model, sizeof model, err, sizeof err))
		fail_msg("%s", err);
	PJ(out, "%s/default-export", f->dir);
	assert_int_equal(fold_action_export(&s, out, msg, sizeof msg), 0);
	assert_non_null(strstr(msg, "exported layer 1"));
	assert_relation(model, out, VERIFY_REL_COMMUTING_FOLD, 1);
}

/* The explorer's :export and :verify. */
static void test_tui_actions(void **state)
{
	Fx *f = *state;
	write_hf(f, "tui", "F32", false);
	TuiSettings s;
	memset(&s, 0, sizeof s);
	opts_defaults(&s.opts);
	s.source = SOURCE_FILE;
	PJ(s.model_path, "%s", f->in);
	s.opts.layer = 1;
	s.opts.fold.seed = 5;
	char msg[1024], out[4400], sc[4500];
	PJ(out, "%s/tui-export", f->dir);
	assert_int_equal(fold_action_export(&s, out, msg, sizeof msg), 0);
	assert_non_null(strstr(msg, "exported layer 1"));
	assert_relation(f->in, out, VERIFY_REL_COMMUTING_FOLD, 1);
	/* The rotations are the ones the explorer shows (seed 5 itself). */
	Model *ma = open_ok(f->in), *mb = open_ok(out);
	Layer a, b, c;
	FoldPlan plan;
	char err[512];
	if (model_load_layer(ma, 1, &a, err, sizeof err) ||
	    model_load_layer(mb, 1, &b, err, sizeof err))
		fail_msg("%s", err);
	assert_int_equal(fold_plan_build(&a, &s.opts.fold, &plan), RF_OK);
	assert_int_equal(fold_apply(&a, &plan, &c), RF_OK);
	assert_le(tu_max_diff(b.wq, c.wq, 32 * 32), 1e-6);
	assert_le(tu_max_diff(b.wo, c.wo, 32 * 32), 1e-6);
	fold_plan_free(&plan);
	layer_free(&a);
	layer_free(&b);
	layer_free(&c);
	model_close(ma);
	model_close(mb);
	/* An existing output is refused, offering what the explorer can do
	 * (:export!, not a flag it has no way to give); :export! replaces it. */
	assert_int_equal(fold_action_export(&s, out, msg, sizeof msg), -1);
	assert_non_null(strstr(msg, "exists"));
	assert_non_null(strstr(msg, "':export! "));
	assert_null(strstr(msg, "--force"));
	s.action_force = true;
	s.opts.fold.seed = 6;
	assert_int_equal(fold_action_export(&s, out, msg, sizeof msg), 0);
	s.action_force = false;
	PJ(sc, "%s/fold.json", out);
	json_t *j = load_json(sc);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(
		json_object_get(j, "layers"), 0), "seed")), 6);
	json_decref(j);
	s.opts.fold.seed = 5;
	FoldBreak br;
	assert_int_equal(fold_action_verify(&s, out, &br, msg, sizeof msg), 0);
	assert_true(br.equivalent);
	/* A broken fold: the first break is layer 1. */
	s.opts.fold.dropped = ASSUME_COMMUTES;
	PJ(out, "%s/tui-broken", f->dir);
	assert_int_equal(fold_action_export(&s, out, msg, sizeof msg), 0);
	assert_int_equal(fold_action_verify(&s, out, &br, msg, sizeof msg), 0);
	assert_false(br.equivalent);
	assert_int_equal(br.layer, 1);
	assert_non_null(strstr(msg, "layer 1"));
	assert_int_equal(fold_action_verify(&s, "/nonexistent", &br, msg, sizeof msg), -1);
	s.source = SOURCE_RANDOM;
	assert_int_equal(fold_action_export(&s, out, msg, sizeof msg), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gguf),
		cmocka_unit_test(test_gguf_narrow),
		cmocka_unit_test(test_llama2c),
		cmocka_unit_test(test_hf_folder),
		cmocka_unit_test(test_sharded),
		cmocka_unit_test(test_shard_subfolders),
		cmocka_unit_test(test_shard_subfolder_force),
		cmocka_unit_test(test_single_file),
		cmocka_unit_test(test_fused),
		cmocka_unit_test(test_qk_norm_all_heads),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_undo_report),
		cmocka_unit_test(test_tui_actions),
		cmocka_unit_test(test_tui_export_default),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
