#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/fold.h"
#include "core/pair_mix.h"
#include "core/rope.h"
#include "core/rotation.h"
#include "tui/explorer/commands.h"
#include "tui/shared/names.h"

/* ======================================================================
 * Settings
 * ====================================================================== */

void commands_settings_init(TuiSettings *s, const RunOptions *o,
			    bool use_default)
{
	memset(s, 0, sizeof *s);
	s->opts = *o;
	s->opts.model_path = NULL;
	if (o->model_path) {
		s->source = SOURCE_FILE;
		snprintf(s->model_path, sizeof s->model_path, "%s", o->model_path);
	} else {
		s->source = use_default ? SOURCE_DEFAULT : SOURCE_RANDOM;
	}
	/* Positional arguments point into argv: they do not belong here. */
	s->opts.n_positional = 0;
	s->view = VIEW_HEATMAP;
	s->rot_part = 'q';
	if (o->against_path)
		snprintf(s->against_path, sizeof s->against_path, "%s", o->against_path);
	s->opts.against_path = NULL;
	/* --rope on a checkpoint names the layout the fold is built for: the
	 * fold-layout toggle, not the layer's own RoPE */
	if (s->source != SOURCE_RANDOM && o->layout_set) {
		s->opts.fold.layout_set = true;
		s->opts.fold.layout = o->rope.layout;
		s->opts.layout_set = false;
	}
}

void commands_settings_options(const TuiSettings *s, RunOptions *out)
{
	*out = s->opts;
	out->model_path = s->source == SOURCE_FILE ? s->model_path : NULL;
}

/* ======================================================================
 * Toggles
 * ====================================================================== */

/* The parts' toggles, then the seven assumptions (named by core/fold.c),
 * then these. */
static const char *const part_names[4] = {"q", "k", "v", "o"};
static const char *const part_labels[4] = {"rotate Q", "rotate K", "rotate V", "rotate O"};
static const char *const other_names[TOGGLE_COUNT - TOGGLE_PERMUTE] = {
	"permute-heads", "kind", "rope", "precision", "fold-layout", "r1", "r3",
};
static const char *const other_labels[TOGGLE_COUNT - TOGGLE_PERMUTE] = {
	"permute-heads", "kind", "layer rope", "precision", "fold for", "R1 norm", "R3 q,k",
};
_Static_assert(TOGGLE_PERMUTE - TOGGLE_ASSUME0 == ASSUME_COUNT,
	       "one toggle per assumption");

/* One wording for a dropped or held assumption, by key or command:
 * "dropped commutes (dropped now: commutes)". */
static void dropped_msg(const TuiSettings *s, const char *verb, const char *what, char *msg,
			size_t msglen)
{
	char list[160] = "";
	for (unsigned i = 0; i < ASSUME_COUNT; i++)
		if (s->opts.fold.dropped & (1u << i)) {
			if (*list)
				strncat(list, ",", sizeof list - strlen(list) - 1);
			strncat(list, fold_assumption_name(i), sizeof list - strlen(list) - 1);
		}
	snprintf(msg, msglen, "%s %s (dropped now: %s)", verb, what, *list ? list : "none");
}

/* What R1 or R3 (which: "r1", "r3") is set to now, in a line. */
static void frame_msg(const FoldConfig *f, const char *which, char *msg, size_t msglen)
{
	static const char *const r1_words[FRAME_R1_COUNT] = {
		"R1 off", "R1 fused: w folded into W_q, W_k, W_v, the norm set to 1 (holds)",
		"R1 unfused: the norm keeps w, diag(w) does not commute with R1 (breaks)"};
	static const char *const r3_words[FRAME_R3_COUNT] = {
		"R3 off", "R3 online: H on q and k after RoPE (holds)",
		"R3 folded into W_q, W_k: H does not commute with RoPE (breaks)"};
	snprintf(msg, msglen, "%s", !strcmp(which, "r1") ? r1_words[f->r1] : r3_words[f->r3]);
}

const char *commands_toggle_name(ToggleId t)
{
	if ((unsigned)t >= TOGGLE_COUNT)
		return "?";
	if (t < TOGGLE_ASSUME0)
		return part_names[t];
	if (t < TOGGLE_PERMUTE)
		return fold_assumption_name((unsigned)(t - TOGGLE_ASSUME0));
	return other_names[t - TOGGLE_PERMUTE];
}

const char *commands_toggle_label(ToggleId t)
{
	if ((unsigned)t < TOGGLE_ASSUME0)
		return part_labels[t];
	if (t >= TOGGLE_PERMUTE && t < TOGGLE_COUNT)
		return other_labels[t - TOGGLE_PERMUTE];
	return commands_toggle_name(t);
}

/* The toggle names as a list (names.h). */
static const char *toggle_at(size_t i)
{
	return i < TOGGLE_COUNT ? commands_toggle_name((ToggleId)i) : NULL;
}

int commands_toggle_parse(const char *name)
{
	for (int i = 0; i < TOGGLE_COUNT; i++)
		if (!strcasecmp(name, commands_toggle_name((ToggleId)i)))
			return i;
	return -1;
}

bool commands_toggle_on(const TuiSettings *s, ToggleId t)
{
	const FoldConfig *f = &s->opts.fold;
	if (t <= TOGGLE_O)
		return f->rotate & (1u << t);
	if (t < TOGGLE_PERMUTE)
		return !(f->dropped & (1u << (t - TOGGLE_ASSUME0)));
	if (t == TOGGLE_PERMUTE)
		return f->permute_heads;
	return false;
}

const char *commands_toggle_value(const TuiSettings *s, ToggleId t)
{
	switch (t) {
	case TOGGLE_KIND:
		return rotation_kind_name(s->opts.fold.kind);
	case TOGGLE_ROPE:
		return rope_layout_name(s->opts.rope.layout);
	case TOGGLE_PRECISION:
		return s->opts.precision == PREC_F32 ? "f32" : "f64";
	case TOGGLE_FOLD_LAYOUT:
		return s->opts.fold.layout_set ? rope_layout_name(s->opts.fold.layout) : "own";
	case TOGGLE_R1:
		return frame_r1_name(s->opts.fold.r1);
	case TOGGLE_R3:
		return frame_r3_name(s->opts.fold.r3);
	default:
		return NULL;
	}
}

