#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/diagnose.h"
#include "core/parallel.h"
#include "core/rope.h"

/* Below this, a Frobenius norm of an O(1) matrix is roundoff. */
#define DIAG_ZERO 1e-10

/* ||A^T B - I||_F for d x d matrices (work: d x d). */
static double gram_defect(const double *A, const double *B, size_t d,
			  double *work)
{
	cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d,
		    (int)d, 1.0, A, (int)d, B, (int)d, 0.0, work, (int)d);
	double s = 0;
	for (size_t i = 0; i < d; i++)
		for (size_t j = 0; j < d; j++) {
			double v = work[i * d + j] - (i == j ? 1.0 : 0.0);
			s += v * v;
		}
	return sqrt(s);
}

static double diff_norm(const double *A, const double *B, size_t d)
{
	double s = 0;
	for (size_t i = 0; i < d * d; i++)
		s += (A[i] - B[i]) * (A[i] - B[i]);
	return sqrt(s);
}

/* The commutator K = R Th - Th R of R with Theta_1; its Frobenius norm,
 * and the block norms (map_size x map_size) into map when not NULL. */
static double commutator(const double *R, const double *Th, size_t d,
			 const RopeSpec *rope, size_t ms, double *map,
			 double *work)
{
	double s = 0;
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)d,
		    (int)d, 1.0, R, (int)d, Th, (int)d, 0.0, work, (int)d);
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)d,
		    (int)d, -1.0, Th, (int)d, R, (int)d, 1.0, work, (int)d);
	for (size_t i = 0; i < d * d; i++)
		s += work[i] * work[i];
	if (map) {
		memset(map, 0, ms * ms * sizeof(double));
		for (size_t i = 0; i < d; i++)
			for (size_t j = 0; j < d; j++) {
				size_t gi = rope_coord_pair(rope->layout, rope->rotary_dim, i);
				size_t gj = rope_coord_pair(rope->layout, rope->rotary_dim, j);
				map[gi * ms + gj] += work[i * d + j] * work[i * d + j];
			}
		for (size_t i = 0; i < ms * ms; i++)
			map[i] = sqrt(map[i]);
	}
	return sqrt(s);
}

/* The offset at which a block of R mixing groups i and j changes scores
 * by O(1): the phase between them drifts by one radian. */
static size_t break_offset_of(const double *freqs, size_t np, size_t i, size_t j)
{
	double wi = i < np ? freqs[i] : 0.0, wj = j < np ? freqs[j] : 0.0;
	double dw = (i == j) ? 2.0 * wi : fabs(wi - wj);
	if (!(dw > 0))
		return 0;
	double n = ceil(1.0 / dw);
	return n > 1e15 ? (size_t)1e15 : (size_t)n;
}

/* The products of the diagnosis, per rotation: independent of each other,
 * so they are spread over workers; the maxima are taken afterwards in
 * index order, as a serial loop would. */
typedef struct {
	const Layer *l;
	const FoldPlan *plan;
	Diagnostics *dg;
	const double *Th;
	double *work;           /* nworkers x d x d */
	double *od;             /* H + 2G: ortho defects of R_q, R_k, R_v */
	double *vo;             /* H: ||R_o^T R_v - I|| per query head */
	TaskQueue queue;        /* H head tasks, then G group tasks */
} DiagJob;

static void diag_worker(void *ctx, size_t wi)
{
	DiagJob *j = ctx;
	const Layer *l = j->l;
	const FoldPlan *plan = j->plan;
	Diagnostics *dg = j->dg;
	size_t H = l->shape.n_heads, G = l->shape.n_kv_heads;
	size_t d = l->shape.head_dim, dd = d * d, hpg = H / G, ms = dg->map_size;
	double *work = j->work + wi * dd;
	for (size_t t; (t = task_queue_next(&j->queue)) != (size_t)-1;) {
		if (t < H) {
			size_t h = t, g = h / hpg;
			const double *R = plan->rq + h * dd;
			j->od[h] = gram_defect(R, R, d, work);
			dg->comm_q[h] = commutator(R, j->Th, d, &l->rope, ms,
						   dg->pair_map + h * ms * ms, work);
			j->vo[h] = gram_defect(plan->ro + h * dd, plan->rv + g * dd, d,
					       work);
		} else {
			size_t g = t - H;
			const double *Rk = plan->rk + g * dd, *Rv = plan->rv + g * dd;
			j->od[H + g] = gram_defect(Rk, Rk, d, work);
			j->od[H + G + g] = gram_defect(Rv, Rv, d, work);
			dg->comm_k[g] = commutator(Rk, j->Th, d, &l->rope, ms, NULL,
						   work);
		}
	}
}

