#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/session.h"
#include "core/mla_inv.h"
#include "core/timer.h"
#include "data/compare_job.h"
#include "data/frame_job.h"
#include "data/model.h"
#include "tui/explorer/worker.h"
#include "tui/shared/environment.h"
#include "tui/shared/findings_text.h"
#include "tui/shared/kernel_env.h"

struct Worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pipe[2];            /* [0] polled by the screen, [1] written here */
	bool stop, done;
	/* request mailbox (newest wins) */
	bool has_job;
	TuiSettings job;
	unsigned long job_gen;
	bool running;
	/* result mailbox (newest wins) */
	EvalResult *result;
	/* worker-private state */
	bool built;
	TuiSettings built_for;
	Workload wl;
	char dtype[24];         /* of the checkpoint wl came from, or "" */
	InvSession *session;
	/* compare mode's pair (its models, tolerances and residual frame,
	 * found once) and its layers scan, kept while A and B stay */
	ComparePair *pair;
	char scan_a[4096], scan_b[1024];
	CompareLayerRow *scan_rows;
	size_t scan_n;
	char scan_err[512];
	/* the last R1/R3 demonstration on wl, and what it was run for */
	FrameReport frame;
	bool frame_valid;
	FoldConfig frame_for;
	double frame_tol;
};

static bool same_scaling(const RopeScaling *a, const RopeScaling *b)
{
	return a->kind == b->kind && a->factor == b->factor &&
	       a->original_max_pos == b->original_max_pos &&
	       a->low_freq_factor == b->low_freq_factor &&
	       a->high_freq_factor == b->high_freq_factor &&
	       a->beta_fast == b->beta_fast && a->beta_slow == b->beta_slow &&
	       a->attention_factor == b->attention_factor;
}

/* True when a and b describe the same layer and input. */
static bool same_workload(const TuiSettings *a, const TuiSettings *b)
{
	const RunOptions *x = &a->opts, *y = &b->opts;
	if (a->source != b->source)
		return false;
	if (a->source == SOURCE_FILE && strcmp(a->model_path, b->model_path))
		return false;
	if (a->source != SOURCE_RANDOM && x->layer != y->layer)
		return false;
	if (a->source == SOURCE_RANDOM &&
	    (memcmp(&x->shape, &y->shape, sizeof x->shape) || x->with_bias != y->with_bias))
		return false;
	if (a->source == SOURCE_RANDOM &&
	    (x->mla_set != y->mla_set || memcmp(&x->mla, &y->mla, sizeof x->mla)))
		return false;
	if (x->seq != y->seq || x->seed != y->seed || x->input != y->input)
		return false;
	if (x->layout_set != y->layout_set || x->rotary_set != y->rotary_set ||
	    x->theta_set != y->theta_set || x->scaling_set != y->scaling_set)
		return false;
	if ((x->layout_set || a->source == SOURCE_RANDOM) && x->rope.layout != y->rope.layout)
		return false;
	if ((x->rotary_set || a->source == SOURCE_RANDOM) && x->rope.rotary_dim != y->rope.rotary_dim)
		return false;
	if ((x->theta_set || a->source == SOURCE_RANDOM) && x->rope.theta != y->rope.theta)
		return false;
	if ((x->scaling_set || a->source == SOURCE_RANDOM) &&
	    !same_scaling(&x->rope.scaling, &y->rope.scaling))
		return false;
	return true;
}

/* The stored dtype of a checkpoint's attention weights, or "". */
static void stored_dtype(const TuiSettings *s, char *buf, size_t len)
{
	char path[4096], err[512];
	buf[0] = 0;
	if (s->source == SOURCE_FILE)
		snprintf(path, sizeof path, "%s", s->model_path);
	else if (s->source != SOURCE_DEFAULT || env_default_model_path(path, sizeof path, err,
								  sizeof err))
		return;
	Model *m;
	if (model_open(path, &m, err, sizeof err))
		return;
	snprintf(buf, len, "%s", dtype_name(model_info(m)->dtype));
	model_close(m);
}