unsigned commands_toggle_flip(TuiSettings *s, ToggleId t, char *msg,
			      size_t msglen)
{
	FoldConfig *f = &s->opts.fold;
	if ((unsigned)t >= TOGGLE_COUNT) {
		snprintf(msg, msglen, "toggle: no such toggle");
		return CMD_ERROR;
	}
	if (t <= TOGGLE_O) {
		f->rotate ^= 1u << t;
		char buf[8];
		fold_rotate_format(f->rotate, buf, sizeof buf);
		snprintf(msg, msglen, "rotate %s", buf);
	} else if (t < TOGGLE_PERMUTE) {
		f->dropped ^= 1u << (t - TOGGLE_ASSUME0);
		dropped_msg(s, commands_toggle_on(s, t) ? "held" : "dropped", commands_toggle_name(t),
			    msg, msglen);
	} else if (t == TOGGLE_PERMUTE) {
		f->permute_heads = !f->permute_heads;
		snprintf(msg, msglen, "permute-heads %s", f->permute_heads ? "on" : "off");
	} else if (t == TOGGLE_KIND) {
		int k = (int)f->kind + 1;
		if (k >= ROT_KIND_COUNT || k <= ROT_COMMUTING)
			k = ROT_HAAR;
		f->kind = (RotKind)k;
		snprintf(msg, msglen, "kind %s%s", rotation_kind_name(f->kind),
			 (f->dropped & ASSUME_COMMUTES) ? "" : " (used when commutes is dropped)");
	} else if (t == TOGGLE_ROPE) {
		if (s->source != SOURCE_RANDOM) {
			snprintf(msg, msglen, "layer rope: a checkpoint's is its own (%s); "
				 "y: the fold's layout",
				 rope_layout_name(s->opts.rope.layout));
			return CMD_ERROR;
		}
		s->opts.rope.layout = s->opts.rope.layout == ROPE_HALF ? ROPE_INTERLEAVED : ROPE_HALF;
		s->opts.layout_set = true;
		snprintf(msg, msglen, "layer rope %s (the fold follows it)",
			 rope_layout_name(s->opts.rope.layout));
	} else if (t == TOGGLE_FOLD_LAYOUT) {
		/* own -> the other layout -> own: the other is the one whose
		 * commuting rotations do not commute with the layer's RoPE */
		RopeLayout own = s->opts.rope.layout;
		if (s->opts.fold.layout_set) {
			s->opts.fold.layout_set = false;
			snprintf(msg, msglen, "fold built for the layer's own layout (%s)",
				 rope_layout_name(own));
		} else {
			s->opts.fold.layout_set = true;
			s->opts.fold.layout = own == ROPE_HALF ? ROPE_INTERLEAVED : ROPE_HALF;
			snprintf(msg, msglen, "fold for %s, layer RoPE %s: a layout mismatch",
				 rope_layout_name(s->opts.fold.layout),
				 rope_layout_name(own));
		}
	} else if (t == TOGGLE_R1) {
		f->r1 = (FrameR1)((f->r1 + 1) % FRAME_R1_COUNT);
		frame_msg(f, "r1", msg, msglen);
	} else if (t == TOGGLE_R3) {
		f->r3 = (FrameR3)((f->r3 + 1) % FRAME_R3_COUNT);
		frame_msg(f, "r3", msg, msglen);
	} else {
		s->opts.precision = s->opts.precision == PREC_F32 ? PREC_F64 : PREC_F32;
		snprintf(msg, msglen, "precision %s", commands_toggle_value(s, t));
	}
	return CMD_CHANGED;
}

/* ======================================================================
 * Views
 * ====================================================================== */

static const char *const view_names[VIEW_COUNT] = {
	"heatmap", "offset", "heads", "pairs", "info", "layers", "rotation",
};

const char *commands_view_name(ViewId v)
{
	return (unsigned)v < VIEW_COUNT ? view_names[v] : "?";
}

/* The view names as a list (names.h). */
static const char *view_at(size_t i)
{
	return i < VIEW_COUNT ? view_names[i] : NULL;
}

int commands_view_parse(const char *name)
{
	for (int i = 0; i < VIEW_COUNT; i++)
		if (!strcasecmp(name, view_names[i]))
			return i;
	return -1;
}

/* ======================================================================
 * Commands
 * ====================================================================== */

typedef unsigned (*CmdFn)(TuiSettings *s, const char *cmd, const char *arg,
			  char *msg, size_t msglen);

/* What completes a command's argument. */
typedef enum {
	ARG_NONE = 0,   /* nothing to offer */
	ARG_PATH,       /* a file path: readline's filename completion */
	ARG_WORDS       /* the words of CmdDef.words */
} ArgKind;

/* One command: name, help, what runs it and what completes its argument,
 * so that parsing, the help screen and completion read the same row. */
typedef struct {
	const char *name;
	const char *aliases;  /* other names it answers to, space-separated, or NULL */
	const char *meta;     /* argument, or NULL */
	const char *help;     /* a "{SEP}" in it lists `values` (names.h) */
	CmdFn fn;
	const char *flag;     /* the shared flag this command sets, if any */
	bool random_only;     /* sets a random layer's shape */
	ArgKind arg;
	const char *const *(*words)(void);  /* ARG_WORDS: the completions */
	NameAt values;        /* the names its help lists, or NULL */
} CmdDef;

#define ERR(...)                                          \
	do {                                              \
		snprintf(msg, msglen, __VA_ARGS__);       \
		return CMD_ERROR;                         \
	} while (0)

/* Shape and RoPE go through the same parser as the command line flags, so
 * the values accepted and the messages are the same. */
