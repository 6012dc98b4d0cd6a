#include "config.h"

/* Writes a seeded, Llama-3-8B-shaped HF checkpoint folder for the
 * whole-model benchmark (bench/model_run.sh): config.json as HF writes it
 * for LlamaForCausalLM (Llama 3.1's RoPE: theta 500000, llama3 scaling),
 * BF16 shards cut the way HF's save_pretrained cuts them (module order,
 * a new shard before the one that would pass the size limit; inside a
 * shard, tensors sorted by name as the safetensors library stores them),
 * and model.safetensors.index.json. The 8b shape writes about 16 GB: it
 * runs at bench time only, never in the test suite (that uses --shape
 * tiny, a few MB).
 *
 * Weights: every linear W (out x in) is N(0, 1/in), so a unit-rms input
 * gives unit-rms outputs; embeddings N(0, 1/D); norm weights 1 + N(0,
 * 0.02^2). With pre-norm residual blocks that keeps 32 layers of
 * activations and the logits finite and of order one. Values come from a
 * 65536-entry table of normal quantiles indexed by 16 random bits, from a
 * splitmix64 stream per (seed, tensor, block of 2^20 values): the same
 * seed gives the same bytes whatever the thread count.
 *
 * Resumable: a marker bench-model.json (shape, seed, complete or not) is
 * written first; each shard is written to a temporary, synced and renamed,
 * so a rerun keeps the finished shards and a complete folder is left
 * alone. Free disk is checked (statvfs) before anything is written.
 *
 * usage: gen_model [--shape 8b|tiny] [--seed N] [--size] DIR */

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

enum { FORMAT_VERSION = 1, BLOCK = 1 << 20, CHUNK_BLOCKS = 32, MAX_THREADS = 64 };
static const char MARKER[] = "bench-model.json";

/* ---- shapes ------------------------------------------------------------ */

typedef struct {
	const char *name;
	int layers, d_model, heads, kv_heads, head_dim, ffn, vocab;
	int bos, eos;
	uint64_t shard_limit;   /* bytes of tensor data per shard, as HF's max_shard_size */
} Shape;

static const Shape SHAPES[] = {
	{"8b", 32, 4096, 32, 8, 128, 14336, 128256, 128000, 128001, 5000000000ULL},
	{"tiny", 4, 256, 8, 2, 32, 512, 1024, 1, 2, 1600000ULL},
};

/* ---- the tensor list ------------------------------------------------------ */

typedef struct {
	char name[64];
	int64_t rows, cols;     /* cols 0: a vector of rows */
	double mean, std;
	int shard;              /* 0-based */
	uint64_t offset;        /* within the shard's data buffer */
} Tensor;

typedef struct {
	const Shape *shape;
	uint64_t seed;
	Tensor *t;
	size_t n;
	int shards;
	uint64_t shard_bytes[16];
	uint64_t total;         /* tensor bytes, as the index's total_size */
} Plan;

static uint64_t tensor_bytes(const Tensor *t)
{
	return (uint64_t)t->rows * (uint64_t)(t->cols ? t->cols : 1) * 2;
}

static void add(Plan *p, const char *name, int64_t rows, int64_t cols, double mean, double std)
{
	Tensor *t = &p->t[p->n++];
	snprintf(t->name, sizeof t->name, "%s", name);
	t->rows = rows;
	t->cols = cols;
	t->mean = mean;
	t->std = std;
}

static int by_shard_then_name(const void *a, const void *b)
{
	const Tensor *x = a, *y = b;
	if (x->shard != y->shard)
		return x->shard - y->shard;
	return strcmp(x->name, y->name);
}

/* Module order (embed, per layer: attention q k v o, MLP gate up down, the
 * two norms; final norm, head), cut into shards, then each shard sorted. */