static void fill_info(LayerInfo *li, const Workload *w)
{
	const Layer *l = &w->layer;
	memset(li, 0, sizeof *li);
	li->shape = l->shape;
	li->rope = l->rope;
	li->qkv_bias = l->bq || l->bk || l->bv;
	li->o_bias = l->bo != NULL;
	li->qk_norm = l->q_norm || l->k_norm;
	li->attn_norm = l->attn_norm != NULL;
	li->score_scale = layer_score_scale(l);
	li->sliding_window = l->sliding_window;
	li->attn_softcap = l->attn_softcap;
	li->bytes = layer_bytes(l);
	li->seq = w->seq;
	snprintf(li->source, sizeof li->source, "%s", w->source);
	li->layer_index = w->layer_index;
	li->family_assumed = w->note[0] != '\0';
	li->mla = w->is_mla;
	if (w->is_mla) {
		li->mla_shape = w->mla.shape;
		li->score_scale = mla_score_scale(&w->mla);
	}
}

/* A copy of n doubles, or NULL. */
static double *dup_doubles(const double *p, size_t n)
{
	double *q = p ? malloc(n * sizeof *q) : NULL;
	if (q)
		memcpy(q, p, n * sizeof *q);
	return q;
}

/* The rotations a plan applies, for the rotation view. */
static void keep_rotations(EvalResult *r, const FoldPlan *p)
{
	if (!p)
		return;
	size_t dd = p->head_dim * p->head_dim;
	r->rq = dup_doubles(p->rq, p->n_heads * dd);
	r->rk = dup_doubles(p->rk, p->n_kv_heads * dd);
	r->rv = dup_doubles(p->rv, p->n_kv_heads * dd);
}

/* The checkpoint A of compare mode, or -1 with the reason. */
static int compare_a_path(const TuiSettings *s, char *buf, size_t len, char *err, size_t errlen)
{
	if (s->source == SOURCE_FILE) {
		snprintf(buf, len, "%s", s->model_path);
		return 0;
	}
	if (s->source == SOURCE_DEFAULT)
		return env_default_model_path(buf, len, err, errlen);
	snprintf(err, errlen, "against: compares two checkpoints' layers; ':load PATH' or "
		 "':load default' first");
	return -1;
}

/* Compare mode: A's layer against B's stored one (data/compare_job.h) on
 * the workload's input; fills r (status 2 with err when it cannot). */
