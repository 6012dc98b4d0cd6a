#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/diagnose.h"
#include "core/finding.h"
#include "core/pair_mix.h"
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

/* The next finding of rep, of code, in the order they are told (the last
 * slot is reused should the list ever fill: it cannot, see report.h). */
static Finding *tell(InvReport *rep, FindingCode code)
{
	size_t i = rep->n_findings;
	if (i < REPORT_MAX_FINDINGS)
		rep->n_findings++;
	else
		i = REPORT_MAX_FINDINGS - 1;
	rep->findings[i] = finding_make(code);
	return &rep->findings[i];
}

/* A pair group of the diagnostics as a finding names it. */
static size_t pair_of(const Diagnostics *dg, size_t i)
{
	return i >= dg->npairs ? FINDING_NON_ROTARY : i;
}

/* Why the Q/K side breaks scores, most basic cause first. */
static void why_scores(InvReport *rep, const Layer *l, const FoldConfig *cfg)
{
	const Diagnostics *dg = &rep->diag;
	bool rq = cfg->rotate & PART_Q, rk = cfg->rotate & PART_K;
	Finding *f;
	if (rq != rk) {
		tell(rep, FIND_ONE_SIDE_ROTATED)->part = rq ? 'Q' : 'K';
		return;
	}
	if (!rq)
		return;
	if (cfg->layout_set && cfg->layout != l->rope.layout) {
		f = tell(rep, FIND_FOLD_LAYOUT);
		f->layout[0] = cfg->layout;
		f->layout[1] = l->rope.layout;
	}
	if (dg->ortho_defect > DIAG_ZERO && dg->ortho_part != 'v') {
		f = tell(rep, FIND_R_NOT_ORTHOGONAL);
		f->part = dg->ortho_part;
		f->head = dg->ortho_head;
		f->norm = dg->ortho_defect;
	}
	if (dg->qk_mismatch > DIAG_ZERO) {
		f = tell(rep, FIND_QK_ROTATED_APART);
		f->head = dg->qk_mismatch_head;
		f->norm = dg->qk_mismatch;
	}
	if (dg->gqa_mismatch > DIAG_ZERO)
		tell(rep, FIND_GROUP_ROTATED_APART)->head = dg->gqa_mismatch_head;
	if (dg->mix_norm > DIAG_ZERO) {
		f = tell(rep, dg->mix_i == dg->mix_j ? FIND_PAIR_NOT_ROTATION
						     : FIND_PAIRS_MIXED);
		f->head = dg->mix_head;
		f->pair_i = pair_of(dg, dg->mix_i);
		if (dg->mix_i != dg->mix_j)
			f->pair_j = pair_of(dg, dg->mix_j);
	}
	if (dg->qk_bias_unrotated)
		tell(rep, FIND_QK_BIAS_UNROTATED);
	if (dg->qk_norm_pair_defect > 0)
		tell(rep, FIND_QK_NORM_SPLITS_PAIR)->norm = dg->qk_norm_pair_defect;
}

/* Why the V/O side breaks the blocks. */
static void why_vo(InvReport *rep, const FoldConfig *cfg)
{
	const Diagnostics *dg = &rep->diag;
	bool rv = cfg->rotate & PART_V, ro = cfg->rotate & PART_O;
	if (rv && !ro) {
		tell(rep, FIND_V_WITHOUT_O);
	} else if (ro && !rv) {
		tell(rep, FIND_O_WITHOUT_V);
	} else if (rv && dg->vo_mismatch > DIAG_ZERO) {
		Finding *f = tell(rep, FIND_VO_NOT_INVERSE);
		f->head = dg->vo_mismatch_head;
		f->norm = dg->vo_mismatch;
	}
	if (dg->v_bias_unrotated)
		tell(rep, FIND_V_BIAS_UNROTATED);
}

/* Beyond this many units of epsilon an error is no longer roundoff (a
 * fold of a layer a few thousand wide stays within tens of units; 1500
 * units is what a loose tolerance lets through, not an exact rewrite). */
#define DIAG_ROUNDOFF_EPS 256

/* Where the first (weakest) overflowing level overflows, which levels
 * follow, and what that means. */
static void why_overflow(InvReport *rep)
{
	int first = -1;
	bool guaranteed = false;
	unsigned more = 0;
	for (int i = 0; i < LEVEL_COUNT; i++)
		if (rep->level[i].overflow) {
			if (first < 0)
				first = i;
			else
				more |= 1u << i;
			guaranteed |= rep->level[i].guaranteed;
		}
	if (first < 0)
		return;
	const LevelResult *L = &rep->level[first];
	Finding *f = tell(rep, FIND_OVERFLOW);
	f->level = (LevelId)first;
	f->head = L->worst_head;
	f->m = L->worst_m;
	f->n = L->worst_n;
	f->coord = L->worst_coord;
	f->side = L->overflow;
	f->precision = rep->precision;
	if (more)
		tell(rep, FIND_OVERFLOW_ALSO)->overflows = more;
	f = tell(rep, FIND_OVERFLOW_UNCONFIRMED);
	f->precision = rep->precision;
	f->flag = guaranteed;
}

/* A pair-mix fold of Q and K: where its score error is predicted to pass
 * the tolerance (needs the tolerance, so it is set here, after judging). */