static int plan_build(Plan *p, const Shape *s, uint64_t seed)
{
	memset(p, 0, sizeof *p);
	p->shape = s;
	p->seed = seed;
	p->t = calloc((size_t)s->layers * 9 + 3, sizeof *p->t);
	if (!p->t)
		return -1;
	const int64_t D = s->d_model, Q = (int64_t)s->heads * s->head_dim,
		      KV = (int64_t)s->kv_heads * s->head_dim, F = s->ffn;
	const double norm_std = 0.02;
	char nm[64];
	add(p, "model.embed_tokens.weight", s->vocab, D, 0, 1 / sqrt((double)D));
	for (int l = 0; l < s->layers; l++) {
#define NAME(suffix) (snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix), nm)
		add(p, NAME("self_attn.q_proj.weight"), Q, D, 0, 1 / sqrt((double)D));
		add(p, NAME("self_attn.k_proj.weight"), KV, D, 0, 1 / sqrt((double)D));
		add(p, NAME("self_attn.v_proj.weight"), KV, D, 0, 1 / sqrt((double)D));
		add(p, NAME("self_attn.o_proj.weight"), D, Q, 0, 1 / sqrt((double)Q));
		add(p, NAME("mlp.gate_proj.weight"), F, D, 0, 1 / sqrt((double)D));
		add(p, NAME("mlp.up_proj.weight"), F, D, 0, 1 / sqrt((double)D));
		add(p, NAME("mlp.down_proj.weight"), D, F, 0, 1 / sqrt((double)F));
		add(p, NAME("input_layernorm.weight"), D, 0, 1, norm_std);
		add(p, NAME("post_attention_layernorm.weight"), D, 0, 1, norm_std);
#undef NAME
	}
	add(p, "model.norm.weight", D, 0, 1, norm_std);
	add(p, "lm_head.weight", s->vocab, D, 0, 1 / sqrt((double)D));

	uint64_t cur = 0;
	for (size_t i = 0; i < p->n; i++) {
		uint64_t b = tensor_bytes(&p->t[i]);
		if (cur > 0 && cur + b > s->shard_limit) {
			p->shards++;
			cur = 0;
		}
		if (p->shards >= (int)(sizeof p->shard_bytes / sizeof p->shard_bytes[0]))
			return -1;
		p->t[i].shard = p->shards;
		cur += b;
		p->total += b;
	}
	p->shards++;
	qsort(p->t, p->n, sizeof *p->t, by_shard_then_name);
	for (size_t i = 0; i < p->n; i++) {
		p->t[i].offset = p->shard_bytes[p->t[i].shard];
		p->shard_bytes[p->t[i].shard] += tensor_bytes(&p->t[i]);
	}
	return 0;
}

static void shard_name(const Plan *p, int k, char *out, size_t n)
{
	snprintf(out, n, "model-%05d-of-%05d.safetensors", k + 1, p->shards);
}

/* The shard's header: {"__metadata__": {"format": "pt"}, name: {dtype,
 * shape, data_offsets}, ...} in data order, padded with spaces to a
 * multiple of 8 bytes (the safetensors recommendation). Caller frees. */
static char *shard_header(const Plan *p, int k, size_t *len)
{
	json_t *h = json_object();
	json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
	for (size_t i = 0; i < p->n; i++) {
		const Tensor *t = &p->t[i];
		if (t->shard != k)
			continue;
		json_t *shape = t->cols ? json_pack("[I,I]", (json_int_t)t->rows, (json_int_t)t->cols)
					: json_pack("[I]", (json_int_t)t->rows);
		json_object_set_new(h, t->name,
				    json_pack("{s:s, s:o, s:[I,I]}", "dtype", "BF16", "shape", shape,
					      "data_offsets", (json_int_t)t->offset,
					      (json_int_t)(t->offset + tensor_bytes(t))));
	}
	char *s = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	if (!s)
		return NULL;
	size_t n = strlen(s), padded = (n + 7) / 8 * 8;
	char *out = realloc(s, padded + 1);
	if (!out) {
		free(s);
		return NULL;
	}
	memset(out + n, ' ', padded - n);
	out[padded] = 0;
	*len = padded;
	return out;
}

