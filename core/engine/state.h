#ifndef ROPEFOLD_CORE_ENGINE_STATE_H
#define ROPEFOLD_CORE_ENGINE_STATE_H

/* ======================= the engine's state ============================ */

typedef struct Engine Engine;

/* Per-worker scratch: one arena, carved differently by each phase. */
typedef struct {
	REAL *arena;            /* arena_n entries */
	size_t arena_n;
	double *boref;          /* T: the original's max |score| by offset,
				 * reversed (index T-1-offset) */
	double *evrow;          /* T: one row's score errors */
	double *h_err, *h_ref;  /* H: head-level partials of this worker */
	size_t *h_idx;          /* H: m * D + c of the worker's worst */
	unsigned *h_ovf;        /* H: OVERFLOW_* bits there (error +Inf) */
	double r_err, r_ref;    /* residual partials */
	size_t r_idx;
	unsigned r_ovf;
	double flops;
	double fold_sec;        /* seconds spent folding in this phase */
} Worker;

/* Small tensors of one side in the compute precision. */
typedef struct {
	REAL *bq, *bk, *bv, *bo, *qn, *kn;
} Small;

/* A float conversion task: n entries. */
typedef struct {
	const double *src;
	REAL *dst;
	size_t n;
} ConvTask;

struct Engine {
	const Layer *a;
	const RopeTable *rope;
	size_t T, D, H, G, d, hpg, nq, nk, B, nworkers;
	size_t tb, nc;              /* outputs: token chunk, coordinate block */
	size_t fold_heads;          /* heads folded per projection task */
	const REAL *x;              /* T x D input (float: own copy) */
	REAL *x_own;
	/* the weights in the compute precision: W_q (H*d x D), W_k, W_v
	 * (G*d x D), W_o (D x H*d) */
	const REAL *wa[4];          /* of a (float: own copies, wa_own) */
	REAL *wa_own[4];
	const REAL *ws[4];          /* of this run's src */
	REAL *ws_own[4];            /* float copies when src is not a */
	size_t wsize[4];            /* entries of each */
	Small sm_a, sm_b;
	double *small64;            /* nq + 2 nk: folded biases in double */
	REAL *qa, *ka, *va;         /* T x nq, T x nk, T x nk (after RoPE) */
	REAL *qb, *kb, *vb;
	REAL *ca, *cb;              /* T x nq contexts */
	bool fused;                 /* outputs by the fused kernel */
	/* phase O on one block of model coordinates: out_block_gemm or
	 * out_block_fused (outputs.h), chosen when the engine opens */
	void (*out_block)(Engine *e, Worker *w, size_t blk);
	REAL *cpa, *cpb;            /* H x rows x d: contexts packed for it */
	size_t cp_rows;
	REAL *ua;                   /* T x D: U of the original */
	REAL *ocache;               /* n_ocache x T x D: O_h of the original */
	size_t n_ocache;
	REAL *pcache;               /* H x T x T: the folded side's P_h (causal
				     * row blocks), NULL when the budget is short */
	Worker *w;
	/* per-head results, kept for heads a toggle does not touch */
	double *s_err, *s_ref;      /* H */
	size_t *s_m, *s_n;          /* H */
	unsigned *s_ovf;            /* H: OVERFLOW_* bits at (s_m, s_n) */
	double *byoff;              /* H x T */
	double *byoff_ref;          /* T: max |score| of the original */
	double *heat;               /* H x B x B */
	double *h_err, *h_ref;      /* H */
	size_t *h_idx;              /* H */
	unsigned *h_ovf;            /* H */
	double r_err, r_ref;
	size_t r_idx;
	unsigned r_ovf;
	bool orig_ready;            /* the original side's caches are valid */
	bool results_valid;         /* the per-head results are valid */
	/* this run's plan */
	const Layer *b;             /* src: the folded side's shape, norms, b_o */
	const FoldPlan *plan;       /* NULL: src as it is */
	bool *q_chg, *k_chg, *v_chg, *o_chg;   /* projections (H, G, G), W_o (H) */
	bool *s_chg, *c_chg;                   /* scores, contexts (H) */
	TaskQueue queue;
	struct ProjTask *ptask;
	size_t n_ptask, max_ptask;
	ConvTask *ctask;
	size_t n_ctask, max_ctask;
	size_t n_cblocks;           /* output coordinate blocks */
	size_t *heads;              /* H: the heads of phase S */
	size_t n_heads_run;
	double flops;
	double sec[ATTN_PHASE_COUNT];  /* wall-clock seconds of the last run */
};

typedef struct ProjTask {
	int side;                   /* 0: original, 1: folded */
	int part;                   /* 0 q, 1 k, 2 v */
	size_t h0, nh;              /* heads (part 0) or kv groups h0 .. h0+nh-1 */
} ProjTask;

/* |a - b| as the comparisons take it: a NaN difference (a side
 * overflowed: Inf - Inf, 0 Inf, or a NaN carried along) counts as an
 * infinite error, so an overflow wins every max and the first place it
 * wins names it. */
static inline double err_of(double a, double b)
{
	double e = fabs(a - b);
	return e == e ? e : INFINITY;
}

/* Where a compared pair is not finite: OVERFLOW_* bits, for an error that
 * err_of made +Inf. */
static unsigned ovf_side(double a, double b)
{
	unsigned s = (isfinite(a) ? 0 : OVERFLOW_ORIGINAL) |
		     (isfinite(b) ? 0 : OVERFLOW_FOLDED);
	return s ? s : OVERFLOW_DIFFERENCE;
}

#endif