static unsigned set_by_flag(TuiSettings *s, const char *cmd, const char *flag,
			    const char *arg, char *msg, size_t msglen)
{
	RunOptions o = s->opts;
	char err[512];
	if (opts_set(&o, OPT_EVAL_MODEL | OPT_FOLD | OPT_EVAL | OPT_FRAME, flag, arg, err, sizeof err)) {
		/* "--heads: ..." reads "heads: ..." on the command line. */
		const char *e = err;
		if (!strncmp(e, flag, strlen(flag)) && e[strlen(flag)] == ':')
			snprintf(msg, msglen, "%s%s", cmd, e + strlen(flag));
		else
			snprintf(msg, msglen, "%s: %s", cmd, e[0] == '-' && e[1] == '-' ? e + 2 : e);
		return CMD_ERROR;
	}
	o.n_positional = 0;
	o.model_path = NULL;
	s->opts = o;
	return CMD_CHANGED;
}

static unsigned cmd_flag(TuiSettings *s, const char *cmd, const char *arg,
			 char *msg, size_t msglen);

static int parse_onoff(const char *arg, bool cur, bool *out)
{
	if (!*arg || !strcasecmp(arg, "toggle"))
		*out = !cur;
	else if (!strcasecmp(arg, "on") || !strcasecmp(arg, "yes") || !strcmp(arg, "1") ||
		 !strcasecmp(arg, "true"))
		*out = true;
	else if (!strcasecmp(arg, "off") || !strcasecmp(arg, "no") || !strcmp(arg, "0") ||
		 !strcasecmp(arg, "false"))
		*out = false;
	else
		return -1;
	return 0;
}

static unsigned cmd_rotate(TuiSettings *s, const char *cmd, const char *arg,
			   char *msg, size_t msglen)
{
	unsigned bits;
	if (!*arg)
		ERR("%s: which parts? letters of qkvo, or none", cmd);
	if (!strcasecmp(arg, "all"))
		bits = PART_ALL;
	else if (fold_rotate_parse(arg, &bits))
		ERR("%s: '%s' is not a set of the letters q, k, v, o or 'none'", cmd, arg);
	s->opts.fold.rotate = bits;
	char buf[8];
	fold_rotate_format(bits, buf, sizeof buf);
	snprintf(msg, msglen, "rotate %s", buf);
	return CMD_CHANGED;
}

static unsigned cmd_drop_hold(TuiSettings *s, const char *cmd, const char *arg,
			      char *msg, size_t msglen)
{
	unsigned bits;
	const char *bad = NULL;
	if (!*arg)
		ERR("%s: which assumptions? e.g. '%s commutes' (or 'all')", cmd, cmd);
	if (!strcasecmp(arg, "all"))
		bits = (1u << ASSUME_COUNT) - 1;
	else if (fold_drop_parse(arg, &bits, &bad)) {
		char known[160];
		names_join(names_assumption, ", ", NULL, known, sizeof known);
		ERR("%s: unknown assumption '%s' (known: %s)", cmd, bad ? bad : arg, known);
	}
	if (!strcmp(cmd, "drop"))
		s->opts.fold.dropped |= bits;
	else
		s->opts.fold.dropped &= ~bits;
	dropped_msg(s, !strcmp(cmd, "drop") ? "dropped" : "held", arg, msg, msglen);
	return CMD_CHANGED;
}

static unsigned cmd_toggle(TuiSettings *s, const char *cmd, const char *arg,
			   char *msg, size_t msglen)
{
	int t = commands_toggle_parse(arg);
	if (t < 0)
		ERR("%s: '%s' is not a toggle (q, k, v, o, an assumption, permute-heads, kind, rope, precision, fold-layout, r1, r3)",
		    cmd, arg);
	return commands_toggle_flip(s, (ToggleId)t, msg, msglen);
}

/* :r1 [none|fused|unfused], :r3 [none|online|folded]: set through the
 * flag table; alone, the next setting (the toggle). */
static unsigned cmd_frame(TuiSettings *s, const char *cmd, const char *arg,
			  char *msg, size_t msglen)
{
	ToggleId t = !strcmp(cmd, "r1") ? TOGGLE_R1 : TOGGLE_R3;
	if (!*arg)
		return commands_toggle_flip(s, t, msg, msglen);
	unsigned r = set_by_flag(s, cmd, t == TOGGLE_R1 ? "--r1" : "--r3", arg, msg, msglen);
	if (!(r & CMD_ERROR))
		frame_msg(&s->opts.fold, cmd, msg, msglen);
	return r;
}

static unsigned cmd_kind(TuiSettings *s, const char *cmd, const char *arg,
			 char *msg, size_t msglen)
{
	RotKind k;
	double eps = s->opts.fold.mix_eps;
	if (rotation_kind_parse_eps(arg, &k, &eps) || k == ROT_COMMUTING) {
		char kinds[160];
		names_join(names_kind, ", ", " or ", kinds, sizeof kinds);
		ERR("%s: '%s' is not %s (pair-mix:EPS with 0 < EPS <= 1)", cmd, arg, kinds);
	}
	s->opts.fold.kind = k;
	s->opts.fold.mix_eps = eps;
	char name[48];
	rotation_kind_format(k, eps, name, sizeof name);
	snprintf(msg, msglen, "kind %s%s", name,
		 (s->opts.fold.dropped & ASSUME_COMMUTES) ? "" : " (used when commutes is dropped)");
	return CMD_CHANGED;
}

static unsigned cmd_permute(TuiSettings *s, const char *cmd, const char *arg,
			    char *msg, size_t msglen)
{
	bool v;
	if (parse_onoff(arg, s->opts.fold.permute_heads, &v))
		ERR("%s: '%s' is not on or off", cmd, arg);
	s->opts.fold.permute_heads = v;
	snprintf(msg, msglen, "permute-heads %s", v ? "on" : "off");
	return CMD_CHANGED;
}

static unsigned cmd_with_bias(TuiSettings *s, const char *cmd, const char *arg,
			      char *msg, size_t msglen)
{
	bool v;
	if (parse_onoff(arg, s->opts.with_bias, &v))
		ERR("%s: '%s' is not on or off", cmd, arg);
	if (s->source == SOURCE_FILE)
		ERR("%s: the layer comes from %s; ':load random' first", cmd, s->model_path);
	s->opts.with_bias = v;
	s->source = SOURCE_RANDOM;
	snprintf(msg, msglen, "random layer %s biases", v ? "with" : "without");
	return CMD_CHANGED;
}