static uint64_t shard_file_bytes(const Plan *p, int k)
{
	size_t len = 0;
	char *h = shard_header(p, k, &len);
	free(h);
	return h ? 8 + len + p->shard_bytes[k] : 0;
}

/* ---- values ----------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint16_t bf16_round(float f)  /* round to nearest even; inputs are finite */
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* table[i] = bf16(mean + std * Phi^-1((i + 0.5) / 65536)) */
static void quantile_table(uint16_t *table, double mean, double std)
{
	for (int i = 0; i < 65536; i++) {
		double pr = (i + 0.5) / 65536.0, lo = -10, hi = 10;
		for (int it = 0; it < 48; it++) {
			double mid = 0.5 * (lo + hi);
			if (0.5 * erfc(-mid / sqrt(2.0)) < pr)
				lo = mid;
			else
				hi = mid;
		}
		table[i] = bf16_round((float)(mean + std * 0.5 * (lo + hi)));
	}
}

typedef struct {
	const uint16_t *table;
	uint16_t *out;          /* the chunk, blocks [b0, b1) of the tensor */
	uint64_t key, first_block, nvalues, begin, end;
} Fill;

static void *fill_blocks(void *arg)
{
	Fill *f = arg;
	for (uint64_t b = f->begin; b < f->end; b++) {
		uint64_t s = f->key ^ ((f->first_block + b) * 0xD1B54A32D192ED03ULL);
		splitmix64(&s);
		uint16_t *o = f->out + b * BLOCK;
		uint64_t n = f->nvalues - b * BLOCK < BLOCK ? f->nvalues - b * BLOCK : BLOCK;
		for (uint64_t i = 0; i < n; i += 4) {
			uint64_t r = splitmix64(&s);
			for (uint64_t j = 0; j < 4 && i + j < n; j++)
				o[i + j] = f->table[(r >> (16 * j)) & 0xFFFF];
		}
	}
	return NULL;
}

/* ---- writing ------------------------------------------------------------------ */

static int write_all(int fd, const void *buf, size_t n, const char *path)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "gen_model: %s: %s\n", path, strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

enum { MAX_TABLES = 8 };

typedef struct {
	int threads;
	uint16_t *chunk;        /* CHUNK_BLOCKS * BLOCK values */
	int ntables;
	uint16_t table[MAX_TABLES][65536];  /* one per (mean, std) met so far */
	double tmean[MAX_TABLES], tstd[MAX_TABLES];
} Writer;

static const uint16_t *writer_table(Writer *w, double mean, double std)
{
	for (int i = 0; i < w->ntables; i++)
		if (w->tmean[i] == mean && w->tstd[i] == std)
			return w->table[i];
	int i = w->ntables < MAX_TABLES ? w->ntables++ : MAX_TABLES - 1;
	quantile_table(w->table[i], mean, std);
	w->tmean[i] = mean;
	w->tstd[i] = std;
	return w->table[i];
}

