#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core/verify.h"
#include "data/fold_job.h"
#include "data/model.h"
#include "data/model_weights.h"
#include "data/verify_job.h"
#include "tui/explorer/fold_actions.h"
#include "tui/shared/environment.h"
#include "tui/shared/findings_text.h"
#include "tui/shared/kernel_env.h"
#include "tui/shared/testhook.h"

/* The checkpoint the explorer shows: the loaded one or the default. */
static int checkpoint_path(const TuiSettings *s, const char *what, char *buf, size_t len,
			   char *msg, size_t msglen)
{
	if (s->source == SOURCE_FILE) {
		snprintf(buf, len, "%s", s->model_path);
		return 0;
	}
	if (s->source == SOURCE_DEFAULT) {
		char err[512];
		if (env_default_model_path(buf, len, err, sizeof err)) {
			snprintf(msg, msglen, "%s: %s", what, err);
			return -1;
		}
		return 0;
	}
	snprintf(msg, msglen, "%s: a random layer has no checkpoint; ':load PATH' first", what);
	return -1;
}

int fold_action_export(const TuiSettings *s, const char *path, char *msg, size_t msglen)
{
	char model[4096], layers[32], err[1024];
	if (checkpoint_path(s, "export", model, sizeof model, msg, msglen))
		return -1;
	RunOptions o;
	commands_settings_options(s, &o);
	snprintf(layers, sizeof layers, "%zu", s->opts.layer);
	char hint[1100];
	snprintf(hint, sizeof hint, "':export! %s' replaces it", path);
	FoldJob j;
	opts_fold_job(&o, &j);   /* as `fold` writes it: an exact rewrite */
	j.model_path = model;
	j.out = path;
	/* exactly the rotations the explorer shows: drawn from its seed */
	j.seed_as_is = true;
	j.layers = layers;
	j.force = s->action_force;
	j.replace_hint = hint;
	testhook_fold_hooks(&j.hooks);
	FoldOutcome res;
	int rc = fold_job_run(&j, &res, err, sizeof err);
	if (rc)
		snprintf(msg, msglen, "export: %s", err);
	else
		snprintf(msg, msglen, "exported layer %s folded to %s (rounding %.2g); sidecar %s",
			 layers, path, res.max_rel_rounding, res.sidecar);
	fold_outcome_done(&res);
	return rc ? -1 : 0;
}

/* Stop at the first break, keeping where it is. */
typedef struct {
	FoldBreak *out;
	char *msg;
	size_t msglen;
} FirstBreak;

static int on_layer(void *ctx, const VerifyLayerResult *r)
{
	FirstBreak *fb = ctx;
	const VerifyVerdict *v = r->verdict;
	if (v->equivalent)
		return 0;
	const LayerShape *s = &r->a->shape;
	const Finding *f = &v->brk;
	char why[FINDINGS_WHY_MAX];
	findings_verify_why(v, why, sizeof why);
	fb->out->equivalent = false;
	fb->out->layer = r->layer;
	fb->out->head = f->head != FINDING_NONE ? f->head
		      : f->group != FINDING_NONE ? f->group * (s->n_heads / s->n_kv_heads)
		      : 0;
	snprintf(fb->msg, fb->msglen, "verify: first break at layer %zu, head %zu, %s level%s%s: %s",
		 r->layer, fb->out->head, level_name(f->level), f->tensor[0] ? ", " : "",
		 f->tensor, why);
	return 1;
}

/* The model level after the layers, as `verify --logits --seq 16` judges
 * it: put before msg when every layer held (the status line shows its
 * start), after it when a layer broke (the break comes first); nothing
 * when the checkpoints cannot run whole (a single attention layer, as the
 * built-in default is). */
static void model_level_note(const char *a, const char *b, bool first, char *msg,
			     size_t msglen)
{
	ModelLevel ml;
	char err[512], note[256], rest[1024];
	if (model_level_run(a, b, NULL, 16, 1, FWD_F64, &ml, err, sizeof err))
		return;
	const LogitsCompare *c = &ml.ab;
	if (ml.holds)
		snprintf(note, sizeof note, "model level holds (logits %.2g, KL %.2g, top-1 %.0f%%)",
			 c->max_rel_logit_err, c->max_kl, 100 * c->top1_agreement);
	else if (c->first_disagreement != (size_t)-1)
		snprintf(note, sizeof note, "model level breaks (logits %.2g > %.2g, KL %.2g): greedy "
			 "tokens differ from position %zu", c->max_rel_logit_err, ml.tol_rel, c->max_kl,
			 c->first_disagreement);
	else
		snprintf(note, sizeof note, "model level breaks (logits %.2g > %.2g, KL %.2g), greedy "
			 "tokens agree", c->max_rel_logit_err, ml.tol_rel, c->max_kl);
	const char *tail = !strncmp(msg, "verify: ", 8) ? msg + 8 : msg;
	snprintf(rest, sizeof rest, "%s", tail);
	if (first)
		snprintf(msg, msglen, "verify: %s; %s", note, rest);
	else
		snprintf(msg, msglen, "verify: %s; %s", rest, note);
}

int fold_action_verify(const TuiSettings *s, const char *path, FoldBreak *out, char *msg,
		       size_t msglen)
{
	char model[4096], err[1024];
	memset(out, 0, sizeof *out);
	if (checkpoint_path(s, "verify", model, sizeof model, msg, msglen))
		return -1;
	out->equivalent = true;
	FirstBreak fb = {out, msg, msglen};
	VerifyJob j = {model, path, NULL, NULL, 0, false, PREC_F64, 0, 0, &fb, NULL, on_layer,
		       kernel_env()};
	VerifyOutcome res;
	if (verify_job_run(&j, &res, err, sizeof err)) {
		snprintf(msg, msglen, "verify: %s", err);
		return -1;
	}
	if (res.layer_counts_differ) {
		snprintf(msg, msglen, "verify: %s has %zu layers, %s has %zu", model, res.layers_a,
			 path, res.layers_b);
		return -1;
	}
	if (out->equivalent)
		snprintf(msg, msglen, "verify: %s is an exact fold of %s in all %zu layers", path,
			 model, res.layers_a);
	model_level_note(model, path, out->equivalent, msg, msglen);
	return 0;
}