RfStatus diagnose_plan(const Layer *l, const FoldConfig *cfg,
		       const FoldPlan *plan, InvReport *rep)
{
	return diagnose_plan_threads(l, cfg, plan, 1, rep);
}

RfStatus diagnose_plan_threads(const Layer *l, const FoldConfig *cfg,
			       const FoldPlan *plan, size_t threads,
			       InvReport *rep)
{
	Diagnostics *dg = &rep->diag;
	size_t H = l->shape.n_heads, G = l->shape.n_kv_heads;
	size_t d = l->shape.head_dim, dd = d * d, hpg = H / G;
	size_t np = dg->npairs, ms = dg->map_size;
	size_t nw = threads ? threads : 1;
	if (nw > H + G)
		nw = H + G;
	/* one block: Th (d x d), the workers' d x d scratch, od, vo */
	double *Th = malloc((dd * (1 + nw) + 2 * H + 2 * G) * sizeof(double));
	if (!Th)
		return RF_ERR_NOMEM;
	DiagJob job = {l, plan, dg, Th, Th + dd, Th + dd * (1 + nw), NULL, {0}};
	job.vo = job.od + H + 2 * G;
	rope_frequencies_at(&l->rope, rep->seq, dg->freqs);   /* longrope: at this T */
	rope_theta_matrix(dg->freqs, l->rope.layout, l->rope.rotary_dim, d, 1.0, Th);
	task_queue_init(&job.queue, H + G);
	RfStatus st = parallel_run(nw, diag_worker, &job);
	if (st != RF_OK) {
		free(Th);
		return st;
	}

	dg->ortho_defect = 0;
	dg->comm_max = 0;
	dg->mix_norm = 0;
	dg->break_offset = 0;
	struct { size_t base, n; char part; } sets[] = {
		{0, H, 'q'}, {H, G, 'k'}, {H + G, G, 'v'},
	};
	for (size_t s = 0; s < 3; s++)
		for (size_t i = 0; i < sets[s].n; i++) {
			double od = job.od[sets[s].base + i];
			if (od > dg->ortho_defect) {
				dg->ortho_defect = od;
				dg->ortho_part = sets[s].part;
				dg->ortho_head = i;
			}
		}
	for (size_t h = 0; h < H; h++) {
		const double *map = dg->pair_map + h * ms * ms;
		if (dg->comm_q[h] > dg->comm_max)
			dg->comm_max = dg->comm_q[h];
		for (size_t i = 0; i < ms; i++)
			for (size_t j = 0; j < ms; j++) {
				double v = map[i * ms + j];
				if (v <= DIAG_ZERO)
					continue;
				/* Prefer naming a mixing of two pairs over a
				 * defect inside one pair: it is the root cause. */
				bool off = i != j;
				bool cur_off = dg->mix_i != dg->mix_j;
				if (dg->mix_norm == 0 || (off && !cur_off) ||
				    (off == cur_off && v > dg->mix_norm)) {
					dg->mix_norm = v;
					dg->mix_head = h;
					dg->mix_i = i < j ? i : j;
					dg->mix_j = i < j ? j : i;
				}
				size_t bo = break_offset_of(dg->freqs, np, i, j);
				if (bo && (!dg->break_offset || bo < dg->break_offset))
					dg->break_offset = bo;
			}
	}
	for (size_t g = 0; g < G; g++) {
		if (dg->comm_k[g] > dg->comm_max)
			dg->comm_max = dg->comm_k[g];
	}
	dg->qk_mismatch = dg->gqa_mismatch = dg->vo_mismatch = 0;
	for (size_t h = 0; h < H; h++) {
		size_t g = h / hpg;
		double v = diff_norm(plan->rq + h * dd, plan->rk + g * dd, d);
		if (v > dg->qk_mismatch) {
			dg->qk_mismatch = v;
			dg->qk_mismatch_head = h;
		}
		v = diff_norm(plan->rq + h * dd, plan->rq + g * hpg * dd, d);
		if (v > dg->gqa_mismatch) {
			dg->gqa_mismatch = v;
			dg->gqa_mismatch_head = h;
		}
		v = job.vo[h];
		if (v > dg->vo_mismatch) {
			dg->vo_mismatch = v;
			dg->vo_mismatch_head = h;
		}
	}
	bool drop_bias = cfg->dropped & ASSUME_BIAS;
	dg->qk_bias_unrotated = drop_bias && (l->bq || l->bk) &&
				(cfg->rotate & (PART_Q | PART_K));
	dg->v_bias_unrotated = drop_bias && l->bv && (cfg->rotate & PART_V);
	dg->qk_norm_pair_defect = 0;
	const double *norms[2] = {l->q_norm, l->k_norm};
	size_t lens[2] = {l->qk_norm_per_head ? d : H * d,
			  l->qk_norm_per_head ? d : G * d};
	for (int s = 0; s < 2; s++) {
		if (!norms[s])
			continue;
		for (size_t base = 0; base + d <= lens[s]; base += d)
			for (size_t i = 0; i < np; i++) {
				size_t a, b;
				rope_pair_coords(l->rope.layout, l->rope.rotary_dim, i, &a, &b);
				double v = fabs(norms[s][base + a] - norms[s][base + b]);
				if (v > dg->qk_norm_pair_defect)
					dg->qk_norm_pair_defect = v;
			}
	}
	dg->heads_permuted = false;
	for (size_t g = 0; g < G; g++)
		if (plan->perm[g] != g)
			dg->heads_permuted = true;
	free(Th);
	return RF_OK;
}