static int write_tensor(Writer *w, const Plan *p, size_t ti, int fd, const char *path)
{
	const Tensor *t = &p->t[ti];
	const uint16_t *table = writer_table(w, t->mean, t->std);
	/* the stream key depends on the name, not the position in a shard */
	uint64_t key = p->seed * 0x9E3779B97F4A7C15ULL;
	for (const char *c = t->name; *c; c++)
		key = (key ^ (uint8_t)*c) * 0x100000001B3ULL;
	uint64_t nv = tensor_bytes(t) / 2;
	for (uint64_t done = 0; done < nv;) {
		uint64_t n = nv - done < (uint64_t)CHUNK_BLOCKS * BLOCK ? nv - done
									: (uint64_t)CHUNK_BLOCKS * BLOCK;
		uint64_t blocks = (n + BLOCK - 1) / BLOCK;
		Fill f[MAX_THREADS];
		pthread_t th[MAX_THREADS];
		int nt = w->threads < (int)blocks ? w->threads : (int)blocks;
		for (int k = 0; k < nt; k++) {
			f[k] = (Fill){table, w->chunk, key, done / BLOCK, n,
				      blocks * (uint64_t)k / (uint64_t)nt,
				      blocks * (uint64_t)(k + 1) / (uint64_t)nt};
			if (k > 0 && pthread_create(&th[k], NULL, fill_blocks, &f[k]) != 0) {
				fprintf(stderr, "gen_model: cannot start a thread\n");
				return -1;
			}
		}
		fill_blocks(&f[0]);
		for (int k = 1; k < nt; k++)
			pthread_join(th[k], NULL);
		if (write_all(fd, w->chunk, n * 2, path) != 0)
			return -1;
		done += n;
	}
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int write_shard(Writer *w, const Plan *p, int k, const char *dir)
{
	char name[64], path[4096], tmp[4200];
	shard_name(p, k, name, sizeof name);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	snprintf(tmp, sizeof tmp, "%s.partial", path);
	size_t hlen = 0;
	char *h = shard_header(p, k, &hlen);
	if (!h)
		return -1;
	double t0 = now();
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "gen_model: %s: %s\n", tmp, strerror(errno));
		free(h);
		return -1;
	}
	unsigned char le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
	int rc = write_all(fd, le, 8, tmp) || write_all(fd, h, hlen, tmp);
	free(h);
	for (size_t i = 0; rc == 0 && i < p->n; i++)
		if (p->t[i].shard == k)
			rc = write_tensor(w, p, i, fd, tmp);
	if (rc == 0 && fsync(fd) != 0) {
		fprintf(stderr, "gen_model: %s: %s\n", tmp, strerror(errno));
		rc = -1;
	}
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0) {
		fprintf(stderr, "gen_model: %s: %s\n", path, strerror(errno));
		rc = -1;
	}
	if (rc != 0) {
		unlink(tmp);
		return -1;
	}
	double dt = now() - t0;
	fprintf(stderr, "gen_model: %s, %.2f GB in %.1f s (%.0f MB/s)\n", name,
		(8 + hlen + p->shard_bytes[k]) / 1e9, dt, (8 + hlen + p->shard_bytes[k]) / 1e6 / dt);
	return 0;
}

/* json to DIR/NAME through a temporary and a rename */
static int write_json(json_t *j, const char *dir, const char *name, size_t flags)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	snprintf(tmp, sizeof tmp, "%s.partial", path);
	int rc = json_dump_file(j, tmp, flags);
	json_decref(j);
	if (rc == 0) {
		FILE *f = fopen(tmp, "a");
		rc = !f || fputc('\n', f) == EOF || fclose(f) != 0;
	}
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -1;
	if (rc != 0) {
		fprintf(stderr, "gen_model: cannot write %s\n", path);
		unlink(tmp);
	}
	return rc ? -1 : 0;
}

/* config.json with the keys HF's LlamaConfig writes (sorted, as
 * save_pretrained sorts them), values as in Meta's Llama 3.1 8B. */
static json_t *hf_config(const Shape *s)
{
	return json_pack(
		"{s:[s], s:b, s:f, s:i, s:i, s:s, s:i, s:f, s:i, s:i, s:b, s:s, s:i, s:i,"
		" s:i, s:i, s:f, s:{s:f, s:f, s:f, s:i, s:s}, s:f, s:b, s:s, s:s, s:b, s:i}",
		"architectures", "LlamaForCausalLM", "attention_bias", 0, "attention_dropout", 0.0,
		"bos_token_id", s->bos, "eos_token_id", s->eos,
		"hidden_act", "silu", "hidden_size", s->d_model, "initializer_range", 0.02,
		"intermediate_size", s->ffn, "max_position_embeddings", 131072, "mlp_bias", 0,
		"model_type", "llama", "num_attention_heads", s->heads, "num_hidden_layers",
		s->layers, "num_key_value_heads", s->kv_heads, "pretraining_tp", 1,
		"rms_norm_eps", 1e-5, "rope_scaling", "factor", 8.0, "high_freq_factor", 4.0,
		"low_freq_factor", 1.0, "original_max_position_embeddings", 8192, "rope_type",
		"llama3", "rope_theta", 500000.0, "tie_word_embeddings", 0, "torch_dtype",
		"bfloat16", "transformers_version", "4.43.0", "use_cache", 1, "vocab_size",
		s->vocab);
}