static void compare_evaluate(Worker *w, const TuiSettings *s, EvalResult *r)
{
	char a[4096];
	if (compare_a_path(s, a, sizeof a, r->err, sizeof r->err)) {
		r->status = 2;
		return;
	}
	CompareJob j = {a, s->against_path, w->wl.layer_index, w->wl.x, w->wl.seq,
			s->opts.precision, s->opts.tol, kernel_env(), NULL};
	/* the workload's layer is A's as stored unless a --rope override
	 * changed it: then compare mode reads its own */
	const RunOptions *o = &s->opts;
	if (s->source == SOURCE_FILE && !w->wl.is_mla && !o->layout_set && !o->rotary_set &&
	    !o->theta_set && !o->scaling_set)
		j.layer_a = &w->wl.layer;
	CompareOutcome out;
	char err[768];
	if (!compare_pair_is(w->pair, a, s->against_path)) {
		/* another pair, or one replaced on disk: its scan goes too */
		compare_pair_close(w->pair);
		w->pair = NULL;
		w->scan_a[0] = 0;
		if (compare_pair_open(a, s->against_path, &w->pair, err, sizeof err)) {
			snprintf(r->err, sizeof r->err, "against: %.480s", err);
			r->status = 2;
			return;
		}
	}
	if (compare_pair_run(w->pair, &j, &out, err, sizeof err)) {
		snprintf(r->err, sizeof r->err, "against: %.480s", err);
		r->status = 2;
		return;
	}
	Comparison *c = &out.cmp;
	VerifyVerdict *v = &c->verdict;
	if (!c->have_report) {
		char why[FINDINGS_WHY_MAX];
		findings_verify_why(v, why, sizeof why);
		snprintf(r->err, sizeof r->err, "against: %.480s", why);
		r->status = 2;
		compare_outcome_done(&out);
		return;
	}
	/* the levels move into the result */
	r->rep = c->rep;
	c->have_report = false;
	CompareInfo *ci = &r->cmp;
	ci->on = true;
	snprintf(ci->against, sizeof ci->against, "%s", s->against_path);
	ci->equivalent = v->equivalent;
	ci->relation = v->relation;
	ci->why = v->why;
	if (v->equivalent)
		findings_verify_relation(v, ci->words, sizeof ci->words);
	else
		findings_verify_why(v, ci->words, sizeof ci->words);
	ci->layout_converted = v->layout_converted;
	ci->heads_permuted = v->heads_permuted;
	ci->rotated = v->rotated;
	ci->brk_group = v->brk.group;
	snprintf(ci->brk_tensor, sizeof ci->brk_tensor, "%s", v->brk.tensor);
	ci->max_err = v->max_err;
	ci->tol = v->tol;
	ci->within = verify_verdict_within(v);
	findings_verify_tolerance(v, ci->tol_words, sizeof ci->tol_words);
	snprintf(ci->dtype_a, sizeof ci->dtype_a, "%s", dtype_name(out.dtype_a));
	snprintf(ci->dtype_b, sizeof ci->dtype_b, "%s", dtype_name(out.dtype_b));
	ci->groups = v->plan.n_kv_heads;
	ci->npairs = v->npairs;
	ci->commuting = malloc((ci->groups ? ci->groups : 1) * sizeof *ci->commuting);
	ci->perm = malloc((ci->groups ? ci->groups : 1) * sizeof *ci->perm);
	ci->angles = dup_doubles(v->angles, ci->groups * ci->npairs);
	for (size_t g = 0; ci->commuting && ci->perm && g < ci->groups; g++) {
		ci->commuting[g] = v->commuting && v->commuting[g];
		ci->perm[g] = v->plan.perm ? v->plan.perm[g] : g;
	}
	keep_rotations(r, &v->plan);
	/* every layer's verdict, once per pair */
	if (strcmp(w->scan_a, a) || strcmp(w->scan_b, s->against_path)) {
		free(w->scan_rows);
		w->scan_rows = NULL;
		w->scan_n = 0;
		w->scan_err[0] = 0;
		if (compare_scan_run(a, s->against_path, &w->scan_rows, &w->scan_n, w->scan_err,
				     sizeof w->scan_err))
			w->scan_n = 0;
		snprintf(w->scan_a, sizeof w->scan_a, "%s", a);
		snprintf(w->scan_b, sizeof w->scan_b, "%s", s->against_path);
	}
	if (w->scan_n) {
		ci->rows = malloc(w->scan_n * sizeof *ci->rows);
		if (ci->rows) {
			memcpy(ci->rows, w->scan_rows, w->scan_n * sizeof *ci->rows);
			ci->nrows = w->scan_n;
		}
	}
	snprintf(ci->scan_err, sizeof ci->scan_err, "%s", w->scan_err);
	compare_outcome_done(&out);
	r->status = 0;
}

/* compare_evaluate, then the layer's info and the time since t0: how the
 * worker ends a compare-mode evaluation, MLA or not. */
static void compare_run(Worker *w, const TuiSettings *s, EvalResult *r, double t0)
{
	compare_evaluate(w, s, r);
	if (r->status == 0) {
		fill_info(&r->info, &w->wl);
		snprintf(r->info.dtype, sizeof r->info.dtype, "%s", w->dtype);
		r->seconds = timer_now() - t0;
	}
}

/* R1 and R3 of cfg into r->frame, from the last run when only the fold
 * changed since. 0, or -1 with r->err filled (r->status 2). */