static unsigned cmd_tol(TuiSettings *s, const char *cmd, const char *arg,
			char *msg, size_t msglen)
{
	if (!strcasecmp(arg, "default")) {
		s->opts.tol = 0;
		snprintf(msg, msglen, "tolerance: the precision's default");
		return CMD_CHANGED;
	}
	unsigned r = cmd_flag(s, cmd, arg, msg, msglen);
	if (!(r & CMD_ERROR))
		snprintf(msg, msglen, "tolerance %g", s->opts.tol);
	return r;
}

static unsigned cmd_load(TuiSettings *s, const char *cmd, const char *arg,
			 char *msg, size_t msglen)
{
	if (!*arg)
		ERR("%s: which checkpoint? ':load PATH' (or 'default', 'random')", cmd);
	if (!strcmp(arg, "default")) {
		s->source = SOURCE_DEFAULT;
		s->model_path[0] = 0;
		s->opts.layer = 0;
	} else if (!strcmp(arg, "random")) {
		s->source = SOURCE_RANDOM;
		s->model_path[0] = 0;
		s->opts.layer = 0;
	} else {
		if (strlen(arg) >= sizeof s->model_path)
			ERR("%s: path too long", cmd);
		s->source = SOURCE_FILE;
		snprintf(s->model_path, sizeof s->model_path, "%s", arg);
		s->opts.layer = 0;
	}
	/* a layout chosen for the old layer means nothing for the new one */
	s->opts.layout_set = false;
	s->opts.fold.layout_set = false;
	snprintf(msg, msglen, "loading %s", arg);
	return CMD_CHANGED;
}

static unsigned cmd_layer(TuiSettings *s, const char *cmd, const char *arg,
			  char *msg, size_t msglen)
{
	/* The built-in default model is a checkpoint too: any of its layers. */
	if (s->source == SOURCE_RANDOM)
		ERR("%s: a random layer has no checkpoint; ':load PATH' or ':load default' first",
		    cmd);
	unsigned r = cmd_flag(s, cmd, arg, msg, msglen);
	if (!(r & CMD_ERROR))
		snprintf(msg, msglen, "layer %zu", s->opts.layer);
	return r;
}

static unsigned cmd_view(TuiSettings *s, const char *cmd, const char *arg,
			 char *msg, size_t msglen)
{
	int v = commands_view_parse(arg);
	if (v < 0) {
		char views[96];
		names_join(view_at, ", ", " or ", views, sizeof views);
		ERR("%s: '%s' is not %s", cmd, arg, views);
	}
	s->view = (ViewId)v;
	snprintf(msg, msglen, "view %s", view_names[v]);
	return CMD_REDRAW;
}

static unsigned cmd_head(TuiSettings *s, const char *cmd, const char *arg,
			 char *msg, size_t msglen)
{
	char *end;
	if (!*arg || !isdigit((unsigned char)*arg))
		ERR("%s: '%s' is not a head index", cmd, arg);
	unsigned long v = strtoul(arg, &end, 10);
	if (*end || v >= LAYER_MAX_HEADS)
		ERR("%s: '%s' is not a head index", cmd, arg);
	s->head = v;
	snprintf(msg, msglen, "head %lu", v);
	return CMD_REDRAW;
}

static unsigned cmd_reset(TuiSettings *s, const char *cmd, const char *arg,
			  char *msg, size_t msglen)
{
	(void)cmd;
	(void)arg;
	uint64_t seed = s->opts.fold.seed;
	s->opts.fold = fold_config_default();
	s->opts.fold.seed = seed;
	/* every assumption held, built for the layer's own layout; the layer
	 * and the precision are not the fold's and stay */
	snprintf(msg, msglen, "fold reset: qkvo, all held, own layout (kept: the layer, %s)",
		 s->opts.precision == PREC_F32 ? "float32" : "float64");
	return CMD_CHANGED;
}

static unsigned cmd_simple(TuiSettings *s, const char *cmd, const char *arg,
			   char *msg, size_t msglen)
{
	(void)s;
	if (*arg)
		ERR("%s: takes no argument", cmd);
	msg[0] = 0;
	if (!strcmp(cmd, "quit") || !strcmp(cmd, "q"))
		return CMD_QUIT;
	if (!strcmp(cmd, "help"))
		return CMD_HELP;
	return CMD_TOUR;
}

/* :export PATH, :export! PATH (replacing PATH) and :verify PATH: the
 * caller does the work. */
static unsigned cmd_export(TuiSettings *s, const char *cmd, const char *arg,
			   char *msg, size_t msglen)
{
	if (!*arg)
		ERR("%s: which file? ':%s PATH'", cmd, cmd);
	if (strlen(arg) >= sizeof s->action_path)
		ERR("%s: path too long", cmd);
	if (s->source == SOURCE_RANDOM)
		ERR("%s: a random layer has no checkpoint; ':load PATH' first", cmd);
	snprintf(s->action_path, sizeof s->action_path, "%s", arg);
	s->action_force = !strcmp(cmd, "export!");
	snprintf(msg, msglen, "%s %s", cmd, arg);
	return strcmp(cmd, "verify") ? CMD_EXPORT : CMD_VERIFY;
}

/* :rope L: a random layer's own RoPE; on a checkpoint (whose RoPE is its
 * runtime's) the layout the fold is built for, as --rope says there. */
static unsigned cmd_rope(TuiSettings *s, const char *cmd, const char *arg,
			 char *msg, size_t msglen)
{
	if (s->source == SOURCE_RANDOM)
		return cmd_flag(s, cmd, arg, msg, msglen);
	RopeLayout l;
	if (!*arg)
		ERR("%s: missing value (half|interleaved)", cmd);
	if (rope_layout_parse(arg, &l))
		ERR("%s: '%s' is not 'interleaved' or 'half'", cmd, arg);
	s->opts.fold.layout_set = l != s->opts.rope.layout;
	s->opts.fold.layout = l;
	snprintf(msg, msglen, "fold for %s, layer RoPE %s (its own)%s", rope_layout_name(l),
		 rope_layout_name(s->opts.rope.layout),
		 s->opts.fold.layout_set ? ": a layout mismatch" : "");
	return CMD_CHANGED;
}