/* ---- explanation --------------------------------------------------------- */

typedef struct {
	char *buf;
	size_t len, cap;
} Text;

static void say(Text *t, const char *fmt, ...)
{
	va_list ap;
	if (t->len + 1 >= t->cap)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n < t->cap - t->len ? (size_t)n : t->cap - t->len - 1;
}

static void name_group(const Diagnostics *dg, size_t i, char *out, size_t n)
{
	if (i >= dg->npairs)
		snprintf(out, n, "the non-rotary block");
	else
		snprintf(out, n, "pair %zu", i);
}

/* Why the Q/K side breaks scores, most basic cause first. */
static void why_scores(Text *t, const Layer *l, const FoldConfig *cfg,
		       const InvReport *rep)
{
	const Diagnostics *dg = &rep->diag;
	bool rq = cfg->rotate & PART_Q, rk = cfg->rotate & PART_K;
	if (rq != rk) {
		say(t, " Only %s is rotated, so q.k sees R instead of R^T R = I.",
		    rq ? "Q" : "K");
		return;
	}
	if (!rq)
		return;
	if (cfg->layout_set && cfg->layout != l->rope.layout)
		say(t, " The fold was built for the %s layout, but this layer's RoPE "
		       "pairs are %s (what its runtime applies): in these pairs the "
		       "rotation mixes frequencies.", rope_layout_name(cfg->layout),
		    rope_layout_name(l->rope.layout));
	if (dg->ortho_defect > DIAG_ZERO && dg->ortho_part != 'v')
		say(t, " R_%c of head %zu is not orthogonal (||R^T R - I|| = %.3g).",
		    dg->ortho_part, dg->ortho_head, dg->ortho_defect);
	if (dg->qk_mismatch > DIAG_ZERO)
		say(t, " Q and K are rotated differently (||R_q - R_k|| = %.3g at head %zu).",
		    dg->qk_mismatch, dg->qk_mismatch_head);
	if (dg->gqa_mismatch > DIAG_ZERO)
		say(t, " Query heads of one kv group carry different rotations (head %zu), "
		       "but they share one k.", dg->gqa_mismatch_head);
	if (dg->mix_norm > DIAG_ZERO) {
		char a[32], b[32];
		name_group(dg, dg->mix_i, a, sizeof a);
		name_group(dg, dg->mix_j, b, sizeof b);
		if (dg->mix_i == dg->mix_j)
			say(t, " R_q of head %zu does not commute with RoPE: inside %s it is "
			       "not a rotation (a reflection or a scale), so Theta_p turns "
			       "into Theta_-p there.", dg->mix_head, a);
		else
			say(t, " R_q of head %zu does not commute with RoPE: it mixes %s and "
			       "%s, which turn at different frequencies.", dg->mix_head, a, b);
	}
	if (dg->qk_bias_unrotated)
		say(t, " The q/k biases were left unrotated while their weights turned.");
	if (dg->qk_norm_pair_defect > 0)
		say(t, " The learned QK-norm weight differs within a RoPE pair (by %.3g), "
		       "so the norm does not commute with the rotation.",
		    dg->qk_norm_pair_defect);
	(void)l;
}

