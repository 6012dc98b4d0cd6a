#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "core/verify_impl.h"

/* The kv groups' checks (Q/K, then V/O, in B's group order) over a few
 * workers. Each group is decided on its own context, its own scratch and
 * its own copy of the verdict's scalars; what it recovers goes to its own
 * slots of the plan (A's group perm[gb] and its query heads). The results
 * are merged in group order, so the verdict is the serial loop's: the
 * first group that breaks gives the break, the groups before it give the
 * worst error, and whatever a later group wrote meanwhile is put back as
 * it was. At 8B scale this is the part of verify that one worker cannot
 * share with the confirmation, so one layer in flight (two layers'
 * weights in memory) still keeps both cores busy. */

/* One group's outcome. */
typedef struct {
	bool ran;
	RfStatus st;
	bool ok;                 /* both sides hold */
	double max_err, direct;  /* the context's and verdict's, of this group */
	bool vo_not_orthogonal;
	VerifyWhy why;
	Finding brk;
	CommutantInfo comm;
	bool commuting;          /* the slots before the group ran: */
	double *saved;           /* rk, rv, then the query heads' rq and ro
				  * (dd each), then the angles (np) */
} GroupOutcome;

typedef struct {
	const VerifyCtx *c;      /* the comparison (its scratch worker 0's alone) */
	GroupOutcome *out;       /* G */
	double *scratch;         /* per worker past 0: work (dD), R, R2 (dd each) */
	bool save;               /* a later group may run before an earlier
				  * one breaks: keep its slots */
	TaskQueue q;             /* tasks: B's groups in order */
	atomic_size_t first_bad; /* the lowest group broken or failed (G: none) */
} GroupRun;

/* Each part's tolerance at A's kv group ga and B's gb: the float
 * tolerance plus the bounds of the two groups' own blocks (W_q adding
 * W_k's, W_o W_v's: their rotations are recovered there). */
static void group_tolerances(VerifyCtx *c, const double *qg, size_t ga, size_t gb)
{
	static const int from[VERIFY_PARTS] = {VERIFY_K, -1, -1, VERIFY_V};
	size_t G = c->G;
	for (int p = 0; p < VERIFY_PARTS; p++) {
		double q = qg[(size_t)(p * 2) * G + ga] + qg[(size_t)(p * 2 + 1) * G + gb];
		if (from[p] >= 0)
			q += qg[(size_t)(from[p] * 2) * G + ga] + qg[(size_t)(from[p] * 2 + 1) * G + gb];
		c->tolp[p] = c->tol + q;
	}
}

/* The doubles of one group's slots. */
static size_t slot_count(const VerifyCtx *c)
{
	return (2 + 2 * c->hpg) * c->dd + c->np;
}

/* Copy A's group ga's slots of plan p (and angles) to or from s. */
static void slots_move(const VerifyCtx *c, FoldPlan *p, double *angles, size_t ga, double *s,
		       bool to_slots)
{
	size_t dd = c->dd, hd = c->hpg * dd;
	double *at[5] = {p->rk + ga * dd, p->rv + ga * dd, p->rq + ga * hd, p->ro + ga * hd,
			 angles + ga * c->np};
	size_t n[5] = {dd, dd, hd, hd, c->np};
	for (int i = 0; i < 5; i++) {
		memcpy(to_slots ? at[i] : s, to_slots ? s : at[i], n[i] * sizeof(double));
		s += n[i];
	}
}