/* :against PATH: compare mode, B's stored layer in the fold's place;
 * :against off leaves it. */
static unsigned cmd_against(TuiSettings *s, const char *cmd, const char *arg,
			    char *msg, size_t msglen)
{
	if (!*arg)
		ERR("%s: which checkpoint? ':%s PATH' (or 'off')", cmd, cmd);
	if (!strcmp(arg, "off")) {
		if (!s->against_path[0])
			ERR("%s: not comparing", cmd);
		s->against_path[0] = 0;
		if (s->view == VIEW_LAYERS)
			s->view = VIEW_HEATMAP;
		snprintf(msg, msglen, "compare mode off: the fold again");
		return CMD_CHANGED;
	}
	if (strlen(arg) >= sizeof s->against_path)
		ERR("%s: path too long", cmd);
	if (s->source == SOURCE_RANDOM)
		ERR("%s: compares two checkpoints' layers; ':load PATH' or ':load default' first",
		    cmd);
	snprintf(s->against_path, sizeof s->against_path, "%s", arg);
	snprintf(msg, msglen, "comparing with %s", arg);
	return CMD_CHANGED;
}

/* :rotation q|k|v|all: which R the rotation view draws. */
/* :rotation q|k|v|all, and its scale: fit (the whole matrix, pooled
 * when it is larger than the view) or full (one coordinate a cell, from
 * rot_off on; :scroll moves it). */
#define ROT_SCROLL 8
static unsigned cmd_rotation(TuiSettings *s, const char *cmd, const char *arg,
			     char *msg, size_t msglen)
{
	if (!strcmp(arg, "fit")) {
		s->rot_full = false;
		s->rot_off = 0;
	} else if (!strcmp(arg, "full")) {
		s->rot_full = true;
	} else {
		char p = !*arg ? s->rot_part : !strcasecmp(arg, "all") ? 'a'
			: (strlen(arg) == 1 && strchr("qkvQKV", arg[0]))
			? (char)tolower((unsigned char)arg[0]) : 0;
		if (!p)
			ERR("%s: '%s' is not q, k, v, all, fit or full", cmd, arg);
		s->rot_part = p;
	}
	s->view = VIEW_ROTATION;
	if (s->rot_full)
		snprintf(msg, msglen, "rotation view: one coordinate a cell from %zu", s->rot_off);
	else if (s->rot_part == 'a')
		snprintf(msg, msglen, "rotation view: R_q, R_k, R_v");
	else
		snprintf(msg, msglen, "rotation view: R_%c", s->rot_part);
	return CMD_REDRAW;
}

/* :scroll down|up|home: the views longer than their box (PgDn, PgUp,
 * Home): the rotation view one coordinate a cell, ROT_SCROLL coordinates
 * a step (home: the whole matrix again); the info view INFO_SCROLL lines
 * a step. */
#define INFO_SCROLL 5
static unsigned cmd_scroll(TuiSettings *s, const char *cmd, const char *arg,
			   char *msg, size_t msglen)
{
	int dir = !strcmp(arg, "down") ? 1 : !strcmp(arg, "up") ? -1 : !strcmp(arg, "home") ? 0 : 2;
	if (dir == 2)
		ERR("%s: '%s' is not down, up or home", cmd, arg);
	if (s->view == VIEW_ROTATION) {
		if (dir == 0)
			return cmd_rotation(s, "rotation", "fit", msg, msglen);
		if (dir > 0 && s->rot_full)
			s->rot_off += ROT_SCROLL;
		else if (dir < 0)
			s->rot_off = s->rot_off > ROT_SCROLL ? s->rot_off - ROT_SCROLL : 0;
		s->rot_full = true;
		return cmd_rotation(s, "rotation", "full", msg, msglen);
	}
	if (s->view == VIEW_INFO) {
		s->view_scroll = dir == 0 ? 0 : s->view_scroll + dir * INFO_SCROLL;
		if (s->view_scroll < 0)
			s->view_scroll = 0;
		msg[0] = 0;
		return CMD_REDRAW;
	}
	ERR("%s: the %s view fits its box (the rotation and info views scroll)", cmd,
	    commands_view_name(s->view));
}

void commands_rotation_clamp(TuiSettings *s, size_t head_dim)
{
	if (s->rot_off >= head_dim)
		s->rot_off = head_dim > ROT_SCROLL ? (head_dim - 1) / ROT_SCROLL * ROT_SCROLL : 0;
}

/* The cell styles' names, in CellStyle's order. */
static const char *const cells_names[CELLS_COUNT] = {"auto", "ascii", "half", "braille"};

const char *commands_cells_name(CellStyle c)
{
	return (unsigned)c < CELLS_COUNT ? cells_names[c] : "auto";
}

/* :cells auto|ascii|half|braille|next: the heatmap's and offset plot's
 * cells (C cycles them). */
static unsigned cmd_cells(TuiSettings *s, const char *cmd, const char *arg,
			  char *msg, size_t msglen)
{
	int c = -1;
	if (!strcmp(arg, "next") || !*arg)
		c = (s->cells + 1) % CELLS_COUNT;
	for (int i = 0; i < CELLS_COUNT && c < 0; i++)
		if (!strcmp(arg, cells_names[i]))
			c = i;
	if (c < 0)
		ERR("%s: '%s' is not auto, ascii, half, braille or next", cmd, arg);
	s->cells = (CellStyle)c;
	snprintf(msg, msglen, "cells %s", cells_names[c]);
	return CMD_REDRAW;
}

/* :log: the message log. */
static unsigned cmd_log(TuiSettings *s, const char *cmd, const char *arg,
			char *msg, size_t msglen)
{
	(void)s;
	if (*arg)
		ERR("%s: takes no argument", cmd);
	msg[0] = 0;
	return CMD_LOG;
}

/* :eps up|down|EPS: the strength of the pair-mix kind, by decades with
 * up and down (the + and - keys); it selects pair-mix and drops commutes,
 * so the change shows at once. */