static json_t *hf_index(const Plan *p)
{
	json_t *map = json_object();
	char name[64];
	for (size_t i = 0; i < p->n; i++) {
		shard_name(p, p->t[i].shard, name, sizeof name);
		json_object_set_new(map, p->t[i].name, json_string(name));
	}
	return json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)p->total,
			 "weight_map", map);
}

static json_t *marker(const Plan *p, int complete)
{
	return json_pack("{s:s, s:i, s:s, s:I, s:i, s:I, s:b}", "generator", "bench/gen_model",
			 "format_version", FORMAT_VERSION, "shape", p->shape->name, "seed",
			 (json_int_t)p->seed, "shards", p->shards, "total_size",
			 (json_int_t)p->total, "complete", complete);
}

/* ---- the folder's state ---------------------------------------------------------- */

typedef enum { DIR_EMPTY, DIR_PARTIAL, DIR_COMPLETE, DIR_FOREIGN } DirState;

static DirState dir_state(const Plan *p, const char *dir, char *why, size_t nwhy)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, MARKER);
	json_error_t err;
	json_t *m = json_load_file(path, 0, &err);
	if (!m) {
		char cfg[4096];
		struct stat st;
		snprintf(cfg, sizeof cfg, "%s/config.json", dir);
		if (stat(cfg, &st) == 0) {
			snprintf(why, nwhy, "%s holds a checkpoint without %s", dir, MARKER);
			return DIR_FOREIGN;
		}
		return DIR_EMPTY;
	}
	const char *shape = NULL;
	json_int_t seed = -1, ver = -1;
	int complete = 0;
	json_unpack(m, "{s?:s, s?:I, s?:I, s?:b}", "shape", &shape, "seed", &seed,
		    "format_version", &ver, "complete", &complete);
	DirState st = DIR_PARTIAL;
	if (!shape || strcmp(shape, p->shape->name) != 0 || seed != (json_int_t)p->seed ||
	    ver != FORMAT_VERSION) {
		snprintf(why, nwhy, "%s holds another generated model (shape %s, seed %lld, format %lld)",
			 path, shape ? shape : "?", (long long)seed, (long long)ver);
		st = DIR_FOREIGN;
	} else if (complete) {
		st = DIR_COMPLETE;
	}
	json_decref(m);
	return st;
}

static int shard_done(const Plan *p, int k, const char *dir)
{
	char name[64], path[4096];
	struct stat st;
	shard_name(p, k, name, sizeof name);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &st) == 0 && (uint64_t)st.st_size == shard_file_bytes(p, k);
}

static int mkdir_p(const char *dir)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", dir);
	for (char *c = buf + 1; *c; c++)
		if (*c == '/') {
			*c = 0;
			if (mkdir(buf, 0755) != 0 && errno != EEXIST)
				return -1;
			*c = '/';
		}
	return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: gen_model [--shape 8b|tiny] [--seed N] [--size] DIR\n");
	return 2;
}

/* Everything after the arguments: the size, or the folder's state, the
 * disk check and the writing. 0 done, 1 an I/O failure, 2 a refusal. */