static void why_vo(Text *t, const Layer *l, const FoldConfig *cfg,
		   const InvReport *rep)
{
	const Diagnostics *dg = &rep->diag;
	bool rv = cfg->rotate & PART_V, ro = cfg->rotate & PART_O;
	if (rv && !ro)
		say(t, " V is rotated but O does not absorb R_v^T.");
	else if (ro && !rv)
		say(t, " O absorbs R_v^T although V was not rotated.");
	else if (rv && dg->vo_mismatch > DIAG_ZERO)
		say(t, " O's R_v^T does not undo R_v (||R_o^T R_v - I|| = %.3g at head %zu): "
		       "R_v is not orthogonal.", dg->vo_mismatch, dg->vo_mismatch_head);
	if (dg->v_bias_unrotated)
		say(t, " The v bias was left unrotated.");
	(void)l;
}

/* Beyond this many units of epsilon an error is no longer roundoff. */
#define DIAG_ROUNDOFF_EPS 1e4

static const char *verdict(const LevelResult *L)
{
	return L->overflow ? "overflows" : L->holds ? "holds" : "breaks";
}

/* Where a level's first overflow is, in words. */
static void overflow_place(const LevelResult *L, LevelId id, char *buf, size_t n)
{
	if (id == LEVEL_SCORE)
		snprintf(buf, n, "head %zu, (m, n) = (%zu, %zu)", L->worst_head,
			 L->worst_m, L->worst_n);
	else if (id == LEVEL_HEAD)
		snprintf(buf, n, "head %zu, token %zu, coordinate %zu", L->worst_head,
			 L->worst_m, L->worst_coord);
	else
		snprintf(buf, n, "token %zu, coordinate %zu", L->worst_m, L->worst_coord);
}

static const char *overflow_side(unsigned bits)
{
	if ((bits & OVERFLOW_ORIGINAL) && (bits & OVERFLOW_FOLDED))
		return "on both sides";
	if (bits & OVERFLOW_ORIGINAL)
		return "on the original side";
	if (bits & OVERFLOW_FOLDED)
		return "on the folded side";
	return "in the difference of the two sides";
}

/* Where the first (weakest) overflowing level overflows, which levels
 * follow, and what to do: a float32 overflow goes away in float64. */
static void why_overflow(Text *t, const InvReport *rep)
{
	int first = -1;
	bool guaranteed = false;
	for (int i = 0; i < LEVEL_COUNT; i++)
		if (rep->level[i].overflow) {
			if (first < 0)
				first = i;
			guaranteed |= rep->level[i].guaranteed;
		}
	if (first < 0)
		return;
	const LevelResult *L = &rep->level[first];
	static const char *const subject[LEVEL_COUNT] = {
		"The scores overflow", "The head outputs overflow", "The residual overflows"};
	static const char *const follows[LEVEL_COUNT] = {
		"the scores", "the head outputs", "the residual"};
	char at[96];
	overflow_place(L, (LevelId)first, at, sizeof at);
	bool f32 = rep->precision == PREC_F32;
	/* the way out first: the explorer shows two lines of this */
	say(t, "%s%s %s at %s (%s): %s.", t->len ? " " : "", subject[first],
	    f32 ? "float32" : "float64", at, overflow_side(L->overflow),
	    f32 ? "use --precision f64" : "the layer's values are too large for float64");
	int more = 0;
	for (int i = first + 1; i < LEVEL_COUNT; i++)
		if (rep->level[i].overflow)
			say(t, "%s %s", more++ ? " and" : i == LEVEL_RESIDUAL ? " So does" : " So do",
			    follows[i]);
	if (more)
		say(t, ".");
	if (f32)
		say(t, " Float32 cannot hold these values, so %s.",
		    guaranteed ? "what the theorem guarantees cannot be confirmed here"
			       : "this comparison shows nothing");
	else
		say(t, " %s.", guaranteed ? "What the theorem guarantees cannot be confirmed here"
					  : "This comparison shows nothing");
}