static unsigned cmd_eps(TuiSettings *s, const char *cmd, const char *arg,
			char *msg, size_t msglen)
{
	FoldConfig *f = &s->opts.fold;
	double eps = f->mix_eps > 0 ? f->mix_eps : PAIR_MIX_EPS_DEFAULT;
	RotKind k;
	if (!strcmp(arg, "up") || !strcmp(arg, "down")) {
		int dir = !strcmp(arg, "up") ? 1 : -1;
		double l = log10(eps), r = floor(l + 0.5);
		eps = fabs(l - r) < 1e-9 ? pow(10.0, r + dir) : eps * pow(10.0, dir);
		if (eps > ROT_MIX_EPS_MAX)
			eps = ROT_MIX_EPS_MAX;
		if (eps < 1e-20)
			eps = 1e-20;
	} else {
		char spec[96];
		snprintf(spec, sizeof spec, "pair-mix:%s", arg);
		if (!*arg || rotation_kind_parse_eps(spec, &k, &eps))
			ERR("%s: '%s' is not up, down or an angle 0 < EPS <= 1", cmd, arg);
	}
	f->kind = ROT_PAIR_MIX;
	f->mix_eps = eps;
	bool was_held = !(f->dropped & ASSUME_COMMUTES);
	f->dropped |= ASSUME_COMMUTES;
	snprintf(msg, msglen, "kind pair-mix:%g%s", eps, was_held ? " (commutes dropped)" : "");
	return CMD_CHANGED;
}

/* :heat-scale log|linear|toggle: the heatmap's color scale (L). */
static unsigned cmd_heat_scale(TuiSettings *s, const char *cmd, const char *arg,
			       char *msg, size_t msglen)
{
	if (!strcmp(arg, "log"))
		s->heat_linear = false;
	else if (!strcmp(arg, "linear"))
		s->heat_linear = true;
	else if (!strcmp(arg, "toggle") || !*arg)
		s->heat_linear = !s->heat_linear;
	else
		ERR("%s: '%s' is not log, linear or toggle", cmd, arg);
	snprintf(msg, msglen, "heatmap color scale %s", s->heat_linear ? "linear" : "log");
	return CMD_REDRAW;
}

/* :export-figure PATH, :export-csv PATH, :source FILE: the caller writes
 * or reads action_path (the figure's format from its extension). */
static unsigned cmd_file(TuiSettings *s, const char *cmd, const char *arg,
			 char *msg, size_t msglen)
{
	if (!*arg)
		ERR("%s: which file? ':%s PATH'", cmd, cmd);
	if (strlen(arg) >= sizeof s->action_path)
		ERR("%s: path too long", cmd);
	if (!strcmp(cmd, "export-figure")) {
		const char *dot = strrchr(arg, '.');
		if (!dot || (strcasecmp(dot, ".svg") && strcasecmp(dot, ".png") &&
			     strcasecmp(dot, ".pdf")))
			ERR("%s: '%s' does not end in .svg, .png or .pdf", cmd, arg);
	}
	snprintf(s->action_path, sizeof s->action_path, "%s", arg);
	snprintf(msg, msglen, "%s %s", cmd, arg);
	return !strcmp(cmd, "export-figure") ? CMD_FIGURE
	       : !strcmp(cmd, "export-csv") ? CMD_CSV : CMD_SOURCE;
}

static unsigned cmd_set(TuiSettings *s, const char *cmd, const char *arg,
			char *msg, size_t msglen)
{
	(void)cmd;
	if (!*arg)
		ERR("set: which setting? e.g. 'set tol 1e-9'");
	return commands_run(s, arg, msg, msglen);
}

/* ---- completion words ---------------------------------------------------- */

static const char *const *assume_words(void)
{
	static const char *w[ASSUME_COUNT + 2];
	if (!w[0])
		names_words(names_assumption, "all", w, sizeof w / sizeof w[0]);
	return w;
}

static const char *const *toggle_words(void)
{
	static const char *w[TOGGLE_COUNT + 1];
	if (!w[0])
		names_words(toggle_at, NULL, w, sizeof w / sizeof w[0]);
	return w;
}

static const char *const *kind_words(void)
{
	static const char *w[ROT_KIND_COUNT + 1];
	if (!w[0])
		names_words(names_kind, NULL, w, sizeof w / sizeof w[0]);
	return w;
}

static const char *const *rope_words(void)
{
	static const char *w[3];
	if (!w[0])
		names_words(names_layout, NULL, w, sizeof w / sizeof w[0]);
	return w;
}

static const char *const *view_words(void)
{
	static const char *w[VIEW_COUNT + 1];
	if (!w[0])
		names_words(view_at, NULL, w, sizeof w / sizeof w[0]);
	return w;
}

static const char *const *onoff_words(void)
{
	static const char *const w[] = {"on", "off", NULL};
	return w;
}

static const char *const *prec_words(void)
{
	static const char *const w[] = {"f64", "f32", NULL};
	return w;
}

static const char *const *rotate_words(void)
{
	static const char *const w[] = {"qkvo", "qkv", "qk", "vo", "none", NULL};
	return w;
}

static const char *const *scaling_words(void)
{
	static const char *const w[] = {"none", "linear:", "ntk:", "yarn:", "llama3:", NULL};
	return w;
}

static const char *const *part_words(void)
{
	static const char *const w[] = {"q", "k", "v", "all", "fit", "full", NULL};
	return w;
}

static const char *const *scroll_words(void)
{
	static const char *const w[] = {"down", "up", "home", NULL};
	return w;
}

static const char *const *cells_words(void)
{
	static const char *w[CELLS_COUNT + 2];
	if (!w[0]) {
		for (int i = 0; i < CELLS_COUNT; i++)
			w[i] = cells_names[i];
		w[CELLS_COUNT] = "next";
	}
	return w;
}

static const char *const *scale_words(void)
{
	static const char *const w[] = {"log", "linear", "toggle", NULL};
	return w;
}

static const char *const *eps_words(void)
{
	static const char *const w[] = {"up", "down", "1e-3", "1e-6", "1e-9", NULL};
	return w;
}