static int generate(const Plan *p, const char *dir, int size_only)
{
	uint64_t need = 4096 * 3;  /* config, index, marker */
	for (int k = 0; k < p->shards; k++)
		need += shard_file_bytes(p, k);
	if (size_only) {  /* bytes the complete folder takes */
		printf("%llu\n", (unsigned long long)need);
		return 0;
	}
	if (!dir)
		return usage();
	if (mkdir_p(dir) != 0) {
		fprintf(stderr, "gen_model: %s: %s\n", dir, strerror(errno));
		return 2;
	}
	char why[8300];
	DirState st = dir_state(p, dir, why, sizeof why);
	if (st == DIR_FOREIGN) {
		fprintf(stderr, "gen_model: %s; remove it or choose another folder\n", why);
		return 2;
	}
	if (st == DIR_COMPLETE) {
		fprintf(stderr, "gen_model: %s is complete (shape %s, seed %llu): nothing to do\n", dir,
			p->shape->name, (unsigned long long)p->seed);
		return 0;
	}
	for (int k = 0; k < p->shards; k++)
		if (st == DIR_PARTIAL && shard_done(p, k, dir))
			need -= shard_file_bytes(p, k);
	struct statvfs vfs;
	if (statvfs(dir, &vfs) != 0) {
		fprintf(stderr, "gen_model: %s: %s\n", dir, strerror(errno));
		return 2;
	}
	uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize, margin = 1ULL << 30;
	if (avail < need + margin) {
		fprintf(stderr, "gen_model: %s: needs %.1f GB free (and 1 GB to spare), has %.1f GB\n",
			dir, need / 1e9, avail / 1e9);
		return 2;
	}
	fprintf(stderr, "gen_model: writing a %s-shaped BF16 checkpoint (seed %llu) into %s: "
		"%.2f GB to write, %d shards; bench time only\n", p->shape->name,
		(unsigned long long)p->seed, dir, need / 1e9, p->shards);
	if (write_json(marker(p, 0), dir, MARKER, JSON_INDENT(2)) != 0)
		return 1;
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	Writer *w = calloc(1, sizeof *w);
	if (w)
		w->chunk = malloc((size_t)CHUNK_BLOCKS * BLOCK * 2);
	if (!w || !w->chunk) {
		fprintf(stderr, "gen_model: out of memory\n");
		free(w);
		return 1;
	}
	w->threads = nproc < 1 ? 1 : nproc > MAX_THREADS ? MAX_THREADS : (int)nproc;
	double t0 = now();
	int written = 0;
	for (int k = 0; k < p->shards; k++) {
		if (shard_done(p, k, dir)) {
			fprintf(stderr, "gen_model: shard %d of %d already written\n", k + 1, p->shards);
			written++;
			continue;
		}
		if (write_shard(w, p, k, dir) != 0)
			break;
		written++;
	}
	free(w->chunk);
	free(w);
	if (written < p->shards)
		return 1;
	size_t real = JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(8);
	if (write_json(hf_config(p->shape), dir, "config.json", real) != 0 ||
	    write_json(hf_index(p), dir, "model.safetensors.index.json",
		       JSON_INDENT(2) | JSON_SORT_KEYS) != 0 ||
	    write_json(marker(p, 1), dir, MARKER, JSON_INDENT(2)) != 0)
		return 1;
	fprintf(stderr, "gen_model: done in %.1f s\n", now() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	const Shape *shape = &SHAPES[0];
	uint64_t seed = 1;
	int size_only = 0;
	const char *dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc) {
			shape = NULL;
			for (size_t k = 0; k < sizeof SHAPES / sizeof SHAPES[0]; k++)
				if (strcmp(argv[i + 1], SHAPES[k].name) == 0)
					shape = &SHAPES[k];
			if (!shape) {
				fprintf(stderr, "gen_model: --shape %s: not 8b or tiny\n", argv[i + 1]);
				return 2;
			}
			i++;
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			char *end;
			errno = 0;
			seed = strtoull(argv[++i], &end, 10);
			if (errno || *end || !*argv[i]) {
				fprintf(stderr, "gen_model: --seed %s: not a number\n", argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--size") == 0) {
			size_only = 1;
		} else if (argv[i][0] == '-' || dir) {
			return usage();
		} else {
			dir = argv[i];
		}
	}
	Plan p;
	if (plan_build(&p, shape, seed) != 0) {
		fprintf(stderr, "gen_model: out of memory\n");
		free(p.t);
		return 1;
	}
	int rc = generate(&p, dir, size_only);
	free(p.t);
	return rc;
}