void diagnose_explain(const Layer *l, const FoldConfig *cfg, InvReport *rep)
{
	Text t = {rep->explanation, 0, sizeof rep->explanation};
	const LevelResult *ls = &rep->level[LEVEL_SCORE];
	const LevelResult *lh = &rep->level[LEVEL_HEAD];
	const LevelResult *lr = &rep->level[LEVEL_RESIDUAL];
	const Diagnostics *dg = &rep->diag;
	rep->explanation[0] = 0;

	bool ovf = ls->overflow || lh->overflow || lr->overflow;
	if (ls->holds && lh->holds && lr->holds) {
		if (cfg->rotate == 0)
			say(&t, "Nothing is rotated: the folded layer is the original.");
		else {
			/* the worst of the three levels; "exact" only while that
			 * is plausibly roundoff (a raised --tol can let more hold) */
			double rel = ls->max_rel_err, eps = ls->eps_units;
			if (lh->max_rel_err > rel)
				rel = lh->max_rel_err;
			if (lr->max_rel_err > rel)
				rel = lr->max_rel_err;
			if (lh->eps_units > eps)
				eps = lh->eps_units;
			if (lr->eps_units > eps)
				eps = lr->eps_units;
			if (eps <= DIAG_ROUNDOFF_EPS)
				say(&t, "All three levels hold: the fold is an exact rewrite "
					"(max relative error %.2g, %.1f eps).", rel, eps);
			else
				say(&t, "All three levels hold within the tolerance %.2g, but "
					"not to roundoff (max relative error %.2g, %.3g eps): "
					"equal only up to that tolerance.", rep->tol, rel, eps);
		}
	} else if (!(ls->overflow && lh->overflow && lr->overflow)) {
		say(&t, "Score %s, head %s, residual %s.", verdict(ls), verdict(lh),
		    verdict(lr));
	}
	why_overflow(&t, rep);
	if (!ls->holds && !ls->overflow) {
		size_t off = ls->worst_m - ls->worst_n;
		say(&t, " Scores break worst at head %zu, (m, n) = (%zu, %zu), offset %zu.",
		    ls->worst_head, ls->worst_m, ls->worst_n, off);
		if (rep->by_offset_ref[0] > 0 &&
		    rep->by_offset[0] <= rep->tol * ls->ref_max && rep->seq > 1)
			say(&t, " The diagonal m = n survives (Theta_0 = I); off it the "
				"error depends on the offset m - n.");
		why_scores(&t, l, cfg, rep);
	}
	if (dg->heads_permuted && !ovf && !(ls->holds && lh->holds))
		say(&t, " The fold permuted the kv groups (with their query heads): "
			"head-by-head comparisons differ%s.",
		    lr->holds ? ", but the residual block sums over heads and does not" : "");
	if (ls->holds && !lh->holds && !lh->overflow && !dg->heads_permuted) {
		say(&t, " Head outputs break worst at head %zu, token %zu, coordinate %zu.",
		    lh->worst_head, lh->worst_m, lh->worst_coord);
		why_vo(&t, l, cfg, rep);
	}
	/* the residual's reason, unless the head level just gave it */
	bool vo_told = ls->holds && !lh->holds && !lh->overflow && !dg->heads_permuted;
	if (!lr->holds && !lr->overflow && ls->holds && !vo_told) {
		why_vo(&t, l, cfg, rep);
	}
	/* The hypothesis fails but the break is too slow to show at this T. */
	bool qk_rot = (cfg->rotate & PART_Q) && (cfg->rotate & PART_K);
	if (ls->holds && qk_rot && dg->mix_norm > DIAG_ZERO && dg->break_offset)
		say(&t, " R mixes frequencies, but too slowly to show at T = %zu: "
			"hypothesis fails; the break would appear near offset %zu.",
		    rep->seq, dg->break_offset);
	/* One sentence for every guaranteed level that breaks. */
	char bug[64] = "";
	double bug_err = 0;
	for (int i = 0; i < LEVEL_COUNT; i++) {
		const LevelResult *L = &rep->level[i];
		if (!L->guaranteed || L->holds || L->overflow)
			continue;
		size_t n = strlen(bug);
		snprintf(bug + n, sizeof bug - n, "%s%s", n ? ", " : "", level_name((LevelId)i));
		if (L->max_rel_err > bug_err || !isfinite(L->max_rel_err))
			bug_err = L->max_rel_err;
	}
	if (*bug)
		say(&t, " BUG: the theorem guarantees the %s level%s, but %s (relative "
			"error up to %.3g > tolerance %.3g): the inputs or the tool are wrong.",
		    bug, strchr(bug, ',') ? "s" : "", strchr(bug, ',') ? "they break" : "it breaks",
		    bug_err, rep->tol);
	for (int i = 0; i < LEVEL_COUNT; i++) {
		const LevelResult *L = &rep->level[i];
		if (!L->guaranteed && L->holds && cfg->rotate)
			say(&t, " The %s level holds although the theorem does not "
				"guarantee it%s.", level_name((LevelId)i),
			    rep->seq == 1 ? " (T = 1: only offset 0 is compared)" : "");
	}
}