static int run_frame(Worker *w, const TuiSettings *s, const FoldConfig *cfg, EvalResult *r)
{
	memset(&r->frame, 0, sizeof r->frame);
	if (!cfg->r1 && !cfg->r3)
		return 0;
	const FoldConfig *k = &w->frame_for;
	if (!w->frame_valid || k->r1 != cfg->r1 || k->r3 != cfg->r3 || k->seed != cfg->seed ||
	    w->frame_tol != s->opts.tol) {
		frame_report_done(&w->frame);
		w->frame_valid = false;
		if (frame_job_run(&w->wl, cfg, s->opts.tol, &w->frame, r->err, sizeof r->err)) {
			r->status = 2;
			return -1;
		}
		w->frame_valid = true;
		w->frame_for = *cfg;
		w->frame_tol = s->opts.tol;
	}
	if (frame_report_copy(&r->frame, &w->frame) != RF_OK) {
		snprintf(r->err, sizeof r->err, "R1/R3: out of memory");
		r->status = 2;
		return -1;
	}
	return 0;
}

/* Build what changed and evaluate; fills r. */
static void evaluate(Worker *w, const TuiSettings *s, EvalResult *r)
{
	double t0 = timer_now();
	r->settings = *s;
	if (!s->against_path[0] && w->pair) {
		/* compare mode left: the pair's files are let go */
		compare_pair_close(w->pair);
		w->pair = NULL;
	}
	bool rebuild = !w->built || !same_workload(s, &w->built_for);
	bool resession = rebuild || !w->session ||
			 s->opts.precision != w->built_for.opts.precision ||
			 s->opts.tol != w->built_for.opts.tol;
	if (rebuild) {
		RunOptions o;
		Workload nw;
		commands_settings_options(s, &o);
		if (env_workload(&o, s->source == SOURCE_DEFAULT, &nw, r->err, sizeof r->err)) {
			r->status = 2;
			return;
		}
		inv_session_free(w->session);
		w->session = NULL;
		frame_report_done(&w->frame);
		w->frame_valid = false;
		if (w->built)
			workload_done(&w->wl);
		w->wl = nw;
		w->built = true;
		stored_dtype(s, w->dtype, sizeof w->dtype);
	}
	if (w->wl.is_mla) {
		/* MLA: the plain engine, one evaluation per change (core/mla_inv.h) */
		w->built_for = *s;
		FoldConfig cfg = s->opts.fold;
		workload_fold_config(&w->wl, &cfg);
		if (s->against_path[0]) {
			/* compare mode: A's MLA layer against B's stored one */
			compare_run(w, s, r, t0);
			return;
		}
		if (run_frame(w, s, &cfg, r))
			return;   /* refused: an MLA layer */
		EvalOptions eo = {.seq = w->wl.seq, .precision = s->opts.precision,
				  .tol = s->opts.tol};
		RfStatus st = mla_evaluate(&w->wl.mla, w->wl.x, &eo, &cfg, &r->rep);
		if (st != RF_OK) {
			snprintf(r->err, sizeof r->err, "evaluation failed: %s", rf_status_str(st));
			r->status = 2;
			return;
		}
		fill_info(&r->info, &w->wl);
		r->status = 0;
		r->seconds = timer_now() - t0;
		return;
	}
	if (resession && s->against_path[0]) {
		/* compare mode evaluates A against B, not a fold: the session
		 * is built when it is left */
		inv_session_free(w->session);
		w->session = NULL;
	} else if (resession) {
		inv_session_free(w->session);
		w->session = NULL;
		EvalOptions eo = {.seq = w->wl.seq, .precision = s->opts.precision,
				  .tol = s->opts.tol, .kernel = kernel_env()};
		RfStatus st = inv_session_new(&w->wl.layer, w->wl.x, &eo, &w->session);
		if (st != RF_OK) {
			snprintf(r->err, sizeof r->err, "cannot evaluate this layer: %s",
				 rf_status_str(st));
			r->status = 2;
			w->built = false;
			workload_done(&w->wl);
			return;
		}
	}
	w->built_for = *s;
	if (s->against_path[0]) {
		compare_run(w, s, r, t0);
		return;
	}
	FoldConfig cfg = s->opts.fold;
	/* the fold-layout toggle, else a --rope override on a checkpoint */
	if (!cfg.layout_set)
		workload_fold_config(&w->wl, &cfg);
	if (run_frame(w, s, &cfg, r))
		return;
	RfStatus st = inv_session_evaluate(w->session, &cfg, &r->rep);
	if (st != RF_OK) {
		snprintf(r->err, sizeof r->err, "evaluation failed: %s", rf_status_str(st));
		r->status = 2;
		return;
	}
	keep_rotations(r, inv_session_plan(w->session));
	fill_info(&r->info, &w->wl);
	snprintf(r->info.dtype, sizeof r->info.dtype, "%s", w->dtype);
	r->status = 0;
	r->seconds = timer_now() - t0;
}