static void predict_pair_mix(const FoldConfig *cfg, InvReport *rep)
{
	Diagnostics *dg = &rep->diag;
	bool qk_rot = (cfg->rotate & PART_Q) && (cfg->rotate & PART_K);
	dg->mix_eps = 0;
	dg->mix_break = 0;
	if (!qk_rot || !(cfg->dropped & ASSUME_COMMUTES) || cfg->kind != ROT_PAIR_MIX ||
	    !(cfg->mix_eps > 0) || !dg->freqs)
		return;
	dg->mix_eps = cfg->mix_eps;
	dg->mix_break = pair_mix_break_offset(dg->freqs, dg->npairs, cfg->mix_eps, rep->tol);
}

void diagnose_explain(const Layer *l, const FoldConfig *cfg, InvReport *rep)
{
	predict_pair_mix(cfg, rep);
	const LevelResult *ls = &rep->level[LEVEL_SCORE];
	const LevelResult *lh = &rep->level[LEVEL_HEAD];
	const LevelResult *lr = &rep->level[LEVEL_RESIDUAL];
	const Diagnostics *dg = &rep->diag;
	Finding *f;
	rep->n_findings = 0;
	if (!rep->findings)
		return;

	bool ovf = ls->overflow || lh->overflow || lr->overflow;
	if (ls->holds && lh->holds && lr->holds) {
		if (cfg->rotate == 0) {
			tell(rep, FIND_NOTHING_ROTATED);
		} else {
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
			f = tell(rep, eps <= DIAG_ROUNDOFF_EPS ? FIND_EXACT_REWRITE
							       : FIND_HOLDS_WITHIN_TOL);
			f->err = rel;
			f->eps = eps;
			f->tol = rep->tol;
			/* "exact rewrite" only where the theorem promises it */
			f->flag = ls->guaranteed && lh->guaranteed && lr->guaranteed;
		}
	} else if (!(ls->overflow && lh->overflow && lr->overflow)) {
		f = tell(rep, FIND_VERDICTS);
		for (int i = 0; i < LEVEL_COUNT; i++) {
			if (rep->level[i].holds)
				f->levels |= 1u << i;
			if (rep->level[i].overflow)
				f->overflows |= 1u << i;
		}
	}
	why_overflow(rep);
	if (!ls->holds && !ls->overflow) {
		f = tell(rep, FIND_SCORES_WORST);
		f->level = LEVEL_SCORE;
		f->head = ls->worst_head;
		f->m = ls->worst_m;
		f->n = ls->worst_n;
		f->offset = ls->worst_m - ls->worst_n;
		if (rep->by_offset_ref[0] > 0 &&
		    rep->by_offset[0] <= rep->tol * ls->ref_max && rep->seq > 1)
			tell(rep, FIND_DIAGONAL_SURVIVES);
		why_scores(rep, l, cfg);
	}
	if (dg->heads_permuted && !ovf && !(ls->holds && lh->holds))
		tell(rep, FIND_HEADS_PERMUTED)->flag = lr->holds;
	/* the V/O reason once: for the head level, or else for the residual */
	bool vo_told = ls->holds && !lh->holds && !lh->overflow && !dg->heads_permuted;
	if (vo_told) {
		f = tell(rep, FIND_HEADS_WORST);
		f->level = LEVEL_HEAD;
		f->head = lh->worst_head;
		f->m = lh->worst_m;
		f->coord = lh->worst_coord;
		why_vo(rep, cfg);
	}
	if (!lr->holds && !lr->overflow && ls->holds && !vo_told)
		why_vo(rep, cfg);
	/* The hypothesis fails but the break is too slow to show at this T. */
	bool qk_rot = (cfg->rotate & PART_Q) && (cfg->rotate & PART_K);
	if (ls->holds && qk_rot && dg->mix_norm > DIAG_ZERO && dg->break_offset) {
		f = tell(rep, FIND_SLOW_MIXING);
		f->seq = rep->seq;
		f->offset = dg->break_offset;
	}
	/* One finding for every guaranteed level that breaks. */
	unsigned bug = 0;
	double bug_err = 0;
	for (int i = 0; i < LEVEL_COUNT; i++) {
		const LevelResult *L = &rep->level[i];
		if (!L->guaranteed || L->holds || L->overflow)
			continue;
		bug |= 1u << i;
		if (L->max_rel_err > bug_err || !isfinite(L->max_rel_err))
			bug_err = L->max_rel_err;
	}
	if (bug) {
		f = tell(rep, FIND_GUARANTEE_BROKEN);
		f->levels = bug;
		f->err = bug_err;
		f->tol = rep->tol;
	}
	for (int i = 0; i < LEVEL_COUNT; i++) {
		const LevelResult *L = &rep->level[i];
		if (!L->guaranteed && L->holds && cfg->rotate) {
			f = tell(rep, FIND_HOLDS_UNGUARANTEED);
			f->level = (LevelId)i;
			f->seq = rep->seq;
		}
	}
	/* The window and the cap act on scores the fold left equal. */
	if (l && (l->sliding_window || l->attn_softcap > 0) && ls->holds && cfg->rotate) {
		f = tell(rep, FIND_MASKED_SCORES);
		f->value[0] = (double)l->sliding_window;
		f->value[1] = l->attn_softcap;
		f->seq = rep->seq;
	}
}