static const char *const *r1_words(void)
{
	static const char *w[FRAME_R1_COUNT + 1];
	if (!w[0])
		names_words(names_frame_r1, NULL, w, sizeof w / sizeof w[0]);
	return w;
}

static const char *const *r3_words(void)
{
	static const char *w[FRAME_R3_COUNT + 1];
	if (!w[0])
		names_words(names_frame_r3, NULL, w, sizeof w / sizeof w[0]);
	return w;
}

static const char *const *tol_words(void)
{
	static const char *const w[] = {"default", "1e-9", "1e-3", NULL};
	return w;
}

/* ---- the commands ---------------------------------------------------------- */

#define WORDS(f) ARG_WORDS, f
#define NOARG ARG_NONE, NULL
#define PATH ARG_PATH, NULL

static const CmdDef cmds[] = {
	{"rotate", NULL, "SET", "parts to rotate: letters of qkvo, or none", cmd_rotate, NULL, false, WORDS(rotate_words), NULL},
	{"drop", NULL, "LIST", "drop assumptions (comma-separated, or all)", cmd_drop_hold, NULL, false, WORDS(assume_words), NULL},
	{"hold", NULL, "LIST", "hold assumptions again (comma-separated, or all)", cmd_drop_hold, NULL, false, WORDS(assume_words), NULL},
	{"toggle", NULL, "NAME", "flip a toggle: q k v o, an assumption, permute-heads, kind, rope, precision, fold-layout, r1, r3", cmd_toggle, NULL, false, WORDS(toggle_words), NULL},
	{"kind", NULL, "K", "R_q/R_k kind when commutes is dropped: { }", cmd_kind, NULL, false, WORDS(kind_words), names_kind},
	{"permute-heads", NULL, "on|off", "also permute the kv groups with their heads", cmd_permute, NULL, false, WORDS(onoff_words), NULL},
	{"r1", NULL, "none|fused|unfused", "R1 on the residual block beside the fold: w fused into the readers or not (alone: the next)", cmd_frame, "--r1", false, WORDS(r1_words), NULL},
	{"r3", NULL, "none|online|folded", "R3, a Hadamard on q and k after RoPE: online, or folded into W_q, W_k (alone: the next)", cmd_frame, "--r3", false, WORDS(r3_words), NULL},
	{"reset", NULL, NULL, "fold back to rotate qkvo with every assumption held", cmd_reset, NULL, false, NOARG, NULL},
	{"rope", NULL, "half|interleaved", "RoPE pair layout (a checkpoint's: the fold's layout)", cmd_rope, "--rope", false, WORDS(rope_words), NULL},
	{"rotary-dim", NULL, "N", "rotary dim r <= head dim", cmd_flag, "--rotary-dim", false, NOARG, NULL},
	{"theta", "rope-theta", "X", "RoPE base theta", cmd_flag, "--rope-theta", false, NOARG, NULL},
	{"scaling", "rope-scaling", "RULE", "frequency scaling: none linear:F ntk:F yarn:F llama3:F", cmd_flag, "--rope-scaling", false, WORDS(scaling_words), NULL},
	{"seq", NULL, "N", "sequence length T", cmd_flag, "--seq", false, NOARG, NULL},
	{"seed", NULL, "N", "seed of the layer, input and rotations", cmd_flag, "--seed", false, NOARG, NULL},
	{"heads", NULL, "N", "random layer: query heads H", cmd_flag, "--heads", true, NOARG, NULL},
	{"kv-heads", NULL, "N", "random layer: key/value heads G", cmd_flag, "--kv-heads", true, NOARG, NULL},
	{"head-dim", NULL, "N", "random layer: head dim d (even)", cmd_flag, "--head-dim", true, NOARG, NULL},
	{"d-model", NULL, "N", "random layer: model width D", cmd_flag, "--d-model", true, NOARG, NULL},
	{"with-bias", NULL, "on|off", "random layer: q/k/v/o biases", cmd_with_bias, NULL, true, WORDS(onoff_words), NULL},
	{"precision", NULL, "f64|f32", "compute precision", cmd_flag, "--precision", false, WORDS(prec_words), NULL},
	{"tol", NULL, "X", "relative tolerance (or default)", cmd_tol, "--tol", false, WORDS(tol_words), NULL},
	{"load", NULL, "PATH", "load a checkpoint (or default, random)", cmd_load, NULL, false, PATH, NULL},
	{"layer", NULL, "N", "layer of the checkpoint (loaded or the built-in default)", cmd_layer, "--layer", false, NOARG, NULL},
	{"export", NULL, "PATH", "write the checkpoint with this fold baked into this layer", cmd_export, NULL, false, PATH, NULL},
	{"export!", NULL, "PATH", "the same, replacing PATH (and its sidecar) if it exists", cmd_export, NULL, false, PATH, NULL},
	{"verify", NULL, "PATH", "is PATH a fold of the checkpoint? compare with it, at the first break", cmd_export, NULL, false, PATH, NULL},
	{"eps", "mix-eps", "up|down|EPS", "pair-mix strength (radians; + and - keys: by decades); selects pair-mix", cmd_eps, NULL, false, WORDS(eps_words), NULL},
	{"heat-scale", NULL, "log|linear", "the heatmap's color scale (L flips it)", cmd_heat_scale, NULL, false, WORDS(scale_words), NULL},
	{"export-figure", "figure", "PATH", "write the current view as a figure: .svg, .png or .pdf", cmd_file, NULL, false, PATH, NULL},
	{"export-csv", "csv", "PATH", "write the current view's numbers as CSV", cmd_file, NULL, false, PATH, NULL},
	{"source", NULL, "FILE", "run a tour script: ':' commands and '# ...' text cards", cmd_file, NULL, false, PATH, NULL},
	{"view", NULL, "NAME", "main view: { }", cmd_view, NULL, false, WORDS(view_words), view_at},
	{"against", NULL, "PATH", "compare mode: this layer against PATH's stored one (off: the fold again)", cmd_against, NULL, false, PATH, NULL},
	{"rotation", NULL, "q|k|v|all|fit|full", "the rotation view of R_q, R_k, R_v (all: side by side); fit: the whole matrix, full: one coordinate a cell", cmd_rotation, NULL, false, WORDS(part_words), NULL},
	{"scroll", NULL, "down|up|home", "scroll the rotation view (one coordinate a cell) or the info view (PgDn, PgUp, Home)", cmd_scroll, NULL, false, WORDS(scroll_words), NULL},
	{"cells", NULL, "auto|ascii|half|braille", "heatmap and offset plot cells: characters, half blocks or braille dots (UTF-8 only; C cycles)", cmd_cells, NULL, false, WORDS(cells_words), NULL},
	{"log", NULL, NULL, "the message log: every explanation, verify result and error", cmd_log, NULL, false, NOARG, NULL},
	{"head", NULL, "N", "select a query head", cmd_head, NULL, false, NOARG, NULL},
	{"set", NULL, "NAME VALUE", "the same as :NAME VALUE", cmd_set, NULL, false, NOARG, NULL},
	{"tour", NULL, NULL, "the classroom tour", cmd_simple, NULL, false, NOARG, NULL},
	{"help", "? h", NULL, "the help screen", cmd_simple, NULL, false, NOARG, NULL},
	{"quit", "q exit", NULL, "leave", cmd_simple, NULL, false, NOARG, NULL},
};