/* Decide B's group gb on context c (its own scratch) into o. */
static void group_decide(GroupRun *g, VerifyCtx *c, size_t gb)
{
	GroupOutcome *o = &g->out[gb];
	VerifyVerdict v = *g->c->v;   /* shares the plan's and angles' arrays */
	v.why = VERIFY_WHY_NONE;
	v.brk = finding_make(FIND_NONE);
	memset(&v.comm, 0, sizeof v.comm);
	v.max_err = 0;
	v.vo_not_orthogonal = false;
	c->v = &v;
	c->direct = 0;
	size_t ga = v.plan.perm[gb];
	o->ran = true;
	o->commuting = v.commuting[ga];
	if (g->save)
		slots_move(c, &v.plan, v.angles, ga, o->saved, false);
	if (v.quant_group)
		group_tolerances(c, v.quant_group, ga, gb);
	bool ok = false;
	o->st = verify_check_qk(c, gb, ga, &ok);
	if (o->st == RF_OK && ok)
		o->st = verify_check_vo(c, gb, ga, &ok);
	o->ok = o->st == RF_OK && ok;
	o->max_err = v.max_err;
	o->direct = c->direct;
	o->vo_not_orthogonal = v.vo_not_orthogonal;
	o->why = v.why;
	o->brk = v.brk;
	o->comm = v.comm;
	if (!o->ok) {
		size_t cur = atomic_load(&g->first_bad);
		while (gb < cur && !atomic_compare_exchange_weak(&g->first_bad, &cur, gb))
			;
	}
}

static void group_worker(void *ctx, size_t worker)
{
	GroupRun *g = ctx;
	VerifyCtx c = *g->c;
	if (worker > 0) {
		c.work = g->scratch + (worker - 1) * (c.dD + 2 * c.dd);
		c.R = c.work + c.dD;
		c.R2 = c.R + c.dd;
	}
	/* the tasks come in order: one past a break is not needed */
	for (size_t gb; (gb = task_queue_next(&g->q)) != (size_t)-1;)
		if (gb < atomic_load(&g->first_bad))
			group_decide(g, &c, gb);
}

/* Whether perm (G) names every group once: the groups' slots are then
 * disjoint (a matching of non-finite signatures need not be). */
static bool is_permutation(const size_t *perm, size_t G)
{
	for (size_t i = 0; i < G; i++) {
		if (perm[i] >= G)
			return false;
		for (size_t j = i + 1; j < G; j++)
			if (perm[i] == perm[j])
				return false;
	}
	return true;
}

RfStatus verify_check_groups(VerifyCtx *c, bool *ok)
{
	size_t G = c->G, nw = c->threads > G ? G : c->threads;   /* c->threads >= 1 */
	VerifyVerdict *v = c->v;
	if (!is_permutation(v->plan.perm, G))
		nw = 1;
	GroupRun g = {c, calloc(G, sizeof(GroupOutcome)),
		      nw > 1 ? malloc((nw - 1) * (c->dD + 2 * c->dd) * sizeof(double)) : NULL,
		      nw > 1, {0}, G};
	double *saved = g.save ? malloc(G * slot_count(c) * sizeof(double)) : NULL;
	*ok = false;
	if (!g.out || (g.save && (!g.scratch || !saved))) {
		free(g.out);
		free(g.scratch);
		free(saved);
		return RF_ERR_NOMEM;
	}
	for (size_t gb = 0; g.save && gb < G; gb++)
		g.out[gb].saved = saved + gb * slot_count(c);
	atomic_init(&g.first_bad, G);
	task_queue_init(&g.q, G);
	RfStatus st = parallel_run(nw, group_worker, &g);
	size_t bad = atomic_load(&g.first_bad);
	/* groups 0 .. bad all ran (one is skipped only past a break); a
	 * later one that ran as well is undone */
	for (size_t gb = 0; gb < G; gb++) {
		GroupOutcome *o = &g.out[gb];
		if (gb > bad) {
			if (o->ran && g.save) {
				size_t ga = v->plan.perm[gb];
				slots_move(c, &v->plan, v->angles, ga, o->saved, true);
				v->commuting[ga] = o->commuting;
			}
			continue;
		}
		if (o->max_err > v->max_err)
			v->max_err = o->max_err;
		if (o->direct > c->direct)
			c->direct = o->direct;
		v->vo_not_orthogonal = v->vo_not_orthogonal || o->vo_not_orthogonal;
		if (gb == bad && o->st == RF_OK) {
			verify_break(v, o->why, &o->brk);
			v->comm = o->comm;
		}
	}
	if (bad < G && g.out[bad].st != RF_OK)
		st = g.out[bad].st;
	*ok = st == RF_OK && bad == G;
	free(g.out);
	free(g.scratch);
	free(saved);
	return st;
}