static void *worker_main(void *arg)
{
	Worker *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->has_job && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->stop)
			break;
		TuiSettings s = w->job;
		unsigned long gen = w->job_gen;
		w->has_job = false;
		w->running = true;
		pthread_mutex_unlock(&w->mu);

		EvalResult *r = calloc(1, sizeof *r);
		if (r) {
			r->gen = gen;
			evaluate(w, &s, r);
		}

		pthread_mutex_lock(&w->mu);
		w->running = false;
		if (r) {
			worker_result_free(w->result);
			w->result = r;
		}
		ssize_t n = write(w->pipe[1], "r", 1);
		(void)n;  /* a full pipe already wakes the loop */
	}
	w->done = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

Worker *worker_new(void)
{
	Worker *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	if (pipe(w->pipe)) {
		free(w);
		return NULL;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(w->pipe[i], F_SETFL, fcntl(w->pipe[i], F_GETFL) | O_NONBLOCK);
		fcntl(w->pipe[i], F_SETFD, FD_CLOEXEC);
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	/* Signals (SIGWINCH, SIGINT, ...) belong to the screen's thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		close(w->pipe[0]);
		close(w->pipe[1]);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
		return NULL;
	}
	return w;
}

int worker_fd(const Worker *w)
{
	return w->pipe[0];
}

void worker_submit(Worker *w, const TuiSettings *s, unsigned long gen)
{
	pthread_mutex_lock(&w->mu);
	w->job = *s;
	w->job_gen = gen;
	w->has_job = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

EvalResult *worker_take(Worker *w)
{
	char buf[64];
	while (read(w->pipe[0], buf, sizeof buf) > 0)
		;
	pthread_mutex_lock(&w->mu);
	EvalResult *r = w->result;
	w->result = NULL;
	pthread_mutex_unlock(&w->mu);
	return r;
}

bool worker_busy(Worker *w)
{
	pthread_mutex_lock(&w->mu);
	bool b = w->has_job || w->running;
	pthread_mutex_unlock(&w->mu);
	return b;
}

void worker_result_free(EvalResult *r)
{
	if (!r)
		return;
	if (r->status == 0)
		report_done(&r->rep);
	frame_report_done(&r->frame);
	free(r->rq);
	free(r->rk);
	free(r->rv);
	free(r->cmp.commuting);
	free(r->cmp.angles);
	free(r->cmp.perm);
	free(r->cmp.rows);
	free(r);
}

void worker_free(Worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	w->has_job = false;
	pthread_cond_broadcast(&w->cv);
	/* A long evaluation cannot be interrupted: wait a little, then leave
	 * the thread to the process exit rather than hang the user. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	while (!w->done)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
			break;
	bool done = w->done;
	pthread_mutex_unlock(&w->mu);
	if (!done) {
		pthread_detach(w->thread);
		return;
	}
	pthread_join(w->thread, NULL);
	worker_result_free(w->result);
	inv_session_free(w->session);
	frame_report_done(&w->frame);
	free(w->scan_rows);
	compare_pair_close(w->pair);
	if (w->built)
		workload_done(&w->wl);
	close(w->pipe[0]);
	close(w->pipe[1]);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}