#define NCMDS (sizeof cmds / sizeof cmds[0])

/* Whether name is one of the space-separated words of list. */
static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p;) {
		size_t k = strcspn(p, " ");
		if (k == n && !strncmp(p, name, n))
			return true;
		p += k + (p[k] == ' ');
	}
	return false;
}

static const CmdDef *find_cmd(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (!strcmp(cmds[i].name, name) || in_list(cmds[i].aliases, name))
			return &cmds[i];
	return NULL;
}

static unsigned cmd_flag(TuiSettings *s, const char *cmd, const char *arg,
			 char *msg, size_t msglen)
{
	const CmdDef *d = find_cmd(cmd);
	if (!d || !d->flag)
		ERR("%s: internal: no flag", cmd);
	if (!*arg)
		ERR("%s: missing value (%s)", cmd, d->meta);
	LayerSource src = s->source;
	if (d->random_only) {
		if (src == SOURCE_FILE)
			ERR("%s: the layer comes from %s; ':load random' first", cmd, s->model_path);
		src = SOURCE_RANDOM;
	}
	unsigned r = set_by_flag(s, cmd, d->flag, arg, msg, msglen);
	if (r & CMD_ERROR)
		return r;
	bool switched = s->source != src;
	s->source = src;
	snprintf(msg, msglen, "%s %s%s", cmd, arg,
		 switched ? " (now a random layer)" : "");
	return r;
}

unsigned commands_run(TuiSettings *s, const char *line, char *msg,
		      size_t msglen)
{
	char buf[1200];
	msg[0] = 0;
	while (isspace((unsigned char)*line))
		line++;
	if (*line == ':')
		line++;
	while (isspace((unsigned char)*line))
		line++;
	if (!*line) {
		return 0;
	}
	if (strlen(line) >= sizeof buf)
		ERR("command too long");
	snprintf(buf, sizeof buf, "%s", line);
	/* trim the end */
	size_t n = strlen(buf);
	while (n && isspace((unsigned char)buf[n - 1]))
		buf[--n] = 0;
	char *cmd = buf;
	char *arg = cmd;
	while (*arg && !isspace((unsigned char)*arg))
		arg++;
	if (*arg) {
		*arg++ = 0;
		while (isspace((unsigned char)*arg))
			arg++;
	}
	for (char *p = cmd; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	const CmdDef *d = find_cmd(cmd);
	if (!d) {
		/* A toggle name alone flips it: ':commutes', ':q' is quit. */
		int t = commands_toggle_parse(cmd);
		if (t >= 0 && !*arg)
			return commands_toggle_flip(s, (ToggleId)t, msg, msglen);
		ERR("%s: unknown command (':help' lists them)", cmd);
	}
	/* Run on a copy so a failure leaves the settings untouched. */
	TuiSettings tmp = *s;
	unsigned r = d->fn(&tmp, d->name, arg, msg, msglen);
	if (!(r & CMD_ERROR))
		*s = tmp;
	return r;
}

/* ======================================================================
 * Completion and help
 * ====================================================================== */

const char *const *commands_completions(const char *line, size_t start)
{
	static const char *cmd_words[NCMDS + 1];
	static const char *const empty_words[] = {NULL};
	if (!cmd_words[0])
		for (size_t i = 0; i < NCMDS; i++)
			cmd_words[i] = cmds[i].name;
	char first[64] = "";
	size_t i = 0;
	while (i < start && isspace((unsigned char)line[i]))
		i++;
	if (i < start && line[i] == ':')
		i++;
	/* skip "set" */
	for (int pass = 0; pass < 2; pass++) {
		size_t j = i;
		while (j < start && !isspace((unsigned char)line[j]))
			j++;
		if (j >= start)
			break;  /* the word being completed is the command */
		size_t len = j - i < sizeof first - 1 ? j - i : sizeof first - 1;
		memcpy(first, line + i, len);
		first[len] = 0;
		i = j;
		while (i < start && isspace((unsigned char)line[i]))
			i++;
		if (strcmp(first, "set"))
			break;
		first[0] = 0;
	}
	if (!first[0])
		return cmd_words;
	const CmdDef *d = find_cmd(first);
	if (d && d->arg == ARG_PATH)
		return NULL;  /* a file path */
	if (d && d->arg == ARG_WORDS)
		return d->words();
	return empty_words;
}

const char *const *commands_help_lines(void)
{
	static char lines[NCMDS][64], helps[NCMDS][160];
	static const char *out[2 * NCMDS + 2];
	if (!out[0]) {
		for (size_t i = 0; i < NCMDS; i++) {
			snprintf(lines[i], sizeof lines[i], ":%s%s%s", cmds[i].name,
				 cmds[i].meta ? " " : "", cmds[i].meta ? cmds[i].meta : "");
			names_expand(cmds[i].help, cmds[i].values, helps[i], sizeof helps[i]);
			out[2 * i] = lines[i];
			out[2 * i + 1] = helps[i];
		}
	}
	return out;
}
