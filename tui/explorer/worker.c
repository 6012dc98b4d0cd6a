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

#include "core/session.h"
#include "core/mla_inv.h"
#include "core/timer.h"
#include "tui/explorer/worker.h"
#include "tui/shared/environment.h"
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
	InvSession *session;
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

/* Build what changed and evaluate; fills r. */
static void evaluate(Worker *w, const TuiSettings *s, EvalResult *r)
{
	double t0 = timer_now();
	r->settings = *s;
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
		if (w->built)
			workload_done(&w->wl);
		w->wl = nw;
		w->built = true;
	}
	if (w->wl.is_mla) {
		/* MLA: the plain engine, one evaluation per change (core/mla_inv.h) */
		w->built_for = *s;
		FoldConfig cfg = s->opts.fold;
		workload_fold_config(&w->wl, &cfg);
		EvalOptions eo = {.seq = w->wl.seq, .precision = PREC_F64, .tol = s->opts.tol};
		RfStatus st = s->opts.precision == PREC_F64
			? mla_evaluate(&w->wl.mla, w->wl.x, &eo, &cfg, &r->rep) : RF_ERR_ARG;
		if (st != RF_OK) {
			snprintf(r->err, sizeof r->err, st == RF_ERR_ARG
				 ? "an MLA layer is evaluated in float64 only"
				 : "evaluation failed: %s", rf_status_str(st));
			r->status = 2;
			return;
		}
		fill_info(&r->info, &w->wl);
		r->status = 0;
		r->seconds = timer_now() - t0;
		return;
	}
	if (resession) {
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
	FoldConfig cfg = s->opts.fold;
	workload_fold_config(&w->wl, &cfg);
	RfStatus st = inv_session_evaluate(w->session, &cfg, &r->rep);
	if (st != RF_OK) {
		snprintf(r->err, sizeof r->err, "evaluation failed: %s", rf_status_str(st));
		r->status = 2;
		return;
	}
	fill_info(&r->info, &w->wl);
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
	if (w->built)
		workload_done(&w->wl);
	close(w->pipe[0]);
	close(w->pipe[1]);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}
